package session

import (
	"bytes"
	"errors"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/names"
	"github.com/fwslot/fwslot/internal/nfnl"
	"github.com/fwslot/fwslot/internal/slots"
)

// refreshable returns the compiled form of the version the staging slot
// holds when it is provably what the kernel holds there (history's kernel
// record names it, at the generation st was read at: nothing touched the
// kernel since fwslot wrote it), or nil.
func (s *Session) refreshable(st *slots.State, status *Status, slot names.Slot, rs *Ruleset) (*Ruleset, error) {
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
	if !mostlyIn(blob, rs) {
		return nil, nil
	}
	return slots.Decode(blob)
}

// sampleSize is how many elements of the new version mostlyIn looks for.
const sampleSize = 32

// mostlyIn reports whether most of a sample of rs's big-set elements
// occur in blob, the staged version's encoded form (its elements are
// stored there byte for byte): when they do not, the versions differ in
// more elements than a refresh takes, and decoding the staged version
// (hundreds of MB for a 1M-element set) is spared. A false "yes" only
// costs the decode.
func mostlyIn(blob []byte, rs *Ruleset) bool {
	var big [][][]byte
	total := 0
	for _, t := range rs.Tables {
		for _, set := range t.Sets {
			if len(set.Elems) >= slots.FastElements {
				big = append(big, set.Elems)
				total += len(set.Elems)
			}
		}
	}
	if total == 0 {
		return true
	}
	found, tried := 0, 0
	for k := range sampleSize {
		i := k * total / sampleSize
		for _, elems := range big {
			if i < len(elems) {
				tried++
				if bytes.Contains(blob, elems[i]) {
					found++
				}
				break
			}
			i -= len(elems)
		}
	}
	return found*4 >= tried*3
}

// stageNew stages rs into slot: as a refresh (slots.Refresh) when
// mayRefresh, rs's big lists came from the source, and the slot provably
// holds a version that differs only in set elements; else in full
// (slots.Stage). It reports whether it refreshed.
func (s *Session) stageNew(b *nfnl.Batch, st *slots.State, status *Status, rs *Ruleset, slot names.Slot, tag slots.Tag, mayRefresh bool) (bool, error) {
	// A rule change needs a full stage, and decoding the staged version
	// to find that out costs memory on big rulesets: only a version with
	// big element lists from the source is tried.
	if mayRefresh && rs.FastLists() > 0 {
		old, err := s.refreshable(st, status, slot, rs)
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
