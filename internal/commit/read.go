package commit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/nfnl"
	"github.com/fwslot/fwslot/internal/slots"
	"github.com/fwslot/fwslot/rulediff"
	"github.com/fwslot/fwslot/session"
)

// header starts every recorded source. It is constant, so the same
// content renders to the same source and committing twice records once.
const header = "# recorded by fwslot commit from what ran, changes made by hand included\n"

// Snapshot is one slot read back from the kernel.
type Snapshot struct {
	// Which is "production" or "staging".
	Which string
	// Info is the slot read, Other the other one (nil when empty).
	Info, Other *slots.SlotInfo
	// Compiled is the slot's content under the user's names.
	Compiled *slots.Ruleset
	// Source is the slot as nft prints it, Hash its history hash.
	Source, Hash string
	Notes        []string
}

// Read reads production (or staging) from the target: its objects as a
// compiled ruleset, and its source as nft prints it. Nothing changes.
func Read(ctx context.Context, t *session.Target, staged bool) (*Snapshot, error) {
	c, err := (&slots.Target{NetNS: t.NetNS, OnDial: t.OnDial}).Dial()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	st, err := slots.ReadState(c)
	if err != nil {
		return nil, err
	}
	status, err := slots.Describe(st)
	if err != nil {
		return nil, err
	}
	if status.Takeover {
		return nil, ErrTakeover
	}
	snap := &Snapshot{Which: "production", Info: status.Production, Other: status.Staging}
	if staged {
		snap.Which, snap.Info, snap.Other = "staging", status.Staging, status.Production
	}
	if snap.Info == nil {
		return nil, fmt.Errorf("nothing in %s to commit", snap.Which)
	}
	if !staged {
		for _, ts := range st.Managed() {
			for _, l := range ts.Legacy {
				snap.Notes = append(snap.Notes, fmt.Sprintf("chain %s %s was made by hand outside the slots: it is not part of the version, and the flip removes it (as swap --force does)", nfnl.FamilyName(ts.Family)+" "+ts.Name, l))
			}
		}
	}
	var declared *slots.Ruleset
	if blob, err := t.Store.Compiled(t.Key(), snap.Info.Version); err == nil {
		if declared, err = slots.Decode(blob); err != nil {
			return nil, fmt.Errorf("version %d: %w", snap.Info.Version, err)
		}
	}
	compiled, notes, err := slots.ExtractSlot(c, st, snap.Info.Slot, declared)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", snap.Which, err)
	}
	snap.Compiled, snap.Notes = compiled, append(snap.Notes, notes...)
	if snap.Compiled.Ifaces, err = slots.Interfaces(t.NetNS); err != nil {
		return nil, err
	}
	var tables []string
	for _, ts := range st.Managed() {
		if _, ok := ts.Markers[snap.Info.Slot]; ok {
			tables = append(tables, nfnl.FamilyName(ts.Family)+" "+ts.Name)
		}
	}
	src, err := rulediff.LiveSlot(ctx, t.NetNS, snap.Info.Slot, tables)
	if err != nil {
		return nil, err
	}
	snap.Source, snap.Hash = header+src, history.HashSource(header+src)
	if n := verify(ctx, snap); n != "" {
		snap.Notes = append(snap.Notes, n)
	}
	return snap, nil
}

// verify compiles the rendered source for the target's interfaces and
// says, when it does not build exactly the slot's content, where nft's
// printing loses something. The version keeps what ran either way.
func verify(ctx context.Context, snap *Snapshot) string {
	dir, err := os.MkdirTemp("", "fwslot-commit-")
	if err != nil {
		return "could not check that the source compiles back: " + err.Error()
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "commit.nft")
	if err := os.WriteFile(file, []byte(snap.Source), 0o600); err != nil {
		return "could not check that the source compiles back: " + err.Error()
	}
	rs, err := slots.Compile(ctx, file, snap.Compiled.Ifaces)
	if err != nil {
		return "the source as nft prints it does not load again (" + firstLine(err.Error()) + "); the version keeps exactly what ran, but edit or load of its source will fail"
	}
	a, err1 := slots.Canonical(snap.Compiled, slots.CanonOptions{MaskState: true})
	b, err2 := slots.Canonical(rs, slots.CanonOptions{MaskState: true})
	if err := errors.Join(err1, err2); err != nil {
		return "could not check that the source compiles back: " + err.Error()
	}
	if d := a.Diff(b); len(d) > 0 {
		return fmt.Sprintf("nft prints %d thing(s) differently from what runs (%s); the version keeps exactly what ran, its source (fwslot show) is nft's rendering", len(d), strings.Join(d, "; "))
	}
	return ""
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
