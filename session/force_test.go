package session

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/fwslot/fwslot/internal/kerneltest"
	"github.com/fwslot/fwslot/internal/testnet"
)

// swap --force over hand edits makes the staged version live as history
// has it, never the hand-edited slot content under its number, and names
// every object it deletes that fwslot did not write.
func TestForcedSwapRestagesFromHistory(t *testing.T) {
	v2 := strings.Replace(dropAllBut22, "tcp dport 22 accept", "tcp dport { 22, 8080 } accept", 1)
	cases := []struct {
		name, edit string
		// deleted lists substrings of the objects the swap must name
		deleted []string
	}{
		{"rule added to the staged slot", "add rule inet filter fwslot_a_input tcp dport 8081 accept", nil},
		{"rule replaced in the staged slot", "flush chain inet filter fwslot_a_input; add rule inet filter fwslot_a_input tcp dport 8081 accept", nil},
		{"chain added to the staged slot", "add chain inet filter fwslot_a_extra; add rule inet filter fwslot_a_input tcp dport 8081 jump fwslot_a_extra; add rule inet filter fwslot_a_extra accept",
			[]string{"chain fwslot_a_extra, added by hand to the slot"}},
		{"another tool's base chain", "add chain inet filter other { type filter hook input priority 10; policy accept; }; add rule inet filter other counter",
			[]string{"base chain other (1 rules), which no version in the slots declares"}},
		{"rule added to the live base chain", "insert rule inet filter input tcp dport 8081 accept",
			[]string{"base chain input holds 3 rules"}},
		{"regular chain added", "add chain inet filter extra; add rule inet filter extra counter",
			[]string{"chain extra, which no version declares"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			target, peer := testnet.Pair(t)
			for _, p := range []string{":22", ":8080", ":8081"} {
				testnet.Listen(t, target, "tcp", p)
			}
			tg := newTarget(t, target)
			load(t, tg, writeRuleset(t, "v1.nft", dropAllBut22))
			mustSwap(t, tg)
			if r := load(t, tg, writeRuleset(t, "v2.nft", v2)); r.Slot != "a" {
				t.Fatalf("version 2 staged in slot %s, the edits assume a", r.Slot)
			}
			testnet.Run(t, target, "nft", c.edit)
			if _, err := tg.Swap(context.Background(), SwapOptions{}); err == nil {
				t.Fatal("swap over drift succeeded without --force")
			}
			res, err := tg.Swap(context.Background(), SwapOptions{Force: true})
			if err != nil {
				t.Fatalf("swap --force: %v", err)
			}
			if res.To != 2 || !res.Restaged || len(res.Overrode) == 0 {
				t.Fatalf("swap --force over drift: %+v", res)
			}
			// Version 2 as history has it: 8081 stays closed.
			expectReach(t, peer, map[string]bool{"22": true, "8080": true, "8081": false})
			got := strings.Join(res.Deleted, "\n")
			for _, want := range c.deleted {
				if !strings.Contains(got, want) {
					t.Errorf("deleted objects %q do not name %q", res.Deleted, want)
				}
			}
			if len(res.Deleted) != len(c.deleted) {
				t.Errorf("deleted %q, want %d objects", res.Deleted, len(c.deleted))
			}
			ruleset := nftList(t, target, "list", "table", "inet", "filter")
			for _, gone := range []string{"chain other", "chain extra", "fwslot_a_extra", "8081"} {
				if strings.Contains(ruleset, gone) {
					t.Errorf("%q survived the forced swap:\n%s", gone, ruleset)
				}
			}
			st, err := tg.Status(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if st.Production.Version != 2 {
				t.Fatalf("production is version %d", st.Production.Version)
			}
			for _, ch := range st.DriftChanges {
				if strings.HasPrefix(ch, "production") {
					t.Errorf("the live version differs from history: %s", ch)
				}
			}
		})
	}
}

// A forced swap over drift that cannot restage (history lost the staged
// version) refuses and leaves production exactly as it was.
func TestForcedSwapWithoutHistoryChangesNothing(t *testing.T) {
	target, peer := testnet.Pair(t)
	testnet.Listen(t, target, "tcp", ":22")
	testnet.Listen(t, target, "tcp", ":8081")
	tg := newTarget(t, target)
	load(t, tg, writeRuleset(t, "v1.nft", dropAllBut22))
	mustSwap(t, tg)
	load(t, tg, writeRuleset(t, "v2.nft", dropAllBut22+"# v2\n"))
	testnet.Run(t, target, "nft", "add rule inet filter fwslot_a_input tcp dport 8081 accept")
	if err := tg.Store.DeleteVersion(tg.Key(), 2); err != nil {
		t.Fatal(err)
	}
	before := kerneltest.Production(t, target)
	if _, err := tg.Swap(context.Background(), SwapOptions{Force: true}); err == nil {
		t.Fatal("forced swap without the staged version in history succeeded")
	}
	if !bytes.Equal(before, kerneltest.Production(t, target)) {
		t.Fatal("a failed forced swap changed production")
	}
	expectReach(t, peer, map[string]bool{"22": true, "8081": false})
}
