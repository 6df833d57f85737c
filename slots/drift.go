package slots

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/names"
	"github.com/fwslot/fwslot/internal/nfnl"
)

// Drift says whether the managed tables were changed behind fwslot's back.
type Drift struct {
	Drift   bool     `json:"drift"`
	Changes []string `json:"changes"`
	// Checked says how: "structure" (dispatch and bookkeeping only: the
	// ruleset generation has not moved since fwslot's last change) or
	// "content" (production compared rule by rule with history).
	Checked string `json:"checked"`
}

// CheckDrift compares what the kernel runs with what fwslot put there.
// The dispatch rules and bookkeeping chains are always checked; the
// production slot is compared rule by rule only when the ruleset
// generation moved since fwslot's last change, so the common case costs
// no more than reading the state. Changes to the elements of shared state
// sets are not drift.
func (t *Target) CheckDrift(c *nfnl.Conn, st *State, status *Status) (*Drift, error) {
	return t.checkDrift(c, st, status, false)
}

// CheckDriftFull is CheckDrift that always compares both slots rule by
// rule with history, whatever the generation says.
func (t *Target) CheckDriftFull(c *nfnl.Conn, st *State, status *Status) (*Drift, error) {
	return t.checkDrift(c, st, status, true)
}

func (t *Target) checkDrift(c *nfnl.Conn, st *State, status *Status, full bool) (*Drift, error) {
	d := &Drift{Changes: []string{}, Checked: "structure"}
	if status.Takeover {
		return d, nil
	}
	for _, ts := range st.Managed() {
		specs := ts.BaseSpecs[ts.Active]
		for name, bc := range ts.Base {
			if _, ok := specs[name]; !ok {
				d.Changes = append(d.Changes, fmt.Sprintf("table %s: base chain %s was added by hand", ts.Key(), name))
				continue
			}
			if bc.Dispatch == nil {
				d.Changes = append(d.Changes, fmt.Sprintf("table %s: base chain %s holds %d rules instead of fwslot's dispatch", ts.Key(), name, len(bc.Rules)))
			}
			d.Changes = append(d.Changes, baseDrift(ts, bc, specs[name])...)
		}
		for name := range specs {
			if ts.Base[name] == nil {
				d.Changes = append(d.Changes, fmt.Sprintf("table %s: base chain %s was deleted", ts.Key(), name))
			}
		}
		for _, l := range ts.Legacy {
			d.Changes = append(d.Changes, fmt.Sprintf("table %s: chain %s was added by hand", ts.Key(), l))
		}
	}
	if (status.Production != nil || status.Staging != nil) && t.Store != nil {
		gen := st.Gen // read with the state, before the tables
		k, ok, err := t.Store.Kernel(t.Key())
		if err != nil {
			return nil, err
		}
		if full || !ok || k.Gen != gen {
			d.Checked = "content"
			changes, err := t.compareSlots(c, st, status)
			if err != nil {
				return nil, err
			}
			d.Changes = append(d.Changes, changes...)
		}
	}
	sort.Strings(d.Changes)
	d.Drift = len(d.Changes) > 0
	return d, nil
}

// baseDrift compares a live base chain with the spec of the live
// version: hook, type and flags, the policy the chain carries (what an
// empty chain does) and the dispatch's jump target and policy verdict.
func baseDrift(ts *TableState, bc *BaseChain, spec *BaseSpec) []string {
	var out []string
	where := fmt.Sprintf("table %s: base chain %s", ts.Key(), bc.Name)
	if !bc.Spec.Equal(spec) {
		out = append(out, where+": hook, priority, type or devices changed")
	}
	if bc.Spec.Policy != spec.Policy {
		out = append(out, fmt.Sprintf("%s: policy %s, want %s", where, verdictName(bc.Spec.Policy), verdictName(spec.Policy)))
	}
	if dp := bc.Dispatch; dp != nil {
		if want := names.InSlot(ts.Active, bc.Name); dp.Target != want {
			out = append(out, fmt.Sprintf("%s: jumps to %q, want %q", where, dp.Target, want))
		}
		if dp.Verdict != spec.Policy {
			out = append(out, fmt.Sprintf("%s: policy rule says %s, want %s", where, verdictName(dp.Verdict), verdictName(spec.Policy)))
		}
	}
	return out
}

func verdictName(v uint32) string {
	switch v {
	case nfnl.VerdictAccept:
		return "accept"
	case nfnl.VerdictDrop:
		return "drop"
	}
	return fmt.Sprintf("verdict %d", int32(v))
}

