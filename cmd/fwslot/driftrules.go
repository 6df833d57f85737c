package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/fwslot/fwslot/internal/slots"
	"github.com/fwslot/fwslot/rulediff"
	"github.com/fwslot/fwslot/session"
)

// statusView is what `status --json` prints: the target's status and, when
// a slot drifted, what differs as nft rules.
type statusView struct {
	*slots.Status
	// DriftRules holds, per drifted slot ("production", "staging"), the
	// difference between what fwslot wrote and what runs, as nft prints
	// rules: "-" lines were written, "+" lines run instead.
	DriftRules map[string]string `json:"drift_rules,omitempty"`
}

// driftRules renders, for each slot whose drift status reports, the
// version history holds and the slot as it runs, both as nft prints them
// under the user's names, and returns their difference per slot.
func driftRules(ctx context.Context, t *session.Target, s *slots.Status) (map[string]string, error) {
	if !s.Drift || t.Store == nil {
		return nil, nil
	}
	ifaces, err := slots.Interfaces(t.NetNS)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, side := range []struct {
		name string
		info *slots.SlotInfo
	}{{"production", s.Production}, {"staging", s.Staging}} {
		if side.info == nil || !driftedSlot(s.DriftChanges, side.name) {
			continue
		}
		blob, err := t.Store.Compiled(t.Key(), side.info.Version)
		if err != nil {
			return nil, err
		}
		rs, err := slots.Decode(blob)
		if err != nil {
			return nil, fmt.Errorf("version %d: %w", side.info.Version, err)
		}
		wrote, err := rulediff.RenderCompiled(ctx, rs, ifaces)
		if err != nil {
			return nil, fmt.Errorf("render version %d: %w", side.info.Version, err)
		}
		src, err := rulediff.LiveSlot(ctx, t.NetNS, side.info.Slot, side.info.Tables)
		if err != nil {
			return nil, err
		}
		runs, err := rulediff.Parse(src)
		if err != nil {
			return nil, fmt.Errorf("read slot %s as nft prints it: %w", side.info.Slot, err)
		}
		var b strings.Builder
		if err := rulediff.WriteText(&b, rulediff.Compare(wrote, runs), rulediff.Style{Context: 1}); err != nil {
			return nil, err
		}
		if b.Len() > 0 {
			out[side.name] = b.String()
		}
	}
	return out, nil
}

func driftedSlot(changes []string, name string) bool {
	for _, c := range changes {
		if strings.HasPrefix(c, name+" (") {
			return true
		}
	}
	return false
}
