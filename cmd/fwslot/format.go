package main

import (
	"fmt"
	"strings"

	"github.com/fwslot/fwslot/slots"
)

// slotLine formats one slot of a status.
func slotLine(v any) string {
	info, _ := v.(*slots.SlotInfo)
	if info == nil {
		return "(empty)"
	}
	parts := []string{fmt.Sprintf("version %d", info.Version), "slot " + string(info.Slot), short(info.Hash)}
	if info.Time != "" {
		parts = append(parts, info.Time)
	}
	if info.User != "" {
		parts = append(parts, info.User)
	}
	if info.Message != "" {
		parts = append(parts, fmt.Sprintf("%q", info.Message))
	}
	return strings.Join(parts, "  ")
}
