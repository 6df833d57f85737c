package fleet

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/fwslot/fwslot/fleet/metrics"
	"github.com/fwslot/fwslot/fleet/sign"
)

// TestTrustKey: agents with a trusted key refuse versions that are not
// signed with its private key, or signed for other probes or another
// group, and run the ones that are. The agents' metrics count the swaps.
func TestTrustKey(t *testing.T) {
	pub, priv, err := sign.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	_, other, err := sign.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	hosts := map[string]Host{}
	for i := 1; i <= 3; i++ {
		h := fmt.Sprintf("h%d", i)
		hosts[h] = newFakeHost(h)
	}
	f := newTestFleet(t, hosts, func(a *Agent) {
		a.TrustKey, a.Metrics = pub, metrics.New(a.Keys.Group, a.Name)
	})
	ctx := testCtx(t)
	signed := func(src string, key []byte, group, probes string) PushOptions {
		o := pushOpts(src)
		if key != nil {
			if o.Signature, err = sign.Sign(key, group, sum([]byte(src)), probes); err != nil {
				t.Fatal(err)
			}
		}
		return o
	}
	// v2 signed goes live, then v1 signed; v2, still staged everywhere,
	// comes back unsigned below: staged content needs a signature too.
	for _, src := range []string{v2, v1} {
		if _, err := f.pusher().Push(ctx, signed(src, priv, "web", pushOpts(src).Probes)); err != nil {
			t.Fatal(err)
		}
		f.consistent(src)
	}
	for _, tc := range []struct {
		name string
		o    PushOptions
		why  string
	}{
		{"unsigned", signed(v2, nil, "", ""), "not signed"},
		{"another key", signed(v2, other, "web", pushOpts(v2).Probes), "signature"},
		{"another group", signed(v2, priv, "db", pushOpts(v2).Probes), "signature"},
		{"other probes", signed(v2, priv, "web", "accept tcp 192.0.2.9:1 -> 192.0.2.2:22 in eth0"), "signature"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.pusher().Push(ctx, tc.o)
			var fe *FailedError
			if !errors.As(err, &fe) || !strings.Contains(strings.ToLower(err.Error()), tc.why) {
				t.Fatalf("push: %v, want a refusal naming %q", err, tc.why)
			}
			f.consistent(v1)
		})
	}
	for h, a := range f.agents {
		if got := metricValue(t, a.Metrics, "fwslot_agent_swaps_total"); got != 2 {
			t.Errorf("%s: %v swaps counted, want 2", h, got)
		}
		if got := metricValue(t, a.Metrics, "fwslot_agent_production_version"); got != 2 {
			t.Errorf("%s: production version gauge %v, want 2", h, got)
		}
	}
}

func metricValue(t *testing.T, m *metrics.Metrics, name string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.Metric) == 1 {
			if c := mf.Metric[0].GetCounter(); c != nil {
				return c.GetValue()
			}
			return mf.Metric[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
