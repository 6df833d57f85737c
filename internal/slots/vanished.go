package slots

import (
	"errors"
	"fmt"
)

// ErrVanished means the version history last made live is no longer in
// the kernel: its tables were deleted or flushed (`nft delete table`, `nft
// flush ruleset`, another ruleset loaded over it) or the host rebooted.
var ErrVanished = errors.New("production is no longer in the kernel")

// VanishedError says that version n is gone from the kernel.
func VanishedError(n uint64) error {
	return fmt.Errorf("%w: version %d is no longer in the kernel (its tables were deleted or flushed, or the host rebooted)", ErrVanished, n)
}
