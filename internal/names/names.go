// Package names holds the naming scheme of the slot layout in the kernel:
// how fwslot names the per-slot copies of user chains, sets and objects, and
// how it tags the rules and chains it owns. Every package that reads or
// writes the layout uses these functions, so the scheme lives in one place.
package names

import "strings"

// Prefix starts the name of every chain, set and object fwslot creates.
// User rulesets may not declare names that start with it.
const Prefix = "fwslot"

// Slot is one of the two buffers of a table: "a" or "b".
type Slot string

// The two slots.
const (
	SlotA Slot = "a"
	SlotB Slot = "b"
)

// Other returns the slot that is not s.
func (s Slot) Other() Slot {
	if s == SlotA {
		return SlotB
	}
	return SlotA
}

// Valid reports whether s names one of the two slots.
func (s Slot) Valid() bool { return s == SlotA || s == SlotB }

// slotPrefix is the prefix of every per-slot name: "fwslot_a_".
func slotPrefix(s Slot) string { return Prefix + "_" + string(s) + "_" }

// InSlot returns the per-slot name of a user chain, set or object, for
// example InSlot(SlotA, "input") is "fwslot_a_input".
func InSlot(s Slot, user string) string { return slotPrefix(s) + user }

// FromSlot splits a per-slot name into its slot and the user's name.
// ok is false for names that are not per-slot names.
func FromSlot(name string) (s Slot, user string, ok bool) {
	for _, c := range []Slot{SlotA, SlotB} {
		if p := slotPrefix(c); strings.HasPrefix(name, p) && len(name) > len(p) {
			return c, name[len(p):], true
		}
	}
	return "", "", false
}

// Marker returns the name of the empty chain whose comment records which
// version sits in slot s of a table: "fwslot_a".
func Marker(s Slot) string { return Prefix + "_" + string(s) }

// MetaChain is the regular chain, never jumped to, that holds the rule whose
// comment records which slot of a table is active.
const MetaChain = Prefix

// Reserved reports whether a user name collides with fwslot's names.
func Reserved(name string) bool { return strings.HasPrefix(name, Prefix) }

// TagPrefix starts the comment of every rule and chain fwslot owns.
const TagPrefix = "fwslot "
