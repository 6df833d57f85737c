package session

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/names"
	"github.com/fwslot/fwslot/internal/nfnl"
	"github.com/fwslot/fwslot/internal/slots"
	"github.com/fwslot/fwslot/internal/source"
)

// LoadOptions tune Load.
type LoadOptions struct {
	// Message is recorded with the version ("open 8443 for the new API").
	Message string
	// Check, when set, runs after compiling and before anything touches
	// the target; an error refuses the load (probes use it).
	Check func(ctx context.Context, file string, rs *Ruleset) error
	// Force stages even if the session's lockout guard fails.
	Force bool
	// IncludeDirs are directories includes may read besides the main
	// file's own directory (and below), which is always allowed; an
	// include anywhere else is refused.
	IncludeDirs []string
	// Keep is how many versions that never went live history keeps
	// (0: history.DefaultKeep); every version that was live stays.
	Keep int
	// KeepBytes bounds the bytes of the never-live versions history
	// keeps (0: history.DefaultKeepBytes; negative: no bound).
	KeepBytes int64
	// Timer, when set, receives the duration of each phase (slots.LoadPhases).
	Timer slots.Timer
	// Origin is recorded with the version: "file" when empty, "edit"
	// or "commit" for versions made from what ran.
	Origin string
}

// LoadResult says what a load did.
type LoadResult struct {
	Version uint64     `json:"version"`
	Hash    string     `json:"hash"`
	Slot    names.Slot `json:"slot"`
	Rules   int        `json:"rules"`
	Tables  []string   `json:"tables"`
	// Unchanged names the slot ("staging" or "production") that already
	// holds the same content; nothing was done.
	Unchanged string `json:"unchanged,omitempty"`
	// Adopted is the version recorded for the tables that ran before
	// fwslot took them over.
	Adopted uint64 `json:"adopted,omitempty"`
	// Refreshed is true when the staging slot held a version that
	// differed only in set elements and the load wrote just those.
	Refreshed bool `json:"refreshed,omitempty"`
	// Warnings are things the operator should know (a ruleset file
	// others can write); Repaired says what reconciling history fixed.
	Warnings []string      `json:"warnings"`
	Repaired []string      `json:"repaired"`
	Duration time.Duration `json:"duration_ns"`
}

