package session

import (
	"fmt"
	"sort"
	"sync"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/nfnl"
	"github.com/fwslot/fwslot/internal/slots"
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

// tableKey identifies a table by family and name.
type tableKey struct {
	family uint8
	name   string
}

// Drift compares what the kernel runs with what fwslot put there. The
// dispatch rules and bookkeeping chains are always checked; the slots are
// compared rule by rule with history only when full is set or the ruleset
// generation moved since fwslot's last change, so the common case costs
// no more than the state Open read. Changes to the elements of shared
// state sets are not drift.
func (s *Session) Drift(full bool) (*Drift, error) {
	if err := s.current(); err != nil {
		return nil, err
	}
	return s.checkDrift(s.st, s.status, full)
}

func (s *Session) checkDrift(st *slots.State, status *Status, full bool) (*Drift, error) {
	d := &Drift{Changes: []string{}, Checked: "structure"}
	if status.Takeover {
		return d, nil
	}
	d.Changes = append(d.Changes, slots.StructureDrift(st)...)
	if (status.Production != nil || status.Staging != nil) && s.store() != nil {
		gen := st.Gen // read with the state, before the tables
		k, ok, err := s.store().Kernel(s.key())
		if err != nil {
			return nil, err
		}
		if full || !ok || k.Gen != gen {
			d.Checked = "content"
			changes, err := s.compareSlots(st, status)
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

// compareSlots reads both slots' chains, sets and objects and compares
// each with its compiled version in history: a hand edit of staging would
// go live with the next swap, so it is drift too. The four canonical forms
// are computed in parallel.
func (s *Session) compareSlots(st *slots.State, status *Status) ([]string, error) {
	type side struct {
		name string
		info *slots.SlotInfo
		want *Ruleset
		a, b *slots.Canon
		err  error
	}
	var sides []*side
	for _, si := range []struct {
		name string
		info *slots.SlotInfo
	}{{"production", status.Production}, {"staging", status.Staging}} {
		if si.info != nil {
			sides = append(sides, &side{name: si.name, info: si.info})
		}
	}
	var wg sync.WaitGroup
	for _, sd := range sides {
		wg.Add(1)
		go func(sd *side) {
			defer wg.Done()
			blob, err := s.store().Compiled(s.key(), sd.info.Version)
			if err != nil {
				sd.err = fmt.Errorf("drift check needs version %d: %w", sd.info.Version, err)
				return
			}
			if sd.want, sd.err = slots.Decode(blob); sd.err != nil {
				return
			}
			sd.a, sd.err = slots.Canonical(sd.want, slots.CanonOptions{MaskState: true})
		}(sd)
	}
	managed := map[tableKey]bool{}
	for _, ts := range st.Managed() {
		managed[tableKey{ts.Family, ts.Name}] = true
	}
	got, err := s.k.ReadTables(func(f uint8, n string) bool { return managed[tableKey{f, n}] })
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
		for table, ns := range slots.SharedNames(sd.want) {
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
			sd.b, sd.err = slots.Canonical(got, slots.CanonOptions{Slot: sd.info.Slot, MaskState: true})
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
func (s *Session) recordKernel(prod, staging uint64, genBefore uint32) error {
	return s.store().Update(func(tx *history.Tx) error {
		return s.kernelRecord(tx, prod, staging, genBefore)
	})
}

// kernelRecord notes in tx what fwslot just left in the kernel. The
// generation is advanced only when the kernel had not moved since
// fwslot's previous record before this command (genBefore): a foreign
// change must keep forcing content drift checks until one passes.
func (s *Session) kernelRecord(tx *history.Tx, prod, staging uint64, genBefore uint32) error {
	k, ok, err := tx.Kernel(s.key())
	if err != nil {
		return err
	}
	gen := k.Gen
	if !ok || k.Gen == genBefore {
		// The batch just committed carried genBefore: the kernel is now
		// at the next generation, no request needed.
		gen = nfnl.NextGen(genBefore)
	}
	return tx.SetKernel(s.key(), history.Kernel{Production: prod, Staging: staging, Gen: gen})
}

// recordState records in tx the kernel state after a swap, rollback or
// restore: the slots are read from st as Stage and Flip left it. The
// caller records the activation in the same tx, so that both reach the
// disk in one commit.
func (s *Session) recordState(tx *history.Tx, st *slots.State, genBefore uint32) error {
	d, err := slots.Describe(st)
	if err != nil {
		return err
	}
	var prod, staging uint64
	if d.Production != nil {
		prod = d.Production.Version
	}
	if d.Staging != nil {
		staging = d.Staging.Version
	}
	return s.kernelRecord(tx, prod, staging, genBefore)
}

// markClean notes in tx that a content check found no drift with the
// kernel at generation gen, so later checks take the fast path again.
// Swap calls it in the transaction that records its activation.
func (s *Session) markClean(tx *history.Tx, gen uint32) error {
	k, _, err := tx.Kernel(s.key())
	if err != nil {
		return err
	}
	k.Gen = gen
	return tx.SetKernel(s.key(), k)
}
