package slots

import (
	"errors"
	"fmt"
)

// ErrVanished means the version history last made live is no longer in
// the kernel: its tables were deleted or flushed (`nft delete table`, `nft
// flush ruleset`, another ruleset loaded over it) or the host rebooted.
var ErrVanished = errors.New("production is no longer in the kernel")

// FlushedError is a table that holds fwslot's chains without their rules
// (flushed by hand), so only its base chains' policies apply. It is an
// ErrVanished.
type FlushedError struct {
	Table string // "inet filter"
}

// Error names the flushed table.
func (e *FlushedError) Error() string {
	return fmt.Sprintf("%v: table %s holds fwslot's chains without their rules (flushed by hand), so only its base chains' policies apply", ErrVanished, e.Table)
}

// Unwrap returns ErrVanished.
func (e *FlushedError) Unwrap() error { return ErrVanished }

// VanishedError says that version n is gone from the kernel.
func VanishedError(n uint64) error {
	return fmt.Errorf("%w: version %d is no longer in the kernel (its tables were deleted or flushed, or the host rebooted)", ErrVanished, n)
}
