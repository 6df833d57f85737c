package session

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fwslot/fwslot/internal/testnet"
)

// TestCommitsPerCommand holds each command to its budget of history
// commits (each one a write and an fsync of the file): a swap, rollback
// or restore records its activation and the kernel record in one commit;
// a load makes its versions durable before the kernel changes (the one
// it adopts from a table fwslot takes over with the new one), then
// records the kernel state and prunes in a second one. Each step also
// checks that what the single commit wrote is all there.
func TestCommitsPerCommand(t *testing.T) {
	ns, tg := nsTarget(t, "fwslot-commits")
	v1 := writeRuleset(t, "ssh.nft", onlySSH)
	v2 := writeRuleset(t, "web.nft", onlyWeb)
	ctx := context.Background()
	// What ran before fwslot: the first load adopts it as version 1, so
	// ssh.nft is version 2 and web.nft version 3.
	testnet.Run(t, ns, "nft", "add table inet filter; add chain inet filter input { type filter hook input priority 0; policy accept; }")
	steps := []struct {
		name string
		max  uint64 // commits allowed
		min  uint64
		run  func() error
		prod uint64 // recorded production afterwards
		act  bool   // records an activation to prod
	}{
		{"load ssh, adopting the existing table", 2, 2, func() error {
			res, err := tg.Load(ctx, v1, LoadOptions{})
			if err == nil && (res.Adopted != 1 || res.Version != 2) {
				err = fmt.Errorf("adopted %d, loaded %d: want 1 and 2", res.Adopted, res.Version)
			}
			return err
		}, 1, false},
		{"swap to ssh", 1, 1, func() error { _, err := tg.Swap(ctx, SwapOptions{}); return err }, 2, true},
		{"load web", 2, 2, func() error { _, err := tg.Load(ctx, v2, LoadOptions{}); return err }, 2, false},
		{"swap to web with confirmation", 1, 1, func() error { _, err := tg.Swap(ctx, SwapOptions{Confirm: time.Hour}); return err }, 3, true},
		{"confirm", 1, 1, func() error { _, err := confirmOnce(ctx, tg); return err }, 3, false},
		{"rollback to ssh", 1, 1, func() error { _, err := tg.Rollback(ctx, 0); return err }, 2, true},
		{"load web again (already staged: nothing to do)", 0, 0, func() error { _, err := tg.Load(ctx, v2, LoadOptions{}); return err }, 2, false},
		{"swap to web after a foreign change elsewhere (content check)", 1, 1, func() error {
			testnet.Run(t, ns, "nft", "add table ip other")
			if _, err := tg.Swap(ctx, SwapOptions{}); err != nil {
				return err
			}
			// The clean check is recorded: the next one takes the fast path.
			k, _, err := tg.Store.Kernel(tg.Key())
			if err != nil {
				return err
			}
			c, err := tg.kernelTarget().Dial()
			if err != nil {
				return err
			}
			defer c.Close()
			if gen, err := c.GenID(); err != nil || gen != k.Gen {
				return fmt.Errorf("recorded generation %d, the kernel's is %d (%v)", k.Gen, gen, err)
			}
			return nil
		}, 3, true},
		{"restore after the kernel was emptied", 1, 1, func() error {
			testnet.Run(t, ns, "nft", "flush", "ruleset")
			_, err := restoreOnce(ctx, tg)
			return err
		}, 3, true},
	}
	for _, st := range steps {
		before := tg.Store.Commits()
		acts, err := tg.Store.Activations(tg.Key())
		if err != nil {
			t.Fatal(err)
		}
		if err := st.run(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		got := tg.Store.Commits() - before
		if got > st.max || got < st.min {
			t.Errorf("%s: %d history commits, want %d..%d", st.name, got, st.min, st.max)
		}
		k, ok, err := tg.Store.Kernel(tg.Key())
		if err != nil || !ok || k.Production != st.prod {
			t.Errorf("%s: recorded kernel %+v (recorded %v, %v), want production %d", st.name, k, ok, err, st.prod)
		}
		after, err := tg.Store.Activations(tg.Key())
		if err != nil {
			t.Fatal(err)
		}
		want := len(acts)
		if st.act {
			want++
		}
		if len(after) != want || (st.act && after[len(after)-1].To != st.prod) {
			t.Errorf("%s: activations %+v, want %d, the last to %d", st.name, after, want, st.prod)
		}
	}
}

// TestEndingPendingSwapIsOneCommit: a rollback or a revert over a swap
// waiting for confirmation records its activation, the pending swap's end
// and the kernel record in one commit.
func TestEndingPendingSwapIsOneCommit(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		run    func(tg *Target, pending uint64) error
		how    string
		result string // of the pending swap afterwards
		note   string // of the new activation
	}{
		{"rollback", func(tg *Target, _ uint64) error { _, err := tg.Rollback(ctx, 0); return err }, "rollback", "rolled back", ""},
		{"revert", func(tg *Target, seq uint64) error {
			_, err := revert(ctx, tg, seq, "not confirmed in time")
			return err
		}, "revert", "reverted", "not confirmed in time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, tg, p := pendingWeb(t, "fwslot-settle")
			before := tg.Store.Commits()
			if err := tt.run(tg, p.Seq); err != nil {
				t.Fatal(err)
			}
			if got := tg.Store.Commits() - before; got != 1 {
				t.Errorf("%d history commits, want 1", got)
			}
			acts, err := tg.Store.Activations(tg.Key())
			if err != nil || len(acts) != 3 {
				t.Fatalf("activations %+v (%v), want 3", acts, err)
			}
			if acts[1].Seq != p.Seq || acts[1].Result != tt.result {
				t.Errorf("pending swap ended as %q, want %q", acts[1].Result, tt.result)
			}
			if last := acts[2]; last.How != tt.how || last.To != 1 || last.Note != tt.note || last.Result != "" {
				t.Errorf("recorded %+v, want %s to 1 with note %q", last, tt.how, tt.note)
			}
			if k, _, err := tg.Store.Kernel(tg.Key()); err != nil || k.Production != 1 || k.Staging != 2 {
				t.Errorf("kernel record %+v (%v), want production 1, staging 2", k, err)
			}
		})
	}
}

