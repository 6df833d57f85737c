package session

import "github.com/fwslot/fwslot/internal/slots"

// vanished returns the version history says is live when the kernel runs
// no production at all; 0 when the kernel runs one, or when no version
// ever went live and was kept (the kernel then is as before fwslot, and
// restore would have nothing to bring back). Nothing may build on such a
// kernel silently: a load would adopt whatever runs there now and a
// rollback would have nothing to go back from. `fwslot restore` is the way
// back.
func (s *Session) vanished(status *Status) (uint64, error) {
	if s.store() == nil || status.Production != nil {
		return 0, nil
	}
	kept, err := s.store().LastConfirmed(s.key())
	if err != nil || kept == 0 {
		return 0, err
	}
	k, ok, err := s.store().Kernel(s.key())
	if err != nil {
		return 0, err
	}
	if ok && k.Production != 0 {
		return k.Production, nil
	}
	return kept, nil
}

// checkVanished refuses to build on a kernel whose production vanished.
func (s *Session) checkVanished(status *Status) error {
	n, err := s.vanished(status)
	if err != nil || n == 0 {
		return err
	}
	return slots.VanishedError(n)
}