// compareSlots reads both slots' chains, sets and objects and compares
// each with its compiled version in history: a hand edit of staging would
// go live with the next swap, so it is drift too. The four canonical forms
// are computed in parallel.
func (t *Target) compareSlots(c *nfnl.Conn, st *State, status *Status) ([]string, error) {
	type side struct {
		name string
		info *SlotInfo
		want *Ruleset
		a, b *Canon
		err  error
	}
	var sides []*side
	for _, s := range []struct {
		name string
		info *SlotInfo
	}{{"production", status.Production}, {"staging", status.Staging}} {
		if s.info != nil {
			sides = append(sides, &side{name: s.name, info: s.info})
		}
	}
	var wg sync.WaitGroup
	for _, sd := range sides {
		wg.Add(1)
		go func(sd *side) {
			defer wg.Done()
			blob, err := t.Store.Compiled(t.Key(), sd.info.Version)
			if err != nil {
				sd.err = fmt.Errorf("drift check needs version %d: %w", sd.info.Version, err)
				return
			}
			if sd.want, sd.err = Decode(blob); sd.err != nil {
				return
			}
			sd.a, sd.err = Canonical(sd.want, CanonOptions{MaskState: true})
		}(sd)
	}
	managed := map[tkey]bool{}
	for _, ts := range st.Managed() {
		managed[tkey{ts.Family, ts.Name}] = true
	}
	got, err := ReadTables(c, func(f uint8, n string) bool { return managed[tkey{f, n}] })
	wg.Wait()
	if err != nil {
		return nil, err
	}
	for _, sd := range sides {
		if sd.err != nil {
			return nil, sd.err
		}
	}
	// Shared sets are state and left out of the comparison; the kernel's
	// copies are marked shared by the versions that declare them.
	shared := map[string]map[string]bool{}
	for _, sd := range sides {
		for table, ns := range SharedNames(sd.want) {
			if shared[table] == nil {
				shared[table] = map[string]bool{}
			}
			for n := range ns {
				shared[table][n] = true
			}
		}
	}
	for _, tab := range got.Tables {
		for _, set := range tab.Sets {
			set.Shared = shared[tab.Key()][set.Name]
		}
	}
	for _, sd := range sides {
		wg.Add(1)
		go func(sd *side) {
			defer wg.Done()
			sd.b, sd.err = Canonical(got, CanonOptions{Slot: sd.info.Slot, MaskState: true})
		}(sd)
	}
	wg.Wait()
	var out []string
	for _, sd := range sides {
		if sd.err != nil {
			return nil, sd.err
		}
		for _, d := range sd.a.Diff(sd.b) {
			out = append(out, fmt.Sprintf("%s (version %d, slot %s): %s", sd.name, sd.info.Version, sd.info.Slot, d))
		}
	}
	return out, nil
}

// recordKernel notes in history what fwslot just left in the kernel, in
// a transaction of its own.
func (t *Target) recordKernel(prod, staging uint64, genBefore uint32) error {
	return t.Store.Update(func(tx *history.Tx) error {
		return t.kernelRecord(tx, prod, staging, genBefore)
	})
}

// kernelRecord notes in tx what fwslot just left in the kernel. The
// generation is advanced only when the kernel had not moved since
// fwslot's previous record before this command (genBefore): a foreign
// change must keep forcing content drift checks until one passes.
func (t *Target) kernelRecord(tx *history.Tx, prod, staging uint64, genBefore uint32) error {
	k, ok, err := tx.Kernel(t.Key())
	if err != nil {
		return err
	}
	gen := k.Gen
	if !ok || k.Gen == genBefore {
		// The batch just committed carried genBefore: the kernel is now
		// at the next generation, no request needed.
		gen = nfnl.NextGen(genBefore)
	}
	return tx.SetKernel(t.Key(), history.Kernel{Production: prod, Staging: staging, Gen: gen})
}

// RecordKernel records in tx the kernel state after a swap, rollback or
// restore, for the swap package: the slots are read from st as Stage and
// Flip left it. The caller records the activation in the same tx, so that
// both reach the disk in one commit.
func (t *Target) RecordKernel(tx *history.Tx, st *State, genBefore uint32) error {
	s, err := Describe(st)
	if err != nil {
		return err
	}
	var prod, staging uint64
	if s.Production != nil {
		prod = s.Production.Version
	}
	if s.Staging != nil {
		staging = s.Staging.Version
	}
	return t.kernelRecord(tx, prod, staging, genBefore)
}

