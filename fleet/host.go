package fleet

import (
	"context"
	"errors"
	"time"
)

// ErrNotStaged means a flip found another version in the staging slot.
var ErrNotStaged = errors.New("the version to flip to is not staged")

// LocalState is what a host runs, by content hash ("" for an empty slot).
type LocalState struct {
	Production, Staging string
	// Pending is true while a swap waits for confirmation.
	Pending bool
}

// Host is what the agent does on its own host. Every method acts on the
// local kernel and history only; none talks to etcd. hostlib.go is the
// one implementation on the fwslot library; tests use a fake.
type Host interface {
	// State reads what runs and what is staged.
	State(ctx context.Context) (LocalState, error)
	// Stage compiles v against the host's interfaces, runs v.Probes on
	// it in a twin, and stages it; production is untouched. An error
	// refuses the version.
	Stage(ctx context.Context, v *Version) error
	// Swap makes the staged version live; with confirm > 0 it reverts by
	// itself (the watchdog) unless Confirm runs within confirm.
	Swap(ctx context.Context, confirm time.Duration) error
	// Confirm keeps the pending swap; nothing pending is not an error.
	Confirm(ctx context.Context) error
	// Revert undoes the pending swap; nothing pending is not an error.
	Revert(ctx context.Context, reason string) error
	// FlipTo makes the version with content hash live at once when it
	// is in the staging slot (the previous production after a swap),
	// settling a pending swap, and returns the state it left. It does
	// nothing when that version runs already, and returns ErrNotStaged
	// (with the state) when the staging slot holds something else.
	FlipTo(ctx context.Context, hash string) (LocalState, error)
	// Check runs the health checks on what is live: probes (the group's,
	// against the live ruleset in a twin) and the host's own check.
	Check(ctx context.Context, probes string) error
}
