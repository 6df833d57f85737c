package session_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/nfnl"
	"github.com/fwslot/fwslot/internal/slots"
	"github.com/fwslot/fwslot/session"
	"github.com/fwslot/fwslot/session/sessiontest"
)

// fixture is a target on a fake kernel with three versions in history
// (1 and 3 accept, 2 drops), none staged yet.
type fixture struct {
	t  *testing.T
	k  *sessiontest.Kernel
	tg *session.Target
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	store, err := history.Open(filepath.Join(t.TempDir(), "fwslot.db"), history.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	f := &fixture{t: t, k: sessiontest.New()}
	f.tg = &session.Target{NetNS: "fake", Store: store, Connect: f.k.Connect}
	for i, policy := range []string{"accept", "drop", "accept"} {
		n, err := sessiontest.Record(f.tg, fmt.Sprintf("# version %d\n", i+1), sessiontest.Ruleset(policy))
		if err != nil || n != uint64(i+1) {
			t.Fatalf("record version %d: got %d, %v", i+1, n, err)
		}
	}
	return f
}

// do runs op in a session of its own, as one command does.
func (f *fixture) do(op func(s *session.Session) error) error {
	s, err := session.Open(context.Background(), f.tg, session.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	return op(s)
}

// must runs op and fails the test on an error.
func (f *fixture) must(what string, op func(s *session.Session) error) {
	f.t.Helper()
	if err := f.do(op); err != nil {
		f.t.Fatalf("%s: %v", what, err)
	}
}

// stage stages version n.
func (f *fixture) stage(n uint64) {
	f.t.Helper()
	f.must(fmt.Sprintf("stage %d", n), func(s *session.Session) error { return s.StageVersion(context.Background(), n) })
}

// swap swaps, provisionally when confirm is set.
func (f *fixture) swap(confirm time.Duration) {
	f.t.Helper()
	f.must("swap", func(s *session.Session) error {
		_, err := s.Swap(context.Background(), session.SwapOptions{Confirm: confirm})
		return err
	})
}

// live returns the version the fake kernel runs and the one it stages.
func (f *fixture) live() (prod, staged uint64) {
	st, err := slots.Describe(f.k.State())
	if err != nil {
		f.t.Fatal(err)
	}
	if st.Production != nil {
		prod = st.Production.Version
	}
	if st.Staging != nil {
		staged = st.Staging.Version
	}
	return prod, staged
}

// lastActivation returns what history says went live last.
func (f *fixture) lastActivation() history.Activation {
	a, _, err := f.tg.Store.LastActivation(f.tg.Key())
	if err != nil {
		f.t.Fatal(err)
	}
	return a
}

// v1LiveV2Staged: version 1 live, version 2 staged.
func v1LiveV2Staged(f *fixture) { f.stage(1); f.swap(0); f.stage(2) }

// v2Pending: version 1 was live, version 2 went live waiting an hour for
// its confirmation.
func v2Pending(f *fixture) { v1LiveV2Staged(f); f.swap(time.Hour) }

// thenVanished runs setup, then empties the kernel: a reboot or a flush
// of the whole ruleset.
func thenVanished(setup func(*fixture)) func(*fixture) {
	return func(f *fixture) { setup(f); f.k.Change(func(st *slots.State) { st.Tables = nil }) }
}

// v3LiveV2Staged: 1, then 2, then 3 went live; 2 waits in staging.
func v3LiveV2Staged(f *fixture) { v1LiveV2Staged(f); f.swap(0); f.stage(3); f.swap(0) }

// flipBehindHistory makes the staged version live in the kernel without
// telling history: a command killed between the kernel transaction and
// its history commit.
func flipBehindHistory(f *fixture) {
	c, err := f.k.Connect()
	if err != nil {
		f.t.Fatal(err)
	}
	defer c.Close()
	st, err := c.ReadState()
	if err != nil {
		f.t.Fatal(err)
	}
	b := nfnl.Batch{Gen: st.Gen}
	if err := slots.Flip(&b, st, st.Managed()[0].Active.Other(), nil); err != nil {
		f.t.Fatal(err)
	}
	if err := c.Commit(&b, st); err != nil {
		f.t.Fatal(err)
	}
}

// TestSessionOnFakeKernel runs the session's decisions on a fake kernel,
// without root: what each operation refuses, which version it chooses,
// what reconciling repairs and what Open reverts. Every refusal leaves
// the kernel exactly as it was and commits nothing to history.
func TestSessionOnFakeKernel(t *testing.T) {
	ctx := context.Background()
	swap := func(opts session.SwapOptions) func(*session.Session) (*session.Result, error) {
		return func(s *session.Session) (*session.Result, error) { return s.Swap(ctx, opts) }
	}
	rollback := func(to uint64) func(*session.Session) (*session.Result, error) {
		return func(s *session.Session) (*session.Result, error) { return s.Rollback(ctx, to) }
	}
	revert := func(s *session.Session) (*session.Result, error) { return s.Revert(ctx, "health check failed") }
	// confirm confirms, expecting version want to be the one confirmed.
	confirm := func(want uint64) func(*session.Session) (*session.Result, error) {
		return func(s *session.Session) (*session.Result, error) {
			v, err := s.Confirm(ctx)
			if err == nil && v != want {
				err = fmt.Errorf("confirmed %d, want %d", v, want)
			}
			return nil, err
		}
	}
	cases := []struct {
		name    string
		setup   func(f *fixture)
		op      func(s *session.Session) (*session.Result, error)
		wantErr error  // errors.Is
		errText string // in the message
		// After success: the kernel's production and staging, the
		// result's from/to, and whether it restaged from history.
		prod, staged, from, to uint64
		restaged               bool
		check                  func(t *testing.T, f *fixture, res *session.Result)
	}{
		{name: "swap makes staging live, staging keeps the old production",
			setup: v1LiveV2Staged, op: swap(session.SwapOptions{}), prod: 2, staged: 1, from: 1, to: 2},
		{name: "swap refuses an empty staging slot",
			setup: func(f *fixture) { f.stage(1); f.swap(0) }, op: swap(session.SwapOptions{}), wantErr: session.ErrNothingStaged},
		{name: "swap refuses drift: a chain added by hand",
			setup: func(f *fixture) {
				v1LiveV2Staged(f)
				f.k.Change(func(st *slots.State) { st.Tables[0].Legacy = append(st.Tables[0].Legacy, "extra") })
			},
			op: swap(session.SwapOptions{}), wantErr: session.ErrDrift, errText: "chain extra was added by hand"},
		{name: "swap refuses drift: the dispatch of a base chain replaced by hand",
			setup: func(f *fixture) {
				v1LiveV2Staged(f)
				f.k.Change(func(st *slots.State) {
					bc := st.Tables[0].Base["input"]
					bc.Dispatch, bc.Rules = nil, []uint64{7}
				})
			},
			op: swap(session.SwapOptions{}), wantErr: session.ErrDrift, errText: "holds 1 rules instead of fwslot's dispatch"},
		{name: "forced swap over drift restages the staged version from history",
			setup: func(f *fixture) {
				v1LiveV2Staged(f)
				f.k.Change(func(st *slots.State) { st.Tables[0].Legacy = append(st.Tables[0].Legacy, "extra") })
			},
			op: swap(session.SwapOptions{Force: true}), prod: 2, staged: 1, from: 1, to: 2, restaged: true,
			check: func(t *testing.T, f *fixture, res *session.Result) {
				if len(res.Overrode) != 1 || !strings.Contains(res.Overrode[0], "chain extra") {
					t.Errorf("overrode %q, want the hand-added chain", res.Overrode)
				}
			}},
		{name: "a drift check that must read rule content fails closed",
			setup: func(f *fixture) {
				v1LiveV2Staged(f)
				f.k.Change(func(st *slots.State) { st.Gen = nfnl.NextGen(st.Gen) }) // a foreign change elsewhere
			},
			op: swap(session.SwapOptions{}), wantErr: sessiontest.ErrNotModelled},
		{name: "a swap the kernel refuses changes neither kernel nor history",
			setup: func(f *fixture) { v1LiveV2Staged(f); f.k.RefuseNext(errRefused) },
			op:    swap(session.SwapOptions{}), wantErr: errRefused},
		{name: "swap refuses while a confirmation is pending",
			setup: v2Pending,
			op:    swap(session.SwapOptions{}), wantErr: session.ErrPending},
		{name: "swap refuses when production vanished",
			setup: thenVanished(v1LiveV2Staged),
			op:    swap(session.SwapOptions{}), wantErr: slots.ErrVanished, errText: "version 1 is no longer in the kernel"},
		{name: "rollback refuses when production vanished",
			setup: thenVanished(v1LiveV2Staged),
			op:    rollback(0), wantErr: slots.ErrVanished},
		{name: "load refuses when production vanished, before compiling",
			setup:   thenVanished(v1LiveV2Staged),
			op:      loadFile(ctx, "table inet filter {\n}\n"),
			wantErr: slots.ErrVanished},
		{name: "rollback flips back to the previous version in staging",
			setup: v3LiveV2Staged, op: rollback(0), prod: 2, staged: 3, from: 3, to: 2},
		{name: "rollback to an older version restages it from history",
			setup: v3LiveV2Staged, op: rollback(1), prod: 1, staged: 3, from: 3, to: 1, restaged: true},
		{name: "rollback refuses the live version",
			setup: v3LiveV2Staged, op: rollback(3), errText: "version 3 is already live"},
		{name: "rollback of the first live version refuses",
			setup: func(f *fixture) { f.stage(1); f.swap(0) }, op: rollback(0), errText: "first version that went live"},
		{name: "rollback settles a pending confirmation",
			setup: v2Pending,
			op:    rollback(0), prod: 1, staged: 2, from: 2, to: 1,
			check: func(t *testing.T, f *fixture, _ *session.Result) {
				if _, ok, err := f.tg.Store.Pending(f.tg.Key()); err != nil || ok {
					t.Errorf("still pending after rollback (%v)", err)
				}
			}},
		{name: "revert undoes a pending swap now, with its reason",
			setup: v2Pending, op: revert, prod: 1, staged: 2, from: 2, to: 1,
			check: func(t *testing.T, f *fixture, _ *session.Result) {
				if a := f.lastActivation(); a.How != "revert" || a.Note != "health check failed" {
					t.Errorf("recorded %+v, want a revert with the reason", a)
				}
				if _, ok, err := f.tg.Store.Pending(f.tg.Key()); err != nil || ok {
					t.Errorf("still pending after revert (%v)", err)
				}
			}},
		{name: "revert with nothing pending changes nothing",
			setup: v1LiveV2Staged, op: revert, prod: 1, staged: 2,
			check: func(t *testing.T, _ *fixture, res *session.Result) {
				if res != nil {
					t.Errorf("reverted %+v with nothing pending", res)
				}
			}},
		{name: "confirm refuses when the kernel lost the version",
			setup: thenVanished(v2Pending),
			op:    confirm(2), wantErr: session.ErrNotLive},
		{name: "confirm keeps the version",
			setup: v2Pending, op: confirm(2), prod: 2, staged: 1},
		{name: "open refuses tables another history owns",
			setup: func(f *fixture) {
				v1LiveV2Staged(f)
				f.k.Change(func(st *slots.State) { st.Tables[0].Owner = "someone-else" })
			},
			op: swap(session.SwapOptions{}), wantErr: slots.ErrNotOwner},
		{name: "open refuses tables tagged by two histories",
			setup: func(f *fixture) {
				v1LiveV2Staged(f)
				f.k.Change(func(st *slots.State) {
					other := *st.Tables[0]
					other.Name, other.Owner = "other", "someone-else"
					st.Tables = append(st.Tables, &other)
				})
			},
			op: swap(session.SwapOptions{}), wantErr: slots.ErrTwoOwners, errText: "table inet other"},
		{name: "load refuses a table flushed by hand",
			setup: func(f *fixture) {
				v1LiveV2Staged(f)
				f.k.Change(func(st *slots.State) {
					st.Tables = append(st.Tables, &slots.TableState{Family: nfnl.FamilyInet, Name: "other", Flushed: true})
				})
			},
			op:      loadFile(ctx, "table inet other {\n}\n"),
			wantErr: slots.ErrVanished, errText: "table inet other holds fwslot's chains without their rules"},
		{name: "load takes over existing tables only on the first load",
			setup: func(f *fixture) {
				v1LiveV2Staged(f)
				f.k.Change(func(st *slots.State) {
					st.Tables = append(st.Tables, &slots.TableState{Family: nfnl.FamilyInet, Name: "other", Legacy: []string{"input"}})
				})
			},
			op:      loadFile(ctx, "table inet other {\n}\n"),
			wantErr: &slots.LateTakeoverError{}, errText: "table inet other exists and fwslot does not manage it, while fwslot already manages inet filter"},
		{name: "restore refuses a kernel that runs a version",
			setup:   v1LiveV2Staged,
			op:      func(s *session.Session) (*session.Result, error) { return s.Restore(ctx, session.RestoreOptions{}) },
			wantErr: session.ErrNotEmpty, errText: "version 1 is live"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			c.setup(f)
			before := f.k.State()
			_, _, kernelBefore := f.k.Counts()
			commitsBefore := f.tg.Store.Commits()
			var res *session.Result
			err := f.do(func(s *session.Session) (err error) { res, err = c.op(s); return })
			if c.wantErr != nil || c.errText != "" {
				if err == nil || (c.wantErr != nil && !isErr(err, c.wantErr)) || !strings.Contains(err.Error(), c.errText) {
					t.Fatalf("got %v, want %v containing %q", err, c.wantErr, c.errText)
				}
				// What to do about it is the command line's to say.
				for _, a := range []string{"`fwslot", "--", "nft delete", "rename it", "remove ", "use rollback", "run "} {
					if strings.Contains(err.Error(), a) {
						t.Errorf("library error %q gives advice (%q)", err, a)
					}
				}
				if after := f.k.State(); !reflect.DeepEqual(before, after) {
					t.Errorf("a refusal changed the kernel:\nbefore %+v\nafter  %+v", before.Tables, after.Tables)
				}
				_, _, kernelAfter := f.k.Counts()
				if kernelAfter != kernelBefore || f.tg.Store.Commits() != commitsBefore {
					t.Errorf("a refusal committed %d kernel batches and %d history commits", kernelAfter-kernelBefore, f.tg.Store.Commits()-commitsBefore)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if prod, staged := f.live(); prod != c.prod || staged != c.staged {
				t.Errorf("kernel runs %d with %d staged, want %d and %d", prod, staged, c.prod, c.staged)
			}
			if res != nil {
				if res.From != c.from || res.To != c.to || res.Restaged != c.restaged {
					t.Errorf("result %d -> %d restaged %v, want %d -> %d restaged %v", res.From, res.To, res.Restaged, c.from, c.to, c.restaged)
				}
				if a := f.lastActivation(); a.From != c.from || a.To != c.to || a.Seq != res.Seq {
					t.Errorf("history recorded %+v, want %d -> %d (seq %d)", a, c.from, c.to, res.Seq)
				}
			}
			if c.check != nil {
				c.check(t, f, res)
			}
		})
	}
}

// errRefused is a commit the fake kernel refuses.
var errRefused = errors.New("kernel refused the batch")

// isErr is errors.Is, or errors.As for a typed error given as a pointer
// to its zero value.
func isErr(err, want error) bool {
	if late, ok := want.(*slots.LateTakeoverError); ok {
		return errors.As(err, &late)
	}
	return errors.Is(err, want)
}

// loadFile returns an operation that loads a file holding body.
func loadFile(ctx context.Context, body string) func(*session.Session) (*session.Result, error) {
	return func(s *session.Session) (*session.Result, error) {
		file := filepath.Join(f0(s), "ruleset.nft")
		if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
			return nil, err
		}
		_, err := s.Load(ctx, file, session.LoadOptions{})
		return nil, err
	}
}

// f0 returns a directory for a test file next to the session's history.
func f0(s *session.Session) string { return filepath.Dir(s.Target().Store.Path()) }

// TestOpenRepairsOnFakeKernel: Open reconciles history with the kernel
// (the kernel is the truth) and reverts a confirmed swap whose deadline
// passed, once, before any operation.
func TestOpenRepairsOnFakeKernel(t *testing.T) {
	cases := []struct {
		name         string
		setup        func(f *fixture)
		repaired     string // in Repaired
		expired      bool
		prod, staged uint64
		last         history.Activation // From, To, How of the last activation
		pendingLeft  bool
	}{
		{name: "a swap killed before its history commit is recorded",
			setup:    func(f *fixture) { v1LiveV2Staged(f); flipBehindHistory(f) },
			repaired: "recorded version 2 as live", prod: 2, staged: 1,
			last: history.Activation{From: 1, To: 2, How: "reconcile"}},
		{name: "the watchdog's revert made while history was busy is recorded",
			setup:    func(f *fixture) { v2Pending(f); flipBehindHistory(f) },
			repaired: "recorded the revert of unconfirmed version 2 to 1", prod: 1, staged: 2,
			last: history.Activation{From: 2, To: 1, How: "revert"}},
		{name: "an overdue confirmation is reverted",
			setup:   func(f *fixture) { v1LiveV2Staged(f); f.swap(time.Nanosecond) },
			expired: true, prod: 1, staged: 2,
			last: history.Activation{From: 2, To: 1, How: "revert"}},
		{name: "a confirmation still in time is left pending",
			setup: v2Pending,
			prod:  2, staged: 1, pendingLeft: true,
			last: history.Activation{From: 1, To: 2, How: "swap"}},
		{name: "nothing to repair writes nothing",
			setup: v1LiveV2Staged, prod: 1, staged: 2,
			last: history.Activation{From: 0, To: 1, How: "swap"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			c.setup(f)
			commits := f.tg.Store.Commits()
			s, err := session.Open(context.Background(), f.tg, session.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			rep := strings.Join(s.Repaired(), "; ")
			if (c.repaired == "") != (rep == "") || !strings.Contains(rep, c.repaired) {
				t.Errorf("repaired %q, want %q", rep, c.repaired)
			}
			if got := s.Expired() != nil; got != c.expired {
				t.Errorf("expired %v, want %v", got, c.expired)
			}
			if c.repaired == "" && !c.expired && f.tg.Store.Commits() != commits {
				t.Errorf("%d history commits with nothing to repair", f.tg.Store.Commits()-commits)
			}
			if prod, staged := f.live(); prod != c.prod || staged != c.staged {
				t.Errorf("kernel runs %d with %d staged, want %d and %d", prod, staged, c.prod, c.staged)
			}
			if a := f.lastActivation(); a.From != c.last.From || a.To != c.last.To || a.How != c.last.How {
				t.Errorf("last activation %+v, want %d -> %d by %s", a, c.last.From, c.last.To, c.last.How)
			}
			if _, ok, err := f.tg.Store.Pending(f.tg.Key()); err != nil || ok != c.pendingLeft {
				t.Errorf("pending %v (%v), want %v", ok, err, c.pendingLeft)
			}
		})
	}
}

// TestSwapBudgetOnFakeKernel holds a swap to its budget through the
// kernel interface: one connection, one state read, one kernel batch and
// one history commit.
func TestSwapBudgetOnFakeKernel(t *testing.T) {
	f := newFixture(t)
	v1LiveV2Staged(f)
	conns, reads, batches := f.k.Counts()
	commits := f.tg.Store.Commits()
	if _, err := f.tg.Swap(context.Background(), session.SwapOptions{}); err != nil {
		t.Fatal(err)
	}
	c2, r2, b2 := f.k.Counts()
	if c2-conns != 1 || r2-reads != 1 || b2-batches != 1 || f.tg.Store.Commits()-commits != 1 {
		t.Errorf("swap: %d connections, %d state reads, %d batches, %d history commits; want 1 each",
			c2-conns, r2-reads, b2-batches, f.tg.Store.Commits()-commits)
	}
}