// Load compiles file and stages it into the target's inactive slot in one
// netlink transaction; production is not touched. A file with the content
// of the staged or live version changes nothing. Checks (opts.Check, then
// the session's lockout guard unless opts.Force) run on the compiled form
// before the kernel changes.
//
// History is written before the kernel: a load stopped in between leaves
// a version that never reached a slot, never a slot that history does not
// know. A transaction the kernel refuses takes its version back out.
func (s *Session) Load(ctx context.Context, file string, opts LoadOptions) (*LoadResult, error) {
	start := time.Now()
	timer, mark := opts.Timer, start
	if err := s.begin(timer, start); err != nil {
		return nil, err
	}
	b, err := source.Load(file, source.Options{IncludeDirs: opts.IncludeDirs})
	if err != nil {
		return nil, err
	}
	res := &LoadResult{Hash: b.Hash, Warnings: slots.WritableWarnings(b), Repaired: s.repaired}
	mark = timer.Lap(slots.PhaseSource, mark)
	st, status := s.st, s.status
	if err := s.checkVanished(status); err != nil {
		return nil, err
	}
	res.Slot = status.Active().Other()
	for _, si := range []struct {
		info *slots.SlotInfo
		name string
	}{{status.Staging, "staging"}, {status.Production, "production"}} {
		if si.info != nil && si.info.Hash == b.Hash {
			res.Version, res.Unchanged, res.Tables, res.Slot = si.info.Version, si.name, si.info.Tables, si.info.Slot
			res.Duration = time.Since(start)
			return res, nil
		}
	}

	if opened := s.opening(); timer != nil {
		timer(slots.PhaseState, opened+time.Since(mark))
	}
	mark = time.Now()
	ifaces, err := s.k.Interfaces()
	if err != nil {
		return nil, err
	}
	timer.Lap(slots.PhaseIfaces, mark)
	rs, err := slots.CompileBundle(ctx, b, ifaces, timer)
	if err != nil {
		return nil, err
	}
	if err := slots.CheckLimits(rs, slots.DefaultLimits()); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	mark = time.Now()
	if opts.Check != nil {
		if err := opts.Check(ctx, file, rs); err != nil {
			return nil, err
		}
	}
	if !opts.Force && s.opts.Guard.Stage != nil {
		if err := s.opts.Guard.Stage(ctx, file, rs); err != nil {
			return nil, err
		}
	}
	if opts.Check != nil || (!opts.Force && s.opts.Guard.Stage != nil) {
		mark = timer.Lap(slots.PhaseCheck, mark)
	}

	// Tables the file declares that exist but that fwslot does not manage
	// yet are taken over: their current content becomes a version of its
	// own in the live slot, so the first rollback returns to it.
	var adopt []*slots.TableState
	for _, tab := range rs.Tables {
		if ts := st.Table(tab.Family, tab.Name); ts != nil && !ts.Managed {
			if ts.Flushed {
				return nil, &slots.FlushedError{Table: ts.Key()}
			}
			adopt = append(adopt, ts)
		}
	}
	if err := slots.RefuseXtables(adopt, nil); err != nil {
		return nil, err
	}
	if len(adopt) > 0 && len(st.Managed()) > 0 {
		return nil, &slots.LateTakeoverError{Table: adopt[0].Key(), Managed: status.Tables}
	}

	genBefore := st.Gen // the batch carries it: it commits only at this generation
	batch := nfnl.Batch{Gen: st.Gen}
	now := time.Now().UTC()
	who := slots.CurrentUser()
	var added []uint64    // versions this load added, taken back if the kernel refuses
	var pending []toWrite // versions to write before the kernel changes
	undo := func(err error) error {
		for _, n := range added {
			if derr := s.store().DeleteVersion(s.key(), n); derr != nil {
				err = errors.Join(err, derr)
			}
		}
		return err
	}
	var prod uint64
	if status.Production != nil {
		prod = status.Production.Version
	}
	if len(adopt) > 0 {
		legacy, src, err := s.k.ReadLegacy(adopt)
		if err != nil {
			return nil, err
		}
		if err := slots.RefuseXtables(adopt, legacy); err != nil {
			return nil, err
		}
		slots.ShareLike(legacy, rs)
		lc, err := legacy.Encode()
		if err != nil {
			return nil, err
		}
		v := history.Version{Hash: history.HashSource(src), User: who, Time: now, Origin: "adopted",
			Message: "ruleset that ran before fwslot took over", Source: src,
			Tables: legacy.TableKeys(), Rules: legacy.RuleCount()}
		if old, ok, err := s.store().FindHash(s.key(), v.Hash); err != nil {
			return nil, err
		} else if ok {
			v = old
		} else {
			// Written with the new version, in one commit, before the
			// kernel changes.
			if v.Number, err = s.store().Next(s.key()); err != nil {
				return nil, err
			}
			pending = append(pending, toWrite{v: v, compiled: lc})
		}
		res.Adopted, prod = v.Number, v.Number
		if err := slots.Stage(&batch, st, legacy, names.SlotA, slots.Tag{Version: v.Number, Hash: v.Hash}, names.SlotA); err != nil {
			return nil, undo(err)
		}
		res.Slot = names.SlotB
	}

	number, isNew, err := s.versionFor(b.Hash, pending)
	if err != nil {
		return nil, err
	}
	// The history write (encode, then bbolt) runs while the batch is
	// built: both take time on large rulesets and neither needs the other.
	// It still completes before the kernel changes.
	written := make(chan error, 1)
	if isNew {
		origin := opts.Origin
		if origin == "" {
			origin = "file"
		}
		v := history.Version{Number: number, Hash: b.Hash, User: who, Time: now, Message: opts.Message, Origin: origin,
			Source: b.Flat, Tables: rs.TableKeys(), Rules: rs.RuleCount()}
		for _, f := range b.Files {
			v.Files = append(v.Files, history.File{Path: f.Path, Content: f.Content})
		}
		pending = append(pending, toWrite{v: v, rs: rs})
	}
	if len(pending) > 0 {
		go func() { written <- s.addVersions(pending, timer) }()
	} else {
		written <- nil
	}
	var stageErr error
	res.Refreshed, stageErr = s.stageNew(&batch, st, status, rs, res.Slot, slots.Tag{Version: number, Hash: b.Hash}, len(adopt) == 0)
	if timer != nil {
		timer(slots.PhaseBatchSize, time.Duration(batch.Len()))
	}
	timer.Lap(slots.PhaseBatch, mark)
	err = <-written
	if err == nil {
		for _, w := range pending {
			added = append(added, w.v.Number)
		}
	}
	// The canonical form of the new version is made now, on the other
	// core while the batch is built and committed, not while history
	// and the compiler hold the most: on a 1M-element set it holds
	// about 100 MB while it runs. The record transaction stores it.
	var canon chan canonical
	if err == nil && stageErr == nil && isNew {
		canon = make(chan canonical, 1)
		go func() {
			text, ok := s.store().CanonicalOf(b.Flat)
			canon <- canonical{text, ok}
		}()
	}
	if err := errors.Join(err, stageErr); err != nil {
		return nil, undo(err)
	}
	if err := s.own(&batch); err != nil {
		return nil, undo(err)
	}
	mark = time.Now()
	if err := s.commit(&batch); err != nil {
		return nil, undo(fmt.Errorf("stage %s into slot %s (production untouched): %w", file, res.Slot, slots.LocateBundleRefusal(err, b, rs)))
	}
	mark = timer.Lap(slots.PhaseCommit, mark)
	// The kernel record and retention share one commit: the version
	// itself was made durable before the kernel changed.
	var policy *history.Policy
	if isNew {
		// Retention: every version that was ever live stays, plus the
		// newest staged-only ones, so the file does not grow forever.
		keep := opts.Keep
		if keep <= 0 {
			keep = history.DefaultKeep
		}
		policy = &history.Policy{Keep: keep, KeepBytes: opts.KeepBytes, Protect: history.Protect(prod, number)}
	}
	var setCanon func(*history.Tx) error
	if canon != nil {
		if c := <-canon; c.ok {
			setCanon = func(tx *history.Tx) error { return tx.SetCanonical(s.key(), number, c.text) }
		}
	}
	warn, err := s.recordLoad(prod, number, genBefore, policy, setCanon)
	if err != nil {
		return nil, fmt.Errorf("version %d is staged, but recording the kernel state failed: %w", number, err)
	}
	if warn != "" {
		res.Warnings = append(res.Warnings, warn)
	}
	timer.Lap(slots.PhaseRecord, mark)
	res.Version, res.Rules, res.Tables = number, rs.RuleCount(), rs.TableKeys()
	res.Duration = time.Since(start)
	return res, nil
}

