package session

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/names"
	"github.com/fwslot/fwslot/internal/nfnl"
	"github.com/fwslot/fwslot/internal/slots"
)

// ErrNotEmpty means restore found fwslot tables in the kernel already.
var ErrNotEmpty = errors.New("the kernel already holds fwslot's tables")

// RestoreOptions tune Restore.
type RestoreOptions struct {
	// Progress, when set, is told each phase as it starts and how far
	// the restore then is (0-100, never going back): a restore of big
	// versions reads and stages tens of MB (the CLI's progress line).
	Progress func(phase string, pct int)
}

// Restore rebuilds the slots after a reboot, when the kernel is empty: the
// last confirmed production goes live and the last staged version waits
// beside it, in one transaction. Versions compiled for other interface
// indexes than the target has now are compiled again from their source.
func (s *Session) Restore(ctx context.Context, opts RestoreOptions) (*Result, error) {
	step := func(phase string, pct int) {
		if opts.Progress != nil {
			opts.Progress(phase, pct)
		}
	}
	step("reading the kernel and history", 0)
	start := time.Now()
	if err := s.begin(nil, start); err != nil {
		return nil, err
	}
	t := s.t
	if m := s.st.Managed(); len(m) > 0 {
		if s.status.Production != nil {
			return nil, fmt.Errorf("%w (version %d is live); restore is for an empty kernel after boot", ErrNotEmpty, s.status.Production.Version)
		}
		return nil, fmt.Errorf("%w (table %s); restore is for an empty kernel after boot", ErrNotEmpty, m[0].Key())
	}
	prod, err := t.Store.LastConfirmed(t.Key())
	if err != nil {
		return nil, err
	}
	pending, isPending, err := t.Store.Pending(t.Key())
	if err != nil {
		return nil, err
	}
	if prod == 0 {
		return nil, errors.New("history holds no version that went live: nothing to restore")
	}
	ifaces, err := s.k.Interfaces()
	if err != nil {
		return nil, err
	}
	b := nfnl.Batch{Gen: s.st.Gen}
	// Tables flushed by hand hold fwslot's chains without its rules: they
	// are deleted and rebuilt in this same transaction, so their base
	// chains' policies hold until the rebuilt version takes over.
	flushed := dropFlushed(&b, s.st)
	k, _, err := t.Store.Kernel(t.Key())
	if err != nil {
		return nil, err
	}
	// The other slot gets what was staged, or, when the last swap was
	// never confirmed, the unconfirmed version.
	for _, staged := range []uint64{k.Staging, k.Production} {
		if staged == 0 || staged == prod {
			continue
		}
		step(fmt.Sprintf("staging version %d from history", staged), 10)
		if err := s.stageVersion(ctx, &b, s.st, staged, names.SlotB, ifaces); err != nil {
			return nil, fmt.Errorf("restore staging version %d: %w", staged, err)
		}
		break
	}
	step(fmt.Sprintf("staging version %d from history", prod), 45)
	if err := s.stageVersion(ctx, &b, s.st, prod, names.SlotA, ifaces); err != nil {
		return nil, fmt.Errorf("restore production version %d: %w", prod, err)
	}
	step("restoring: one transaction", 80)
	if err := slots.Flip(&b, s.st, names.SlotA, nil); err != nil {
		return nil, err
	}
	if err := s.own(&b); err != nil {
		return nil, err
	}
	if err := s.commit(&b); err != nil {
		return nil, fmt.Errorf("restore version %d: %w", prod, err)
	}
	res := &Result{To: prod, Slot: names.SlotA, How: "restore", Restaged: true, Repaired: append(s.repaired, flushed...)}
	step("recording in history", 95)
	// The activation, the end of a pending swap and the kernel record
	// share one commit.
	err = t.Store.Update(func(tx *history.Tx) error {
		a, err := tx.AddActivation(t.Key(), history.Activation{To: prod, How: "restore", User: slots.CurrentUser(), Note: "rebuilt from history into an empty kernel"})
		if err != nil {
			return err
		}
		res.Seq = a.Seq
		if isPending {
			note := fmt.Sprintf("the kernel was emptied (reboot) before confirmation; restore brought back version %d", prod)
			if err := tx.SetResult(t.Key(), pending.Seq, "reverted", note); err != nil {
				return err
			}
		}
		return s.recordState(tx, s.st, s.gen)
	})
	if err != nil {
		res.Seq = 0
		return res, fmt.Errorf("version %d is live, but recording it in history failed: %w", prod, err)
	}
	res.Duration = time.Since(start)
	return res, nil
}

// stageVersion adds the messages that put a version from history into a
// slot, compiling it again when the interface indexes have changed.
func (s *Session) stageVersion(ctx context.Context, b *nfnl.Batch, st *slots.State, n uint64, slot names.Slot, ifaces []slots.Iface) error {
	t := s.t
	v, err := t.Store.Meta(t.Key(), n)
	if err != nil {
		return err
	}
	rs, err := s.compiled(n)
	if err != nil {
		return err
	}
	if !sameIndexes(rs.Ifaces, ifaces) {
		full, err := t.Store.Get(t.Key(), n)
		if err != nil {
			return err
		}
		if rs, err = recompile(ctx, full, ifaces); err != nil {
			return err
		}
	}
	return slots.Stage(b, st, rs, slot, slots.Tag{Version: v.Number, Hash: v.Hash}, names.SlotA)
}

// sameIndexes reports whether every interface a ruleset was compiled for
// still has its index.
func sameIndexes(was, now []slots.Iface) bool {
	idx := map[string]int{}
	for _, i := range now {
		idx[i.Name] = i.Index
	}
	for _, i := range was {
		if i.Name == "lo" {
			continue
		}
		if idx[i.Name] != i.Index {
			return false
		}
	}
	return true
}

// recompile compiles a version's flattened source for the current
// interfaces.
func recompile(ctx context.Context, v history.Version, ifaces []slots.Iface) (*Ruleset, error) {
	dir, err := os.MkdirTemp("", "fwslot-restore-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	f := filepath.Join(dir, fmt.Sprintf("version-%d.nft", v.Number))
	if err := os.WriteFile(f, []byte(v.Source), 0o600); err != nil {
		return nil, err
	}
	return slots.Compile(ctx, f, ifaces)
}

// dropFlushed adds to b the deletion of every table that was flushed by
// hand, removes them from st so that staging creates them anew, and says
// what it rebuilds.
func dropFlushed(b *nfnl.Batch, st *slots.State) []string {
	var notes []string
	kept := st.Tables[:0]
	for _, ts := range st.Tables {
		if !ts.Flushed {
			kept = append(kept, ts)
			continue
		}
		var e nfnl.Encoder
		e.String(nfnl.TableName, ts.Name)
		b.Add(nfnl.MsgDelTable, ts.Family, 0, e.Bytes(), "delete flushed table "+ts.Key())
		notes = append(notes, fmt.Sprintf("table %s had been flushed by hand; rebuilt from history (elements added by hand to its sets since the last version are not kept)", ts.Key()))
	}
	st.Tables = kept
	return notes
}