// TestReconcileRepairsInOneCommit: when the watchdog reverted a pending
// swap in the kernel while history was busy, the next command records the
// revert, the pending swap's end and the kernel's slots in one commit;
// with nothing to repair it writes nothing.
func TestReconcileRepairsInOneCommit(t *testing.T) {
	ctx := context.Background()
	ns, tg, p := pendingWeb(t, "fwslot-reconcile")
	id, db := identity(t, tg)
	w := &Watchdog{NetNS: ns, DB: db, Owner: id, Seq: p.Seq, From: 1, To: 2}
	if msg, err := w.revertKernel(); err != nil {
		t.Fatal(err)
	} else if !strings.Contains(msg, "reverted in the kernel") {
		t.Fatalf("watchdog: %s", msg)
	}
	for i, want := range []struct {
		commits  uint64
		repaired int
	}{{1, 2}, {0, 0}} {
		before := tg.Store.Commits()
		s, err := Open(ctx, tg, Options{})
		if err != nil {
			t.Fatal(err)
		}
		repaired := s.Repaired()
		s.Close()
		if got := tg.Store.Commits() - before; got != want.commits || len(repaired) != want.repaired {
			t.Errorf("reconcile %d: %d commits, repaired %q; want %d commits, %d repairs", i+1, got, repaired, want.commits, want.repaired)
		}
	}
	acts, err := tg.Store.Activations(tg.Key())
	if err != nil || len(acts) != 3 || acts[1].Result != "reverted" || acts[2].How != "revert" || acts[2].To != 1 {
		t.Fatalf("activations %+v (%v): want the pending swap reverted and a revert to 1", acts, err)
	}
	if k, _, err := tg.Store.Kernel(tg.Key()); err != nil || k.Production != 1 || k.Staging != 2 {
		t.Fatalf("kernel record %+v (%v), want production 1, staging 2", k, err)
	}
}
