package session

import (
	"fmt"
	"time"

	"github.com/fwslot/fwslot/internal/slots"
)

// Status says what is live and staged, from the state the session read,
// cross-checked with history: drift, a vanished production and a pending
// confirmation included. It changes nothing.
func (s *Session) Status() (*Status, error) {
	if err := s.current(); err != nil {
		return nil, err
	}
	st, err := slots.Describe(s.st)
	if err != nil {
		return nil, err
	}
	st.Target = s.key()
	s.crossCheck(st)
	d, err := s.checkDrift(s.st, st, false)
	if err != nil {
		return nil, err
	}
	st.Drift, st.DriftChanges = d.Drift, d.Changes
	for _, ts := range s.st.Tables {
		if ts.Flushed {
			st.Drift = true
			st.DriftChanges = append(st.DriftChanges, fmt.Sprintf("table %s was flushed by hand: fwslot's rules are gone and only its base chains' policies apply", ts.Key()))
		}
	}
	if n, err := s.vanished(st); err != nil {
		return nil, err
	} else if n != 0 {
		st.Drift, st.Vanished = true, n
		st.DriftChanges = append(st.DriftChanges, fmt.Sprintf("version %d is no longer in the kernel (its tables were deleted or flushed, or the host rebooted)", n))
	}
	if s.store() != nil {
		if p, ok, err := s.store().Pending(s.key()); err == nil && ok {
			st.Pending = &slots.Pending{Version: p.To, From: p.From, Deadline: p.Deadline, SecondsLeft: time.Until(p.Deadline).Seconds()}
		}
	}
	return st, nil
}

// crossCheck fills in history details and warns where kernel and history
// disagree.
func (s *Session) crossCheck(st *Status) {
	store := s.store()
	if store == nil {
		return
	}
	for _, info := range []*slots.SlotInfo{st.Production, st.Staging} {
		if info == nil {
			continue
		}
		v, err := store.Meta(s.key(), info.Version)
		if err != nil {
			st.Warnings = append(st.Warnings, fmt.Sprintf("slot %s holds version %d, which the history file %s does not have (%v)", info.Slot, info.Version, store.Path(), err))
			continue
		}
		if v.Hash != info.Hash {
			st.Warnings = append(st.Warnings, fmt.Sprintf("slot %s holds version %d with hash %.12s, but history records hash %.12s for it; the history file belongs to another target or was replaced", info.Slot, info.Version, info.Hash, v.Hash))
			continue
		}
		info.Message, info.User, info.Origin = v.Message, v.User, v.Origin
		info.Time = v.Time.Format("2006-01-02 15:04:05")
	}
	if st.Production == nil {
		return
	}
	if last, ok, err := store.LastActivation(s.key()); err == nil && ok && last.To != st.Production.Version {
		st.Warnings = append(st.Warnings, fmt.Sprintf("history says version %d went live last, but the kernel runs version %d", last.To, st.Production.Version))
	}
}