// canonical is the canonical form of a new version, made while the load
// commits (ok false: the store has none for this source).
type canonical struct {
	text string
	ok   bool
}

// recordLoad records the kernel state after a load, stores the new
// version's canonical form (setCanon, when set) and, when policy is set,
// prunes history, in one transaction. A failed prune or canonical form is
// a warning, not a failure: the kernel state is then recorded on its own
// (a version without a canonical form is compiled again by diff).
func (s *Session) recordLoad(prod, staging uint64, genBefore uint32, policy *history.Policy, setCanon func(*history.Tx) error) (string, error) {
	if policy == nil && setCanon == nil {
		return "", s.recordKernel(prod, staging, genBefore)
	}
	err := s.store().Update(func(tx *history.Tx) error {
		if err := s.kernelRecord(tx, prod, staging, genBefore); err != nil {
			return err
		}
		if setCanon != nil {
			if err := setCanon(tx); err != nil {
				return err
			}
		}
		if policy == nil {
			return nil
		}
		_, err := tx.Prune(s.key(), *policy)
		return err
	})
	if err == nil {
		return "", nil
	}
	if rerr := s.recordKernel(prod, staging, genBefore); rerr != nil {
		return "", rerr
	}
	return "record the canonical form and prune history: " + err.Error(), nil
}

// toWrite is a version a load writes before the kernel changes, under
// the number (v.Number) the batch tags it with; its compiled form is
// compiled, or rs encoded by addVersions.
type toWrite struct {
	v        history.Version
	compiled []byte
	rs       *Ruleset
}

// addVersions encodes what needs it and stores the versions in one
// transaction. Numbers are assigned in that transaction; one that is not
// the number the batch was tagged with rolls it back.
func (s *Session) addVersions(vs []toWrite, timer slots.Timer) error {
	mark := time.Now()
	prepared := make([]*history.Prepared, len(vs))
	for i := range vs {
		if vs[i].rs == nil {
			continue
		}
		var err error
		if vs[i].compiled, err = vs[i].rs.Encode(); err != nil {
			return err
		}
		mark = timer.Lap(slots.PhaseEncode, mark)
		// The loaded version is compressed and chunked before the
		// write transaction, which then only writes; its canonical
		// form is stored with the kernel record (Load).
		if prepared[i], err = s.store().Prepare(s.key(), vs[i].v, vs[i].compiled); err != nil {
			return err
		}
	}
	err := s.store().Update(func(tx *history.Tx) error {
		for i, w := range vs {
			var got history.Version
			var err error
			if prepared[i] != nil {
				got, err = tx.AddPrepared(prepared[i])
			} else {
				got, err = tx.AddVersion(s.key(), w.v, w.compiled)
			}
			if err != nil {
				return err
			}
			if got.Number != w.v.Number {
				return fmt.Errorf("history numbered the new version %d, expected %d (another writer?)", got.Number, w.v.Number)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w (history %s)", err, s.store().Path())
	}
	timer.Lap(slots.PhaseHistory, mark)
	return nil
}

// versionFor returns the version number for content with the given hash:
// the existing one when history has it or is about to write it
// (pending), else the next free number after the pending ones.
func (s *Session) versionFor(hash string, pending []toWrite) (uint64, bool, error) {
	for _, w := range pending {
		if w.v.Hash == hash {
			return w.v.Number, false, nil
		}
	}
	if v, ok, err := s.store().FindHash(s.key(), hash); err != nil {
		return 0, false, err
	} else if ok {
		return v.Number, false, nil
	}
	n, err := s.store().Next(s.key())
	return n + uint64(len(pending)), true, err
}
