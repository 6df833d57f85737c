package session

import (
	"context"
	"strings"
	"testing"

	"github.com/fwslot/fwslot/internal/testnet"
)

// A change fwslot did not make and that touches nothing it manages (here
// a fail2ban-like table with a set fed by hand) moves the ruleset
// generation, so the next command compares both slots with history. The
// staged version's base chains, tables and policies that production lacks
// are intentionally absent from the kernel until the swap: they are not
// drift, and swap goes ahead.
func TestUnrelatedChangeIsNotDrift(t *testing.T) {
	withOutput := strings.Replace(dropAllBut22, "}\n}\n", `}
	chain output { type filter hook output priority 0; policy accept; tcp dport 9 drop; }
}
`, 1)
	withTable := dropAllBut22 + `table ip extra {
	chain pre { type filter hook prerouting priority -5; policy accept; tcp dport 9 drop; }
}
`
	accepting := strings.NewReplacer("policy drop", "policy accept", "tcp dport 22 accept", "tcp dport 8080 drop").Replace(dropAllBut22)
	cases := []struct {
		name, v1, v2 string
		// reach after the swap to v2
		reach map[string]bool
	}{
		{"staging adds a base chain", dropAllBut22, withOutput, map[string]bool{"22": true, "8080": false}},
		{"staging drops a base chain", withOutput, dropAllBut22, map[string]bool{"22": true, "8080": false}},
		{"staging adds a table", dropAllBut22, withTable, map[string]bool{"22": true, "8080": false}},
		{"staging drops a table", withTable, dropAllBut22, map[string]bool{"22": true, "8080": false}},
		{"staging changes the policy", dropAllBut22, accepting, map[string]bool{"22": true, "8080": false, "8081": true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			target, peer := testnet.Pair(t)
			testnet.Listen(t, target, "tcp", ":22")
			testnet.Listen(t, target, "tcp", ":8080")
			testnet.Listen(t, target, "tcp", ":8081")
			tg := newTarget(t, target)
			load(t, tg, writeRuleset(t, "v1.nft", c.v1))
			mustSwap(t, tg)
			load(t, tg, writeRuleset(t, "v2.nft", c.v2))
			testnet.Run(t, target, "nft", "add table ip f2b; add set ip f2b banned { type ipv4_addr; }; add element ip f2b banned { 198.51.100.9 }")
			st, err := tg.Status(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if st.Drift || len(st.Warnings) > 0 {
				t.Fatalf("unrelated table reported as drift: %v; warnings %v", st.DriftChanges, st.Warnings)
			}
			if res := mustSwap(t, tg); res.To != 2 {
				t.Fatalf("swap went to %d", res.To)
			}
			expectReach(t, peer, c.reach)
			if st, err := tg.Status(context.Background()); err != nil || st.Drift {
				t.Fatalf("after the swap: %v %v", err, st.DriftChanges)
			}
			contains(t, nftList(t, target, "list", "set", "ip", "f2b", "banned"), "198.51.100.9")
		})
	}
}
