package slots

import (
	"fmt"

	"github.com/fwslot/fwslot/internal/nfnl"
)

// StageVersion writes a version from history into the staging slot in one
// transaction, from its compiled form (no compiling), as load does with a
// file. Production is not touched.
func (t *Target) StageVersion(version uint64) error {
	v, err := t.Store.Meta(t.Key(), version)
	if err != nil {
		return err
	}
	blob, err := t.Store.Compiled(t.Key(), version)
	if err != nil {
		return err
	}
	rs, err := Decode(blob)
	if err != nil {
		return fmt.Errorf("version %d: %w", version, err)
	}
	c, err := t.Dial()
	if err != nil {
		return err
	}
	defer c.Close()
	st, err := ReadState(c)
	if err != nil {
		return err
	}
	status, err := Describe(st)
	if err != nil {
		return err
	}
	genBefore := st.Gen
	slot := status.active.Other()
	b := nfnl.Batch{Gen: st.Gen}
	if err := Stage(&b, st, rs, slot, Tag{Version: v.Number, Hash: v.Hash}, status.active); err != nil {
		return err
	}
	if err := c.Commit(&b); err != nil {
		return fmt.Errorf("stage version %d into slot %s (production untouched): %w", version, slot, err)
	}
	var prod uint64
	if status.Production != nil {
		prod = status.Production.Version
	}
	return t.recordKernel(prod, version, genBefore)
}
