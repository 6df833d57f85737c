package session

import (
	"context"
	"strings"
	"testing"

	"github.com/fwslot/fwslot/internal/testnet"
)

const blackhole = `table inet filter {
	set blackhole { type ipv4_addr; }
	chain input {
		type filter hook input priority 0; policy accept;
		ip saddr @blackhole drop
	}
}
`

// A set declared without elements is fed by hand (`nft add element`), so
// it is state: both slots share it under the user's name, and what the
// operator put there keeps blocking through swaps, rollbacks and the
// takeover of an existing table.
func TestHandFedSetSurvives(t *testing.T) {
	const other = "198.51.100.9"
	cases := []struct {
		name string
		// adopt runs the ruleset with nft -f and feeds the set before
		// fwslot's first load.
		adopt bool
	}{
		{"managed from the start", false},
		{"taken over from nft -f", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			target, peer := testnet.Pair(t)
			testnet.Listen(t, target, "tcp", ":22")
			tg := newTarget(t, target)
			feed := func(addr string) {
				testnet.Run(t, target, "nft", "add element inet filter blackhole { "+addr+" }")
			}
			blocked := func(step string) {
				t.Helper()
				expectReach(t, peer, map[string]bool{"22": false})
				for _, addr := range []string{testnet.PeerIP, other} {
					if out := nftList(t, target, "list", "set", "inet", "filter", "blackhole"); !strings.Contains(out, addr) {
						t.Fatalf("%s: %s left the set:\n%s", step, addr, out)
					}
				}
			}
			if c.adopt {
				testnet.Run(t, target, "nft", "-f", writeRuleset(t, "legacy.nft", blackhole))
				feed(testnet.PeerIP)
				feed(other)
				blocked("before fwslot")
			}
			load(t, tg, writeRuleset(t, "v1.nft", blackhole+"# v1\n"))
			mustSwap(t, tg)
			if !c.adopt {
				expectReach(t, peer, map[string]bool{"22": true})
				feed(testnet.PeerIP)
				feed(other)
			}
			blocked("version 1 live")
			load(t, tg, writeRuleset(t, "v2.nft", blackhole+"# v2\n"))
			mustSwap(t, tg)
			blocked("after a swap")
			mustRollback(t, tg, 0)
			blocked("after a rollback")
			if c.adopt {
				// Back to what ran before fwslot, restaged from
				// history: the set is the same kernel set.
				mustRollback(t, tg, 1)
				blocked("after a rollback to the adopted version")
			}
			testnet.Run(t, target, "nft", "delete element inet filter blackhole { "+testnet.PeerIP+" }")
			expectReach(t, peer, map[string]bool{"22": true})
			if st, err := tg.Status(context.Background()); err != nil || st.Drift {
				t.Fatalf("hand-fed elements reported as drift: %v %v", err, st.DriftChanges)
			}
		})
	}
}
