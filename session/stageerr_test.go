package session

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fwslot/fwslot/internal/kerneltest"
	"github.com/fwslot/fwslot/internal/names"
	"github.com/fwslot/fwslot/internal/nfnl"
	"github.com/fwslot/fwslot/internal/nfnltest"
	"github.com/fwslot/fwslot/internal/slots"
)

// TestKernelRefusalNamesTheRule proves that a rule the kernel refuses
// while staging is reported with the file, line and text that wrote it,
// for rules in chain blocks, in included files and from `add rule`, and
// that production stays exactly as it was.
func TestKernelRefusalNamesTheRule(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "main.nft")
	inc := filepath.Join(dir, "inc.nft")
	for p, body := range map[string]string{
		main: `table inet t {
	chain input {
		type filter hook input priority 0; policy accept;
		tcp dport 22 accept
		tcp dport 80 counter accept
		tcp dport 443 jump { ip saddr 10.0.0.9 accept; }
	}
	include "inc.nft"
}
add rule inet t other udp dport 53 accept
`,
		inc: "chain other {\n\tip saddr 10.0.0.1 drop\n}\n",
	} {
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ns, tg := nsTarget(t, "fwslot-stageerr")
	good := writeRuleset(t, "good.nft", "table inet t {\n\tchain input { type filter hook input priority 0; policy drop; tcp dport 22 accept; }\n}\n")
	if _, err := tg.Load(context.Background(), good, LoadOptions{}); err != nil {
		t.Fatal(err)
	}
	c, st := kerneltest.State(t, ns)
	var fb nfnl.Batch
	if err := slots.Flip(&fb, st, names.SlotB, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Commit(&fb); err != nil {
		t.Fatal(err)
	}
	before := readKernel(t, ns)

	for _, tc := range []struct {
		name     string
		chain    string
		rule     int
		wantFile string
		wantLine int
		wantText string
	}{
		{"first rule of a chain block", "input", 0, main, 4, "tcp dport 22 accept"},
		{"second rule of a chain block", "input", 1, main, 5, "tcp dport 80 counter accept"},
		{"rule of an included chain", "other", 0, inc, 2, "ip saddr 10.0.0.1 drop"},
		{"add rule command", "other", 1, main, 10, "udp dport 53 accept"},
		// The rule of an anonymous chain is written inside the rule
		// that jumps to it.
		{"rule of a binding chain", "", 0, main, 6, "tcp dport 443 jump { ip saddr 10.0.0.9 accept; }"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tg.Load(context.Background(), main, LoadOptions{
				Check: func(_ context.Context, _ string, rs *slots.Ruleset) error {
					for _, ch := range rs.Tables[0].Chains {
						if ch.Name == tc.chain || (tc.chain == "" && ch.Binding) {
							ch.Rules[tc.rule] = nfnltest.RefusedRule()
							return nil
						}
					}
					t.Fatalf("no chain %s", tc.chain)
					return nil
				}})
			t.Log(err)
			var se *slots.StageError
			if !errors.As(err, &se) {
				t.Fatalf("want a StageError, got %v", err)
			}
			wantChain := tc.chain
			if wantChain == "" {
				wantChain = "input"
			}
			if se.File != tc.wantFile || se.Line != tc.wantLine || se.Rule != tc.wantText || se.Chain != "inet t "+wantChain {
				t.Fatalf("error names %s:%d %q in %s, want %s:%d %q: %v", se.File, se.Line, se.Rule, se.Chain, tc.wantFile, tc.wantLine, tc.wantText, err)
			}
			if want := filepath.Base(tc.wantFile); !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), tc.wantText) {
				t.Fatalf("message lacks file or rule text: %v", err)
			}
			before.unchanged(t, "refused load")
		})
	}
}
