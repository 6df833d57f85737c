package session

import (
	"errors"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/names"
	"github.com/fwslot/fwslot/internal/nfnl"
	"github.com/fwslot/fwslot/slots"
)

// refreshable returns the compiled form of the version the staging slot
// holds when it is provably what the kernel holds there (history's kernel
// record names it, at the generation st was read at: nothing touched the
// kernel since fwslot wrote it), or nil.
func (s *Session) refreshable(st *slots.State, status *slots.Status, slot names.Slot) (*slots.Ruleset, error) {
	if status.Staging == nil || status.Staging.Slot != slot || status.Takeover {
		return nil, nil
	}
	k, ok, err := s.store().Kernel(s.key())
	if err != nil || !ok || k.Gen != st.Gen || k.Staging != status.Staging.Version {
		return nil, err
	}
	blob, err := s.store().Compiled(s.key(), status.Staging.Version)
	if err != nil {
		if errors.Is(err, history.ErrNotFound) {
			return nil, nil
		}
		return nil, err
	}
	return slots.Decode(blob)
}

// stageNew stages rs into slot: as a refresh (slots.Refresh) when
// mayRefresh, rs's big lists came from the source, and the slot provably
// holds a version that differs only in set elements; else in full
// (slots.Stage). It reports whether it refreshed.
func (s *Session) stageNew(b *nfnl.Batch, st *slots.State, status *slots.Status, rs *slots.Ruleset, slot names.Slot, tag slots.Tag, mayRefresh bool) (bool, error) {
	// A rule change needs a full stage, and decoding the staged version
	// to find that out costs memory on big rulesets: only a version with
	// big element lists from the source is tried.
	if mayRefresh && rs.FastLists() > 0 {
		old, err := s.refreshable(st, status, slot)
		if err != nil {
			return false, err
		}
		if old != nil {
			ok, err := slots.Refresh(b, st, old, rs, slot, tag)
			if err != nil || ok {
				return ok, err
			}
		}
	}
	return false, slots.Stage(b, st, rs, slot, tag, status.Active())
}