// MarkClean notes in tx that a content check found no drift with the
// kernel at generation gen, so later checks take the fast path again.
// Swap calls it in the transaction that records its activation.
func (t *Target) MarkClean(tx *history.Tx, gen uint32) error {
	k, _, err := tx.Kernel(t.Key())
	if err != nil {
		return err
	}
	k.Gen = gen
	return tx.SetKernel(t.Key(), k)
}

// ReconcileNow connects to the target and reconciles history with it.
func (t *Target) ReconcileNow() ([]string, error) {
	c, err := t.Dial()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	st, err := ReadState(c)
	if err != nil {
		return nil, err
	}
	return t.Reconcile(c, st)
}

// Reconcile repairs history where an interrupted command left it behind
// the kernel (the kernel is the source of truth) and returns what it
// repaired. It records a version found live without an activation. It
// only reads when nothing needs repair, and writes its repairs in one
// commit.
func (t *Target) Reconcile(c *nfnl.Conn, st *State) ([]string, error) {
	if t.Store == nil {
		return nil, nil
	}
	if err := t.CheckOwner(st); err != nil {
		return nil, err
	}
	s, err := Describe(st)
	if err != nil {
		return nil, err
	}
	var repaired []string
	var writes []func(*history.Tx) error
	if s.Production != nil && !s.Takeover {
		v, err := t.Store.Meta(t.Key(), s.Production.Version)
		if err != nil || v.Hash != s.Production.Hash {
			// Not ours to repair: status reports the mismatch.
			return nil, nil
		}
		last, ok, err := t.Store.LastActivation(t.Key())
		if err != nil {
			return nil, err
		}
		if ok && last.Result == "pending" && last.From == s.Production.Version && last.To != last.From {
			// The watchdog reverted the unconfirmed swap in the kernel
			// while history was busy: record that revert now.
			note := fmt.Sprintf("not confirmed by %s; reverted in the kernel while history was busy", last.Deadline.Local().Format("15:04:05"))
			if time.Now().Before(last.Deadline) {
				note = "version " + fmt.Sprint(last.From) + " was found live again before confirmation"
			}
			writes = append(writes, func(tx *history.Tx) error {
				if err := tx.SetResult(t.Key(), last.Seq, "reverted", note); err != nil {
					return err
				}
				_, err := tx.AddActivation(t.Key(), history.Activation{From: last.To, To: last.From, How: "revert", User: CurrentUser(), Note: note})
				return err
			})
			repaired = append(repaired, fmt.Sprintf("recorded the revert of unconfirmed version %d to %d (%s)", last.To, last.From, note))
		} else if !ok || last.To != s.Production.Version {
			a := history.Activation{To: s.Production.Version, How: "reconcile", User: CurrentUser(),
				Note: "found live after an interrupted command"}
			if ok {
				a.From = last.To
			}
			writes = append(writes, func(tx *history.Tx) error {
				_, err := tx.AddActivation(t.Key(), a)
				return err
			})
			repaired = append(repaired, fmt.Sprintf("recorded version %d as live: an earlier command changed the kernel but was stopped before it updated history", s.Production.Version))
		}
	}
	if len(st.Managed()) == 0 {
		// An empty kernel (after a reboot) keeps the record: restore
		// rebuilds the slots from it.
		if err := t.write(writes); err != nil {
			return nil, err
		}
		return repaired, nil
	}
	k, ok, err := t.Store.Kernel(t.Key())
	if err != nil {
		return nil, err
	}
	var prod, staging uint64
	if s.Production != nil {
		prod = s.Production.Version
	}
	if s.Staging != nil {
		staging = s.Staging.Version
	}
	if ok && (k.Production != prod || k.Staging != staging) {
		k.Production, k.Staging = prod, staging
		writes = append(writes, func(tx *history.Tx) error { return tx.SetKernel(t.Key(), k) })
		repaired = append(repaired, fmt.Sprintf("updated the recorded slots to production %d, staging %d", prod, staging))
	}
	if err := t.write(writes); err != nil {
		return nil, err
	}
	return repaired, nil
}

// write runs writes in one history transaction; none, no transaction (an
// empty one would still rewrite the file's meta page).
func (t *Target) write(writes []func(*history.Tx) error) error {
	if len(writes) == 0 {
		return nil
	}
	return t.Store.Update(func(tx *history.Tx) error {
		for _, w := range writes {
			if err := w(tx); err != nil {
				return err
			}
		}
		return nil
	})
}
