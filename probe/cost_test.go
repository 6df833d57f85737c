package probe

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestEvalCostIndex: EvalCost counts against the twin's rule index only,
// and says why it cannot count (no index, a nil one in the interface, no
// trace) instead of returning a zero cost.
func TestEvalCostIndex(t *testing.T) {
	x, err := parseNftRuleset(sampleListing)
	if err != nil {
		t.Fatal(err)
	}
	// The chain's policy ended the walk: both user rules of the slot's
	// input chain ran.
	traced := Result{events: []traceEvent{{family: unix.NFPROTO_INET, table: "filter", chain: "fwslot_a_input",
		typ: traceTypePolicy, verdict: nfAccept, hasHdr: true}}}
	cases := []struct {
		name    string
		r       Result
		idx     RuleIndex
		rules   int
		wantErr string
	}{
		{"twin's index", traced, x, 2, ""},
		{"no index", traced, nil, 0, "no rule index of the twin"},
		{"nil index in the interface", traced, (*nftRuleIndex)(nil), 0, "no rule index of the twin"},
		{"no trace", Result{}, x, 0, errNoTrace.Error()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.r.EvalCost(c.idx)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, c.wantErr)
				}
				if c.wantErr == errNoTrace.Error() && !errors.Is(err, errNoTrace) {
					t.Fatalf("error %v is not errNoTrace", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Rules != c.rules || len(got.Chains) != 1 || got.Chains[0] != (ChainRules{Family: "inet", Table: "filter", Chain: "input", Rules: c.rules}) {
				t.Fatalf("cost %+v, want %d rules in inet filter input", got, c.rules)
			}
		})
	}
}
