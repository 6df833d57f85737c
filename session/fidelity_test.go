package session

import (
	"context"
	"testing"

	"github.com/fwslot/fwslot/internal/testnet"
)

// TestTransplantedFeaturesFilterPackets runs rulesets with the features the
// transplant used to get wrong (anonymous binding chains, objects of
// different types under one name, named meters, set updates with two
// statements) through load, swap, a second load and swap, rollback, and a
// third load over the slot that held the second version, with real
// connections after each activation.
func TestTransplantedFeaturesFilterPackets(t *testing.T) {
	wrap := func(decl, rules string) string {
		return "table inet filter {\n" + decl + "\n\tchain input {\n\t\ttype filter hook input priority 0; policy drop;\n" +
			"\t\tct state established,related accept\n" + rules + "\n\t}\n}\n"
	}
	cases := []struct {
		name   string
		v1, v2 string // v1 lets 22 in, v2 lets 80 in
	}{
		{"binding chains",
			wrap("", "\t\ttcp dport 22 jump { ip saddr "+testnet.PeerIP+" accept; drop; }\n\t\ttcp dport 80 goto { drop; }"),
			wrap("", "\t\ttcp dport 80 jump { counter; accept; }\n\t\ttcp dport 22 goto { counter; drop; }")},
		{"objects sharing a name",
			wrap("\tcounter x { }\n\tquota x { until 100 mbytes }\n\tlimit x { rate 1000/second }", "\t\ttcp dport 22 counter name \"x\" quota name \"x\" limit name \"x\" accept"),
			wrap("\tcounter x { }\n\tquota x { until 100 mbytes }\n\tlimit x { rate 1000/second }\n\tct helper x { type \"ftp\" protocol tcp; }", "\t\ttcp dport 80 quota name \"x\" limit name \"x\" accept")},
		{"meters",
			wrap("", "\t\ttcp dport 22 meter f { ip saddr limit rate 1000/second } accept"),
			wrap("", "\t\ttcp dport 80 meter f { ip saddr limit rate 1000/second } accept")},
		{"set update with two statements",
			wrap("\tset s { type ipv4_addr; flags dynamic; }", "\t\ttcp dport 22 update @s { ip saddr counter limit rate 1000/second } accept"),
			wrap("\tset s { type ipv4_addr; flags dynamic; }", "\t\ttcp dport 80 update @s { ip saddr counter limit rate 1000/second } accept")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			target, peer := servingPair(t)
			tg := newTarget(t, target)
			ssh := map[string]bool{"22": true, "80": false}
			web := map[string]bool{"22": false, "80": true}

			load(t, tg, writeRuleset(t, "v1.nft", c.v1))
			mustSwap(t, tg)
			expectReach(t, peer, ssh)
			load(t, tg, writeRuleset(t, "v2.nft", c.v2))
			mustSwap(t, tg)
			expectReach(t, peer, web)
			mustRollback(t, tg, 0)
			expectReach(t, peer, ssh)
			load(t, tg, writeRuleset(t, "v3.nft", c.v2+"# third load\n"))
			mustSwap(t, tg)
			expectReach(t, peer, web)
			if st, err := tg.Status(context.Background()); err != nil || len(st.Warnings) != 0 || st.Production.Version != 3 {
				t.Fatalf("status after the third load: %+v %v", st, err)
			}
			// Both slots hold exactly their versions, rule by rule.
			s, err := Open(context.Background(), tg, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			d, err := s.Drift(true)
			if err != nil {
				t.Fatal(err)
			}
			if d.Drift || len(d.Changes) != 0 {
				t.Fatalf("slots differ from their versions: %v", d.Changes)
			}
		})
	}
}
