package slots

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/names"
	"github.com/fwslot/fwslot/internal/nfnl"
	"github.com/fwslot/fwslot/internal/nsutil"
	"github.com/fwslot/fwslot/internal/source"
)

// LoadOptions tune Load.
type LoadOptions struct {
	// Message is recorded with the version ("open 8443 for the new API").
	Message string
	// Check, when set, runs after compiling and before anything touches
	// the target; an error refuses the load (probes use it).
	Check func(ctx context.Context, file string, rs *Ruleset) error
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
	// Timer, when set, receives the duration of each phase (LoadPhases).
	Timer Timer
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

// Load compiles file, and stages it into the target's inactive slot in one
// netlink transaction. Production is not touched. A file with the content
// of the staged or live version changes nothing.
//
// History is written before the kernel: a load stopped in between leaves
// a version that never reached a slot, never a slot that history does not
// know. A transaction the kernel refuses takes its version back out.
func (t *Target) Load(ctx context.Context, file string, opts LoadOptions) (*LoadResult, error) {
	start := time.Now()
	timer, mark := opts.Timer, start
	b, err := source.Load(file, source.Options{IncludeDirs: opts.IncludeDirs})
	if err != nil {
		return nil, err
	}
	res := &LoadResult{Hash: b.Hash, Warnings: writableWarnings(b), Repaired: []string{}}
	mark = timer.lap(PhaseSource, mark)
	c, err := t.Dial()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	st, err := ReadState(c)
	if err != nil {
		return nil, err
	}
	if res.Repaired, err = t.Reconcile(c, st); err != nil {
		return nil, err
	}
	status, err := Describe(st)
	if err != nil {
		return nil, err
	}
	if err := t.CheckVanished(status); err != nil {
		return nil, err
	}
	res.Slot = status.active.Other()
	for _, s := range []struct {
		info *SlotInfo
		name string
	}{{status.Staging, "staging"}, {status.Production, "production"}} {
		if s.info != nil && s.info.Hash == b.Hash {
			res.Version, res.Unchanged, res.Tables, res.Slot = s.info.Version, s.name, s.info.Tables, s.info.Slot
			res.Duration = time.Since(start)
			return res, nil
		}
	}

	mark = timer.lap(PhaseState, mark)
	ifaces, err := Interfaces(t.NetNS)
	if err != nil {
		return nil, err
	}
	timer.lap(PhaseIfaces, mark)
	rs, err := CompileBundle(ctx, b, ifaces, timer)
	if err != nil {
		return nil, err
	}
	if err := CheckLimits(rs, DefaultLimits()); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	mark = time.Now()
	if opts.Check != nil {
		if err := opts.Check(ctx, file, rs); err != nil {
			return nil, err
		}
		mark = timer.lap(PhaseCheck, mark)
	}

	// Tables the file declares that exist but that fwslot does not manage
	// yet are taken over: their current content becomes a version of its
	// own in the live slot, so the first rollback returns to it.
	var adopt []*TableState
	for _, tab := range rs.Tables {
		if ts := st.Table(tab.Family, tab.Name); ts != nil && !ts.Managed {
			if ts.Flushed {
				return nil, fmt.Errorf("%w: table %s holds fwslot's chains without their rules (flushed by hand), so only its base chains' policies apply; run `fwslot restore` to rebuild it from history, or `nft delete table %s` to start over", ErrVanished, ts.Key(), ts.Key())
			}
			adopt = append(adopt, ts)
		}
	}
	if err := refuseXtables(adopt, nil); err != nil {
		return nil, err
	}
	if len(adopt) > 0 && len(st.Managed()) > 0 {
		return nil, fmt.Errorf("table %s exists and fwslot does not manage it, while fwslot already manages %s; fwslot takes over existing tables only on its first load: remove the table (nft delete table %s) or leave it out of the file", adopt[0].Key(), strings.Join(status.Tables, ", "), adopt[0].Key())
	}

	genBefore := st.Gen // the batch carries it: it commits only at this generation
	batch := nfnl.Batch{Gen: st.Gen}
	now := time.Now().UTC()
	who := CurrentUser()
	var added []uint64    // versions this load added, taken back if the kernel refuses
	var pending []toWrite // versions to write before the kernel changes
	undo := func(err error) error {
		for _, n := range added {
			if derr := t.Store.DeleteVersion(t.Key(), n); derr != nil {
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
		legacy, src, err := t.readLegacy(c, adopt)
		if err != nil {
			return nil, err
		}
		if err := refuseXtables(adopt, legacy); err != nil {
			return nil, err
		}
		shareLike(legacy, rs)
		lc, err := legacy.Encode()
		if err != nil {
			return nil, err
		}
		v := history.Version{Hash: history.HashSource(src), User: who, Time: now, Origin: "adopted",
			Message: "ruleset that ran before fwslot took over", Source: src,
			Tables: legacy.TableKeys(), Rules: legacy.RuleCount()}
		if old, ok, err := t.Store.FindHash(t.Key(), v.Hash); err != nil {
			return nil, err
		} else if ok {
			v = old
		} else {
			// Written with the new version, in one commit, before the
			// kernel changes.
			if v.Number, err = t.Store.Next(t.Key()); err != nil {
				return nil, err
			}
			pending = append(pending, toWrite{v: v, compiled: lc})
		}
		res.Adopted, prod = v.Number, v.Number
		if err := Stage(&batch, st, legacy, names.SlotA, Tag{Version: v.Number, Hash: v.Hash}, names.SlotA); err != nil {
			return nil, undo(err)
		}
		res.Slot = names.SlotB
	}

	number, isNew, err := t.versionFor(b.Hash, pending)
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
		go func() { written <- t.addVersions(pending, timer) }()
	} else {
		written <- nil
	}
	var stageErr error
	res.Refreshed, stageErr = t.stageVersion(&batch, st, status, rs, res.Slot, Tag{Version: number, Hash: b.Hash}, status.active, len(adopt) == 0)
	if timer != nil {
		timer(PhaseBatchSize, time.Duration(batch.Len()))
	}
	timer.lap(PhaseBatch, mark)
	err = <-written
	if err == nil {
		for _, w := range pending {
			added = append(added, w.v.Number)
		}
	}
	if err := errors.Join(err, stageErr); err != nil {
		return nil, undo(err)
	}
	id, db, err := t.Identity()
	if err != nil {
		return nil, undo(err)
	}
	Own(&batch, st, id, db)
	mark = time.Now()
	if err := c.Commit(&batch); err != nil {
		return nil, undo(fmt.Errorf("stage %s into slot %s (production untouched): %w", file, res.Slot, locateRefusal(err, b, rs)))
	}
	mark = timer.lap(PhaseCommit, mark)
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
	warn, err := t.recordLoad(prod, number, genBefore, policy)
	if err != nil {
		return nil, fmt.Errorf("version %d is staged, but recording the kernel state failed: %w", number, err)
	}
	if warn != "" {
		res.Warnings = append(res.Warnings, warn)
	}
	timer.lap(PhaseRecord, mark)
	res.Version, res.Rules, res.Tables = number, rs.RuleCount(), rs.TableKeys()
	res.Duration = time.Since(start)
	return res, nil
}

// recordLoad records the kernel state after a load and, when policy is
// set, prunes history, in one transaction. A failed prune is a warning,
// not a failure: the kernel state is then recorded on its own.
func (t *Target) recordLoad(prod, staging uint64, genBefore uint32, policy *history.Policy) (string, error) {
	if policy == nil {
		return "", t.recordKernel(prod, staging, genBefore)
	}
	err := t.Store.Update(func(tx *history.Tx) error {
		if err := t.kernelRecord(tx, prod, staging, genBefore); err != nil {
			return err
		}
		_, err := tx.Prune(t.Key(), *policy)
		return err
	})
	if err == nil {
		return "", nil
	}
	if rerr := t.recordKernel(prod, staging, genBefore); rerr != nil {
		return "", rerr
	}
	return "prune history: " + err.Error(), nil
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
func (t *Target) addVersions(vs []toWrite, timer Timer) error {
	mark := time.Now()
	for i := range vs {
		if vs[i].rs == nil {
			continue
		}
		var err error
		if vs[i].compiled, err = vs[i].rs.Encode(); err != nil {
			return err
		}
		mark = timer.lap(PhaseEncode, mark)
	}
	err := t.Store.Update(func(tx *history.Tx) error {
		for _, w := range vs {
			got, err := tx.AddVersion(t.Key(), w.v, w.compiled)
			if err != nil {
				return err
			}
			if got.Number != w.v.Number {
				return fmt.Errorf("history numbered the new version %d, expected %d; another writer? run `fwslot status`", got.Number, w.v.Number)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w (history %s)", err, t.Store.Path())
	}
	timer.lap(PhaseHistory, mark)
	return nil
}

// writableWarnings names ruleset files that users other than the owner
// can write: whoever can write them can change the firewall.
func writableWarnings(b *source.Bundle) []string {
	out := []string{}
	for _, f := range b.Files {
		if f.Mode&0o022 != 0 {
			out = append(out, fmt.Sprintf("%s is writable by group or others (mode %v): anyone who can write it can change the firewall; chmod go-w it", f.Path, f.Mode.Perm()))
		}
	}
	return out
}

// versionFor returns the version number for content with the given hash:
// the existing one when history has it or is about to write it
// (pending), else the next free number after the pending ones.
func (t *Target) versionFor(hash string, pending []toWrite) (uint64, bool, error) {
	for _, w := range pending {
		if w.v.Hash == hash {
			return w.v.Number, false, nil
		}
	}
	if v, ok, err := t.Store.FindHash(t.Key(), hash); err != nil {
		return 0, false, err
	} else if ok {
		return v.Number, false, nil
	}
	n, err := t.Store.Next(t.Key())
	return n + uint64(len(pending)), true, err
}

// readLegacy reads tables fwslot is about to take over, with their source
// as nft prints it.
func (t *Target) readLegacy(c *nfnl.Conn, tables []*TableState) (*Ruleset, string, error) {
	want := map[tkey]bool{}
	for _, ts := range tables {
		want[tkey{ts.Family, ts.Name}] = true
	}
	rs, err := ReadTables(c, func(f uint8, n string) bool { return want[tkey{f, n}] })
	if err != nil {
		return nil, "", fmt.Errorf("read existing tables: %w", err)
	}
	var src strings.Builder
	for _, ts := range tables {
		var out, stderr bytes.Buffer
		err := nsutil.Do(t.NetNS, func() error {
			nft, err := nftPath()
			if err != nil {
				return err
			}
			cmd := exec.Command(nft, "list", "table", nfnl.FamilyName(ts.Family), ts.Name)
			cmd.Stdout, cmd.Stderr = &out, &stderr
			return cmd.Run()
		})
		if err != nil {
			return nil, "", fmt.Errorf("list table %s: %v: %s", ts.Key(), err, stderr.String())
		}
		src.Write(out.Bytes())
	}
	return rs, src.String(), nil
}
