package session

import "github.com/fwslot/fwslot/internal/slots"

// Status is what is live and what is staged on a target, read from the
// kernel and cross-checked against history.
type Status = slots.Status

// Ruleset is a compiled ruleset, kept as the kernel's own netlink
// attributes: what history stores and what a slot is written from.
type Ruleset = slots.Ruleset
