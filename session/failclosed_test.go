package session

import (
	"context"
	"strings"
	"testing"

	"github.com/fwslot/fwslot/internal/testnet"
)

// dropAllBut22 is onlySSH without connection tracking and resets: the
// base chain's policy alone drops what port 22 does not accept.
var dropAllBut22 = strings.NewReplacer(
	"\t\tct state established,related accept\n", "",
	"\t\tmeta l4proto tcp reject with tcp reset\n", "").Replace(onlySSH)

// A base chain flushed by hand must fail closed exactly as under plain
// nft: the user's policy sits on the base chain itself, so an empty chain
// drops. Each case loads the same policy-drop ruleset (with nft -f, or
// with fwslot load and swap), flushes by hand inside the namespace, and
// tries new TCP connections.
func TestHandFlushFailsClosed(t *testing.T) {
	cases := []struct {
		name   string
		fwslot bool
		flush  string
	}{
		{"plain nft, flush chain", false, "flush chain inet filter input"},
		{"plain nft, flush table", false, "flush table inet filter"},
		{"fwslot, flush chain", true, "flush chain inet filter input"},
		{"fwslot, flush table", true, "flush table inet filter"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			target, peer := testnet.Pair(t)
			testnet.Listen(t, target, "tcp", ":22")
			testnet.Listen(t, target, "tcp", ":8080")
			file := writeRuleset(t, "drop.nft", dropAllBut22)
			if c.fwslot {
				tg := newTarget(t, target)
				load(t, tg, file)
				mustSwap(t, tg)
			} else {
				testnet.Run(t, target, "nft", "-f", file)
			}
			expectReach(t, peer, map[string]bool{"22": true, "8080": false})
			testnet.Run(t, target, "nft", c.flush)
			expectReach(t, peer, map[string]bool{"22": false, "8080": false})
			contains(t, nftList(t, target, "list", "chain", "inet", "filter", "input"), "policy drop;")
		})
	}
}

// A swap between a policy-drop and a policy-accept version changes the
// kernel chain's own policy in the same transaction as the dispatch, and
// rollback changes it back; a hand flush then does what the live
// version's policy says.
func TestSwapFlipsChainPolicy(t *testing.T) {
	target, peer := testnet.Pair(t)
	testnet.Listen(t, target, "tcp", ":22")
	testnet.Listen(t, target, "tcp", ":8080")
	tg := newTarget(t, target)
	acceptBut22 := strings.NewReplacer("policy drop", "policy accept", "tcp dport 22 accept", "tcp dport 22 drop").Replace(dropAllBut22)
	load(t, tg, writeRuleset(t, "drop.nft", dropAllBut22))
	mustSwap(t, tg)
	load(t, tg, writeRuleset(t, "accept.nft", acceptBut22))

	type state struct {
		policy string
		reach  map[string]bool
	}
	dropping := state{"policy drop;", map[string]bool{"22": true, "8080": false}}
	accepting := state{"policy accept;", map[string]bool{"22": false, "8080": true}}
	check := func(step string, want state) {
		t.Helper()
		expectReach(t, peer, want.reach)
		chain := nftList(t, target, "list", "chain", "inet", "filter", "input")
		if !strings.Contains(chain, want.policy) {
			t.Fatalf("%s: want %q on the base chain:\n%s", step, want.policy, chain)
		}
		st, err := tg.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if st.Drift || len(st.Warnings) > 0 {
			t.Fatalf("%s: drift %v %v, warnings %v", step, st.Drift, st.DriftChanges, st.Warnings)
		}
	}
	check("version 1 live", dropping)
	mustSwap(t, tg)
	check("swap to version 2", accepting)
	mustRollback(t, tg, 0)
	check("rollback to version 1", dropping)
	mustSwap(t, tg)
	check("swap to version 2 again", accepting)

	// Under the policy-accept version, a flushed chain accepts, as plain
	// nft's would.
	testnet.Run(t, target, "nft", "flush chain inet filter input")
	expectReach(t, peer, map[string]bool{"22": true, "8080": true})
}
