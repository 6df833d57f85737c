package session

import (
	"bytes"
	"context"
	"encoding/gob"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/names"
	"github.com/fwslot/fwslot/internal/nfnl"
	"github.com/fwslot/fwslot/internal/testnet"
	"github.com/fwslot/fwslot/slots"
)

// newTarget returns a fwslot target on ns with a fresh history file.
func newTarget(t *testing.T, ns string) *Target {
	t.Helper()
	s, err := history.Open(filepath.Join(t.TempDir(), "fwslot.db"), history.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &Target{NetNS: ns, Store: s}
}

// confirmOnce confirms in a session of its own, as `fwslot confirm` does.
func confirmOnce(ctx context.Context, tg *Target) (uint64, error) {
	s, err := Open(ctx, tg, Options{})
	if err != nil {
		return 0, err
	}
	defer s.Close()
	return s.Confirm(ctx)
}

// restoreOnce restores in a session of its own, as `fwslot restore` does.
func restoreOnce(ctx context.Context, tg *Target) (*Result, error) {
	s, err := Open(ctx, tg, Options{})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.Restore(ctx)
}

// identity returns the identity and path of tg's history, as the kernel
// is tagged with them.
func identity(t *testing.T, tg *Target) (id, db string) {
	t.Helper()
	s, err := Open(context.Background(), tg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if id, db, err = s.identity(); err != nil {
		t.Fatal(err)
	}
	return id, db
}

func writeRuleset(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func load(t *testing.T, tg *Target, file string) *LoadResult {
	t.Helper()
	res, err := tg.Load(context.Background(), file, LoadOptions{Message: filepath.Base(file)})
	if err != nil {
		t.Fatalf("load %s: %v", file, err)
	}
	return res
}

func mustSwap(t *testing.T, tg *Target) *Result {
	t.Helper()
	res, err := tg.Swap(context.Background(), SwapOptions{})
	if err != nil {
		t.Fatalf("swap: %v", err)
	}
	return res
}

func mustRollback(t *testing.T, tg *Target, to uint64) *Result {
	t.Helper()
	res, err := tg.Rollback(context.Background(), to)
	if err != nil {
		t.Fatalf("rollback: %v", err)
	}
	return res
}

// production returns the kernel's production objects of a target, encoded
// for comparison: base chains with their rules, the live slot's chains,
// sets (with elements) and objects, and chains fwslot has not taken over
// yet. Shared state sets and fwslot's bookkeeping chains are left out:
// they are not what decides a packet's fate.
func production(t *testing.T, ns string) []byte {
	t.Helper()
	c, err := nfnl.Dial(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, err := slots.ReadState(c)
	if err != nil {
		t.Fatal(err)
	}
	active := names.SlotA
	if m := st.Managed(); len(m) > 0 {
		active = m[0].Active
	}
	rs, err := slots.ReadTables(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	var tables []*slots.Table
	for _, tab := range rs.Tables {
		// Until the first swap takes a table over, its own chains run
		// and the slots wait beside them.
		takeover := false
		if ts := st.Table(tab.Family, tab.Name); ts != nil && ts.Managed {
			takeover = len(ts.Legacy) > 0
			for _, bc := range ts.Base {
				takeover = takeover || (bc.Dispatch == nil && len(bc.Rules) > 0)
			}
		}
		live := func(n string) bool {
			if s, _, ok := names.FromSlot(n); ok {
				return s == active && !takeover
			}
			return !names.Reserved(n)
		}
		var chains []*slots.Chain
		for _, ch := range tab.Chains {
			if ch.Base != nil || live(ch.Name) {
				chains = append(chains, ch)
			}
		}
		tab.Chains = chains
		var sets []*slots.Set
		for _, s := range tab.Sets {
			if _, _, ok := names.FromSlot(s.Name); ok && live(s.Name) {
				sets = append(sets, s)
			}
		}
		tab.Sets = sets
		var objs []*slots.Obj
		for _, o := range tab.Objs {
			if _, _, ok := names.FromSlot(o.Name); ok && live(o.Name) {
				objs = append(objs, o)
			}
		}
		tab.Objs = objs
		tab.Flowtables = nil
		if len(chains)+len(sets)+len(objs) > 0 {
			tables = append(tables, tab)
		}
	}
	rs.Tables = tables
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(rs); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// expectReach checks which ports of the target accept a connection from
// the peer. A connection that should work gets time for SYN
// retransmissions (a busy machine, a link that just came up); one that
// should be dropped fails either way, so it gets less.
func expectReach(t *testing.T, peer string, want map[string]bool) {
	t.Helper()
	for port, ok := range want {
		timeout := 300 * time.Millisecond
		if ok {
			timeout = 3500 * time.Millisecond
		}
		got := testnet.Connect(peer, testnet.TargetIP+":"+port, timeout)
		if got != ok {
			t.Errorf("port %s: connection established = %v, want %v", port, got, ok)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

func nftList(t *testing.T, ns string, args ...string) string {
	t.Helper()
	return testnet.Run(t, ns, append([]string{"nft"}, args...)...)
}

func contains(t *testing.T, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Fatalf("want %q in:\n%s", sub, s)
	}
}
