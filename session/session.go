// Package session runs one fwslot command on a target: it takes the
// history lock, dials the kernel once, reads the kernel state once,
// reconciles history with it (the kernel is the truth) and reverts an
// overdue `swap --confirm`, all in Open; then one operation (Load, Swap,
// Rollback, Confirm, Restore, StageVersion) builds one batch at the
// generation it read and records its outcome in one history commit.
//
// The checks that decide whether a version may go live live here and run
// on every path: ownership (Open), a vanished production, drift and a
// pending confirmation (Swap), and the lockout guard (Options.Guard, run
// by Load and Swap unless the operation is forced).
//
// The kernel is reached through the Kernel interface: the real one is a
// netlink connection (slots reads and writes the slot layout); tests use
// a fake.
package session

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/nfnl"
	"github.com/fwslot/fwslot/internal/slots"
	"github.com/fwslot/fwslot/rulediff"
)

// errReadOnly means an operation that changes the target ran on a session
// opened with Options.ReadOnly.
var errReadOnly = errors.New("session is read-only")

// Target is a network namespace fwslot manages (the host's own when NetNS
// is empty) together with the history that manages it.
type Target struct {
	NetNS string
	// Store is the history. When nil, Open opens Options.DB and Close
	// closes it.
	Store *history.Store
	// OnDial, when set, is called with every netlink connection a
	// session opens: tests count connections and kernel reads with it.
	OnDial func(*nfnl.Conn)
	// Connect, when set, replaces the netlink connection to the real
	// kernel (tests use a fake Kernel).
	Connect func() (Kernel, error)
}

// Key names the target in the history file: "host" or "netns:NAME".
func (t *Target) Key() string { return t.kernelTarget().Key() }

// kernelTarget returns the kernel side of the target, for dialing the
// kernel directly.
func (t *Target) kernelTarget() *slots.Target { return &slots.Target{NetNS: t.NetNS, OnDial: t.OnDial} }

func (t *Target) connect() (Kernel, error) {
	if t.Connect != nil {
		return t.Connect()
	}
	c, err := t.kernelTarget().Dial()
	if err != nil {
		return nil, err
	}
	return &netlinkKernel{c: c, netns: t.NetNS}, nil
}

// Guard is the lockout guard: Stage runs on a compiled file before Load
// writes the kernel, Live on a stored version before Swap makes it live.
// Either may be nil. A forced operation skips it.
type Guard struct {
	Stage func(ctx context.Context, file string, rs *Ruleset) error
	Live  func(ctx context.Context, version uint64, rs *Ruleset) error
}

// Options tune Open.
type Options struct {
	// DB is the history file Open opens when Target.Store is nil,
	// waiting at most Wait for another command's lock.
	DB   string
	Wait time.Duration
	// ReadOnly opens history read-only (a missing file is no history),
	// checks ownership and does not reconcile: for Status only.
	ReadOnly bool
	// Guard is run by every operation that stages or makes a version
	// live.
	Guard Guard
}

// Session is one command's hold on a target: the history, one kernel
// connection, and the kernel state read once. It is not safe for
// concurrent use.
type Session struct {
	t        *Target
	k        Kernel
	opts     Options
	ownStore bool
	st       *slots.State
	status   *Status
	gen      uint32 // the generation st was read at
	// stale says the kernel changed since st was read: the next
	// operation reads it again.
	stale    bool
	repaired []string
	expired  *Result
	// openTook is how long Open took; the first operation's timer
	// counts it with the phase that reads the state.
	openTook time.Duration

	// Per operation (begin resets them).
	timer slots.Timer
	mark  time.Time
	// settle is a pending activation the operation ends, and note the
	// note of the activation it records: both go into the activation's
	// commit.
	settle settlement
	note   string
	// clean says a content check found no drift at the generation of st.
	clean bool
}

// settlement is how an operation ends a pending activation (seq 0: none).
type settlement struct {
	seq          uint64
	result, note string
}

// Open starts a command on t: it opens the history (unless t.Store is
// set), dials the kernel and reads its state once, checks that this
// history owns the target, reconciles history with the kernel, and
// reverts a confirmed swap whose deadline passed (see Expired).
func Open(ctx context.Context, t *Target, opts Options) (*Session, error) {
	return open(ctx, t, opts, true)
}

