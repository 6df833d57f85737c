package bench

import (
	"strings"
	"testing"

	"github.com/fwslot/fwslot/internal/gen"
)

func TestGenProbesHasEveryVerdict(t *testing.T) {
	for _, n := range []int{1000, 10000} {
		ps, err := GenProbes(gen.Ruleset(gen.Options{Rules: n, Seed: 1, Family: Family}), 1000)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(ps), "\n")
		if len(lines) != 1000 {
			t.Fatalf("%d probes", len(lines))
		}
		for _, v := range []string{"accept udp", "reject tcp", "drop tcp"} {
			if c := strings.Count(ps, v); c < 300 {
				t.Errorf("%d rules: %d %q probes", n, c, v)
			}
		}
	}
}

func TestWithRule(t *testing.T) {
	text := gen.Ruleset(gen.Options{Rules: 100, Seed: 1, Family: Family})
	first := withRule(text, "udp dport 9999 counter accept", true)
	if !strings.Contains(first, "policy drop;\n\t\tudp dport 9999 counter accept\n") {
		t.Error("not first")
	}
	last := withRule(text, "udp dport 9999 accept", false)
	i := strings.Index(last, "udp dport 9999 accept\n\t}\n\tchain forward")
	if i < 0 {
		t.Errorf("not last:\n%s", last)
	}
}
