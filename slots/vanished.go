package slots

import (
	"errors"
	"fmt"
)

// ErrVanished means the version history last made live is no longer in
// the kernel: its tables were deleted or flushed (`nft delete table`, `nft
// flush ruleset`, another ruleset loaded over it) or the host rebooted.
var ErrVanished = errors.New("production is no longer in the kernel")

// Vanished returns the version history says is live when the kernel runs
// no production at all; 0 when the kernel runs one, or when no version
// ever went live and was kept (the kernel then is as before fwslot, and
// restore would have nothing to bring back). Nothing may build on such a
// kernel silently: a load would adopt whatever runs there now and a
// rollback would have nothing to go back from. `fwslot restore` is the way
// back.
func (t *Target) Vanished(s *Status) (uint64, error) {
	if t.Store == nil || s.Production != nil {
		return 0, nil
	}
	kept, err := t.Store.LastConfirmed(t.Key())
	if err != nil || kept == 0 {
		return 0, err
	}
	k, ok, err := t.Store.Kernel(t.Key())
	if err != nil {
		return 0, err
	}
	if ok && k.Production != 0 {
		return k.Production, nil
	}
	return kept, nil
}

// VanishedError says that version n is gone from the kernel and what to do.
func VanishedError(n uint64) error {
	return fmt.Errorf("%w: version %d is no longer in the kernel (its tables were deleted or flushed, or the host rebooted); run `fwslot restore`", ErrVanished, n)
}

// CheckVanished refuses to build on a kernel whose production vanished.
func (t *Target) CheckVanished(s *Status) error {
	n, err := t.Vanished(s)
	if err != nil || n == 0 {
		return err
	}
	return VanishedError(n)
}