func open(ctx context.Context, t *Target, opts Options, expire bool) (*Session, error) {
	start := time.Now()
	s := &Session{t: t, opts: opts, repaired: []string{}}
	defer func() { s.openTook = time.Since(start) }()
	if t.Store == nil && opts.DB != "" {
		if err := s.openStore(); err != nil {
			return nil, err
		}
	}
	if !opts.ReadOnly && s.t.Store == nil {
		return nil, errors.New("a session that changes the target needs its history (Target.Store or Options.DB)")
	}
	var err error
	if s.k, err = s.t.connect(); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.refresh(); err != nil {
		s.Close()
		return nil, err
	}
	if opts.ReadOnly {
		if err := s.checkOwner(); err != nil {
			s.Close()
			return nil, err
		}
		return s, nil
	}
	if err := s.reconcile(); err != nil {
		s.Close()
		return nil, err
	}
	if expire {
		if s.expired, err = s.expire(ctx); err != nil {
			s.Close()
			return nil, fmt.Errorf("revert an unconfirmed swap: %w", err)
		}
	}
	return s, nil
}

// openStore opens Options.DB for this session; Close closes it.
func (s *Session) openStore() error {
	if s.opts.ReadOnly {
		if _, err := os.Stat(s.opts.DB); errors.Is(err, os.ErrNotExist) {
			return nil
		}
	}
	store, err := history.Open(s.opts.DB, history.Options{ReadOnly: s.opts.ReadOnly, Timeout: s.opts.Wait, Canonical: rulediff.CanonicalSource})
	if err != nil {
		return err
	}
	t := *s.t
	t.Store = store
	s.t, s.ownStore = &t, true
	return nil
}

// Target returns the target the session works on, with its history.
func (s *Session) Target() *Target { return s.t }

// Repaired says what reconciling history with the kernel repaired in Open.
func (s *Session) Repaired() []string { return s.repaired }

// Expired is the revert of an overdue confirmed swap that Open made, or nil.
func (s *Session) Expired() *Result { return s.expired }

// Close releases the kernel connection and, when Open opened it, the
// history. Calling it twice is harmless.
func (s *Session) Close() error {
	s.closeKernel()
	if s.ownStore && s.t.Store != nil {
		err := s.t.Store.Close()
		s.ownStore = false
		return err
	}
	return nil
}

// closeKernel releases the kernel connection: releasing a socket that
// committed waits for nf_tables to destroy what the transaction replaced
// (an RCU grace period), so a swap pays it inside its own timing.
func (s *Session) closeKernel() {
	if s.k != nil {
		s.k.Close()
		s.k = nil
	}
}

// refresh reads the kernel state; ReadState reads the generation before
// the tables, so a batch built from it carries that generation.
func (s *Session) refresh() error {
	var err error
	if s.st, err = s.k.ReadState(); err != nil {
		return err
	}
	if s.status, err = slots.Describe(s.st); err != nil {
		return err
	}
	s.gen, s.stale = s.st.Gen, false
	return nil
}

// begin prepares an operation: it refuses on a read-only session, reads
// the kernel again only when an earlier operation of this session changed
// it (or closed the connection), and resets the per-operation fields.
func (s *Session) begin(timer slots.Timer, start time.Time) error {
	if s.opts.ReadOnly {
		return errReadOnly
	}
	if err := s.current(); err != nil {
		return err
	}
	s.timer, s.mark = timer, start
	s.settle, s.note, s.clean = settlement{}, "", false
	return nil
}

// current makes s.st describe the kernel: it dials again when an
// operation closed the connection (Swap does) and reads the state again
// when an operation changed the kernel; otherwise it does nothing.
func (s *Session) current() error {
	if s.k == nil {
		var err error
		if s.k, err = s.t.connect(); err != nil {
			return err
		}
		s.stale = true
	}
	if s.stale {
		return s.refresh()
	}
	return nil
}

// commit sends b, built on s.st, to the kernel. Whatever the outcome, the
// state read no longer describes the kernel for a later operation.
func (s *Session) commit(b *nfnl.Batch) error {
	s.stale = true
	return s.k.Commit(b, s.st)
}

// opening returns how long Open took, once: the first operation reports
// it with the phase that reads the state.
func (s *Session) opening() time.Duration {
	d := s.openTook
	s.openTook = 0
	return d
}

// lap reports the phase that ends now.
func (s *Session) lap(phase string) { s.mark = s.timer.Lap(phase, s.mark) }

// key is the target's name in history.
func (s *Session) key() string { return s.t.Key() }

// store is the session's history.
func (s *Session) store() *history.Store { return s.t.Store }
