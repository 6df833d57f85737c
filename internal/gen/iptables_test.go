package gen

import (
	"strings"
	"testing"
)

func TestIptablesSaveTranslatesEveryRule(t *testing.T) {
	for _, fam := range []string{"ip", "ip6", "inet"} {
		for _, n := range []int{0, 5, 100, 1000, 10000} {
			ipt, err := IptablesSave(Options{Rules: n, Seed: 7, Family: fam})
			if err != nil {
				t.Fatalf("%s %d: %v", fam, n, err)
			}
			nft := Ruleset(Options{Rules: n, Seed: 7, Family: fam})
			// Every nft rule becomes at least one iptables rule somewhere.
			if got := ipt.Rules4 + ipt.Rules6; got < n {
				t.Errorf("%s %d rules: %d iptables rules", fam, n, got)
			}
			for _, s := range []string{ipt.V4, ipt.V6} {
				if s != "" && (!strings.Contains(s, "*filter\n") || !strings.HasSuffix(s, "COMMIT\n")) {
					t.Errorf("%s %d: not iptables-save form:\n%s", fam, n, s)
				}
			}
			if strings.Contains(nft, "policy drop") && fam != "ip6" && !strings.Contains(ipt.V4, ":INPUT DROP") {
				t.Errorf("%s %d: input policy lost", fam, n)
			}
		}
	}
	if _, err := IptablesSave(Options{Rules: 100, Sets: true}); err == nil {
		t.Error("named sets must be refused")
	}
}

func TestIptablesSaveDeterministic(t *testing.T) {
	a, _ := IptablesSave(Options{Rules: 2000, Seed: 3, Family: "ip"})
	b, _ := IptablesSave(Options{Rules: 2000, Seed: 3, Family: "ip"})
	if a != b {
		t.Fatal("same options, different output")
	}
}
