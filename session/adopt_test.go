package session

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/fwslot/fwslot/internal/kerneltest"
	"github.com/fwslot/fwslot/internal/testnet"
)

// A host that already runs a ruleset (nftables.service) keeps running it
// through the first load; the first swap takes the table over, and the
// first rollback returns to exactly what ran before.
func TestAdoptExistingTable(t *testing.T) {
	target, peer := servingPair(t)
	legacy := writeRuleset(t, "nftables.conf", `table inet filter {
	set admins { type ipv4_addr; elements = { 192.0.2.2, 198.51.100.1 } }
	set seen { type ipv4_addr; flags dynamic; }
	counter sshc { }
	chain ssh { ip saddr @admins counter name sshc accept; }
	chain input {
		type filter hook input priority 0; policy drop;
		update @seen { ip saddr }
		tcp dport 22 jump ssh
		meta l4proto tcp reject with tcp reset
	}
}
`)
	testnet.Run(t, target, "nft", "-f", legacy)
	before := kerneltest.Production(t, target)
	expectReach(t, peer, map[string]bool{"22": true, "80": false})

	tg := newTarget(t, target)
	web := writeRuleset(t, "web.nft", onlyWeb+`table inet filter { set seen { type ipv4_addr; flags dynamic; }; }`+"\n")
	res := load(t, tg, web)
	if res.Adopted != 1 || res.Version != 2 || res.Slot != "b" {
		t.Fatalf("first load over an existing table: %+v", res)
	}
	if !bytes.Equal(before, kerneltest.Production(t, target)) {
		t.Fatal("load changed the running legacy table")
	}
	expectReach(t, peer, map[string]bool{"22": true, "80": false})
	st, err := tg.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !st.Takeover || st.Production.Version != 1 || st.Production.Origin != "adopted" || st.Staging.Version != 2 {
		t.Fatalf("status before takeover: %+v prod=%+v staging=%+v", st, st.Production, st.Staging)
	}

	mustSwap(t, tg)
	expectReach(t, peer, map[string]bool{"22": false, "80": true})
	ruleset := nftList(t, target, "list", "table", "inet", "filter")
	for _, gone := range []string{"chain ssh {", "set admins {"} {
		if strings.Contains(ruleset, gone) {
			t.Fatalf("legacy %q still there after takeover:\n%s", gone, ruleset)
		}
	}
	// The dynamic set is state: it stays, with what packets put in it.
	contains(t, nftList(t, target, "list", "set", "inet", "filter", "seen"), testnet.PeerIP)

	res2 := mustRollback(t, tg, 0)
	if res2.To != 1 {
		t.Fatalf("rollback went to %d, want the adopted version 1", res2.To)
	}
	expectReach(t, peer, map[string]bool{"22": true, "80": false})
	if st, _ := tg.Status(context.Background()); st.Takeover || len(st.Warnings) != 0 {
		t.Fatalf("status after rollback: takeover=%v warnings=%v", st.Takeover, st.Warnings)
	}
	v, err := tg.Store.Get(tg.Key(), 1)
	if err != nil {
		t.Fatal(err)
	}
	contains(t, v.Source, "chain ssh")
	contains(t, v.Source, "policy drop")
}

// Taking over a table whose objects share names with the new version's
// objects keeps exactly the objects the versions share, by type and name:
// the counter x and quota y stay (shared by the adopted version, which a
// rollback returns to), the legacy limit x goes (the adopted version has
// its own copy in its slot), although a shared counter is named x too.
func TestAdoptKeepsSharedObjectsByType(t *testing.T) {
	target := testnet.Namespace(t, "fwslot-adopt-")
	legacy := writeRuleset(t, "nftables.conf", `table inet filter {
	counter x { }
	limit x { rate 10/second }
	quota y { over 10 mbytes }
	chain input {
		type filter hook input priority 0; policy accept;
		counter name "x"
		limit name "x" accept
		quota name "y" drop
	}
}
`)
	testnet.Run(t, target, "nft", "-f", legacy)
	tg := newTarget(t, target)
	load(t, tg, writeRuleset(t, "v2.nft", `table inet filter {
	counter x { }
	chain input {
		type filter hook input priority 0; policy accept;
		counter name "x"
	}
}
`))
	mustSwap(t, tg)
	objs := nftList(t, target, "list", "table", "inet", "filter")
	for _, tc := range []struct {
		what string
		want bool
	}{
		{"counter x {", true},
		{"limit x {", false},
		{"quota y {", true},
		{"limit fwslot_a_x {", true},
	} {
		if strings.Contains(objs, tc.what) != tc.want {
			t.Errorf("after takeover, %q present = %v, want %v:\n%s", tc.what, !tc.want, tc.want, objs)
		}
	}
}

// A legacy table with anonymous chains (`jump { ... }`) is taken over and
// given back by rollback: the anonymous chains go with the rules that
// hold them, and come back with the adopted version.
func TestAdoptTableWithAnonymousChains(t *testing.T) {
	target, peer := servingPair(t)
	legacy := writeRuleset(t, "nftables.conf", `table inet filter {
	chain ssh { tcp dport 22 jump { accept; }; }
	chain input {
		type filter hook input priority 0; policy drop;
		ct state established,related accept
		jump ssh
		tcp dport 80 goto { drop; }
	}
}
`)
	testnet.Run(t, target, "nft", "-f", legacy)
	expectReach(t, peer, map[string]bool{"22": true, "80": false})
	tg := newTarget(t, target)
	load(t, tg, writeRuleset(t, "web.nft", onlyWeb))
	mustSwap(t, tg)
	expectReach(t, peer, map[string]bool{"22": false, "80": true})
	if list := nftList(t, target, "list", "table", "inet", "filter"); strings.Contains(list, "chain ssh {") {
		t.Fatalf("legacy chain still there after takeover:\n%s", list)
	}
	mustRollback(t, tg, 0)
	expectReach(t, peer, map[string]bool{"22": true, "80": false})
	mustSwap(t, tg)
	expectReach(t, peer, map[string]bool{"22": false, "80": true})
	if st, err := tg.Status(context.Background()); err != nil || len(st.Warnings) != 0 || st.Drift {
		t.Fatalf("status: %+v %v", st, err)
	}
}
