package session

import (
	"context"
	"fmt"
	"time"

	"github.com/fwslot/fwslot/internal/nfnl"
	"github.com/fwslot/fwslot/internal/slots"
)

// StageVersion writes a version from history into the staging slot in one
// transaction, from its compiled form (no compiling), as Load does with a
// file. Production is not touched.
func (s *Session) StageVersion(ctx context.Context, version uint64) error {
	if err := s.begin(nil, time.Now()); err != nil {
		return err
	}
	v, err := s.store().Meta(s.key(), version)
	if err != nil {
		return err
	}
	rs, err := s.compiled(version)
	if err != nil {
		return err
	}
	st, status := s.st, s.status
	genBefore := st.Gen
	slot := status.Active().Other()
	b := nfnl.Batch{Gen: st.Gen}
	if err := slots.Stage(&b, st, rs, slot, slots.Tag{Version: v.Number, Hash: v.Hash}, status.Active()); err != nil {
		return err
	}
	if err := s.commit(&b); err != nil {
		return fmt.Errorf("stage version %d into slot %s (production untouched): %w", version, slot, err)
	}
	var prod uint64
	if status.Production != nil {
		prod = status.Production.Version
	}
	return s.recordKernel(prod, version, genBefore)
}
