package session

import (
	"context"
	"errors"
)

// The methods below run one operation in a session of its own (Open,
// the operation, Close) with default Options: for callers that do one
// thing per target, such as benchmarks and tests.

// Load is Open, then Session.Load.
func (t *Target) Load(ctx context.Context, file string, opts LoadOptions) (*LoadResult, error) {
	var res *LoadResult
	err := t.once(ctx, Options{}, func(s *Session) (err error) { res, err = s.Load(ctx, file, opts); return })
	return res, err
}

// Swap is Open, then Session.Swap.
func (t *Target) Swap(ctx context.Context, opts SwapOptions) (*Result, error) {
	var res *Result
	err := t.once(ctx, Options{}, func(s *Session) (err error) { res, err = s.Swap(ctx, opts); return })
	return res, err
}

// Rollback is Open, then Session.Rollback.
func (t *Target) Rollback(ctx context.Context, to uint64) (*Result, error) {
	var res *Result
	err := t.once(ctx, Options{}, func(s *Session) (err error) { res, err = s.Rollback(ctx, to); return })
	return res, err
}

// Status is a read-only Open, then Session.Status: it neither reconciles
// nor reverts anything.
func (t *Target) Status(ctx context.Context) (*Status, error) {
	var res *Status
	err := t.once(ctx, Options{ReadOnly: true}, func(s *Session) (err error) { res, err = s.Status(); return })
	return res, err
}

func (t *Target) once(ctx context.Context, opts Options, op func(*Session) error) error {
	s, err := Open(ctx, t, opts)
	if err != nil {
		return err
	}
	return errors.Join(op(s), s.Close())
}
