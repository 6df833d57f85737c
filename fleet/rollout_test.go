package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

const (
	v1 = "table inet web { chain in { type filter hook input priority 0; policy accept; } }\n"
	v2 = "table inet web { chain in { type filter hook input priority 0; policy accept; tcp dport 8443 accept } }\n"
	v3 = "table inet web { chain in { type filter hook input priority 0; policy accept; tcp dport 9443 accept } }\n"
)

func TestPushWaves(t *testing.T) {
	f, fakes := fakeFleet(t, 5)
	ctx := testCtx(t)
	for _, src := range []string{v1, v2} {
		st, err := f.pusher().Push(ctx, pushOpts(src))
		if err != nil {
			t.Fatal(err)
		}
		if st.State != StateSucceeded || st.Wave != 3 || len(st.Plan) != 3 || len(st.Failed) != 0 {
			t.Fatalf("rollout: %+v", st)
		}
		f.consistent(src)
	}
	for h, fh := range fakes {
		if st, _ := fh.State(ctx); st.Staging != sum([]byte(v1)) {
			t.Errorf("%s: the previous version is not in the other slot: %+v", h, st)
		}
	}
}

func TestFailures(t *testing.T) {
	for _, tc := range []struct {
		name, bad   string
		maxFailures int
		failed      []string // hosts named in the error
		wave        int
	}{
		{"canary unhealthy", v2 + "# UNHEALTHY@h1\n", 0, []string{"h1"}, 1},
		{"refused everywhere", v2 + "# REFUSE\n", 0, []string{"h1"}, 1},
		{"second wave", v2 + "# UNHEALTHY@h2\n", 0, []string{"h2"}, 2},
		{"too many in a wave", v2 + "# UNHEALTHY@h4\n# UNHEALTHY@h5\n", 1, []string{"h4", "h5"}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, fakes := fakeFleet(t, 5)
			ctx := testCtx(t)
			f.push(ctx, v1)
			o := pushOpts(tc.bad)
			o.MaxFailures = tc.maxFailures
			_, err := f.pusher().Push(ctx, o)
			var fe *FailedError
			if !errors.As(err, &fe) || fe.Wave != tc.wave {
				t.Fatalf("push of a bad version: %v, want a failure in wave %d", err, tc.wave)
			}
			for _, h := range tc.failed {
				if !strings.Contains(err.Error(), h+": ") {
					t.Errorf("error does not name %s: %v", h, err)
				}
			}
			f.consistent(v1)
			gs, err := Status(ctx, f.c, f.k)
			if err != nil || gs.Rollout.State != StateFailed {
				t.Fatalf("status: %+v %v", gs, err)
			}
			// Hosts of later waves never swapped: they run v1 and had the
			// bad version staged at most.
			for _, h := range []string{"h1", "h2", "h3", "h4", "h5"} {
				fh := fakes[h]
				later := (tc.wave == 1 && h != "h1") || (tc.wave == 2 && h > "h3")
				if later && fh.swaps != 1 {
					t.Errorf("%s in a later wave swapped %d times, want only the first push's swap", h, fh.swaps)
				}
			}
		})
	}
}

func TestFleetRollback(t *testing.T) {
	f, _ := fakeFleet(t, 5)
	ctx := testCtx(t)
	f.push(ctx, v1, v2)
	res, err := Rollback(ctx, f.c, f.k, 30*time.Second)
	if err != nil || len(res.Failed) != 0 || len(res.Hosts) != 5 {
		t.Fatalf("rollback: %+v, %v", res, err)
	}
	t.Logf("fleet rollback of 5 hosts: %v", res.Took)
	f.consistent(v1)
	if _, err := Rollback(ctx, f.c, f.k, time.Second); !errors.Is(err, ErrNothingToRollBack) {
		t.Fatalf("second rollback: %v, want ErrNothingToRollBack", err)
	}
}

func TestOfflineHostConverges(t *testing.T) {
	f, fakes := fakeFleet(t, 3)
	ctx := testCtx(t)
	f.push(ctx, v1)
	f.stop("h3")
	f.waitAlive(2)
	st, err := f.pusher().Push(ctx, pushOpts(v2))
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Plan) != 2 || strings.Contains(strings.Join(append(st.Plan[0], st.Plan[1]...), " "), "h3") {
		t.Fatalf("plan includes the offline host: %v", st.Plan)
	}
	if s, _ := fakes["h3"].State(ctx); s.Production != sum([]byte(v1)) {
		t.Fatalf("offline host changed: %+v", s)
	}
	f.start("h3")
	f.waitAlive(3)
	f.consistent(v2)
}

func TestInterruptedPushResumes(t *testing.T) {
	for _, how := range []string{"resume", "push again"} {
		t.Run(how, func(t *testing.T) {
			f, _ := fakeFleet(t, 5)
			ctx := testCtx(t)
			f.push(ctx, v1)
			// Interrupt the push once the canary reports healthy, as
			// Ctrl-C would: the context ends.
			pctx, cancel := context.WithCancel(ctx)
			go func() {
				defer cancel()
				for wr := range f.c.Watch(pctx, f.k.statusKey("h1")) {
					for _, ev := range wr.Events {
						var s HostStatus
						if json.Unmarshal(ev.Kv.Value, &s) == nil && s.State == HostHealthy {
							return
						}
					}
				}
			}()
			_, err := f.pusher().Push(pctx, pushOpts(v2))
			if err == nil || !strings.Contains(err.Error(), "fleet resume") {
				t.Fatalf("interrupted push: %v, want an error that says how to resume", err)
			}
			var st RolloutState
			if _, _, err := getJSON(ctx, f.c, f.k.rollout(), &st); err != nil || st.State != StateRunning {
				t.Fatalf("after the interrupt the rollout is %+v (%v), want running", st, err)
			}
			var res *RolloutState
			if how == "resume" {
				res, err = f.pusher().Resume(ctx)
			} else {
				res, err = f.pusher().Push(ctx, pushOpts(v2))
			}
			if err != nil || res.State != StateSucceeded || res.ID != st.ID {
				t.Fatalf("%s: %+v, %v", how, res, err)
			}
			f.consistent(v2)
		})
	}
}

func TestConcurrentPushers(t *testing.T) {
	f, _ := fakeFleet(t, 3)
	ctx := testCtx(t)
	f.push(ctx, v1)
	// The first pusher holds the lock while its rollout runs; start the
	// second once the rollout of the first is recorded.
	first := make(chan error, 1)
	started := f.c.Watch(ctx, f.k.rollout())
	go func() {
		_, err := f.pusher().Push(ctx, pushOpts(v2))
		first <- err
	}()
	for running := false; !running; {
		for _, ev := range (<-started).Events {
			var st RolloutState
			running = json.Unmarshal(ev.Kv.Value, &st) == nil && st.Hash == sum([]byte(v2)) && st.State == StateRunning
		}
	}
	for _, op := range []func() error{
		func() error { _, err := f.pusher().Push(ctx, pushOpts(v1)); return err },
		func() error { _, err := f.pusher().Push(ctx, pushOpts(v2)); return err },
		func() error { _, err := f.pusher().Resume(ctx); return err },
	} {
		if err := op(); !errors.Is(err, ErrBusy) {
			t.Errorf("second pusher: %v, want ErrBusy", err)
		}
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	f.consistent(v2)
	// Only one rollout was ever started for v2.
	r, err := f.c.Get(ctx, f.k.versions(), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || r.Count != 2 {
		t.Fatalf("versions in etcd: %d (%v), want 2", r.Count, err)
	}
}

// TestRollbackStopsPush: a fleet rollback while a push waits on a wave
// stops the push (its next transaction fails its compare) and brings
// every host back, the one still in its health check too.
func TestRollbackStopsPush(t *testing.T) {
	f, fakes := fakeFleet(t, 3)
	ctx := testCtx(t)
	f.push(ctx, v1)
	slow := fakes["h3"]
	slow.mu.Lock()
	slow.hold = make(chan struct{})
	slow.mu.Unlock()
	pushed := make(chan error, 1)
	go func() {
		o := pushOpts(v2)
		o.Waves = []int{100}
		_, err := f.pusher().Push(ctx, o)
		pushed <- err
	}()
	f.until("h3 to get its swap order", func() bool {
		var o Order
		_, found, err := getJSON(ctx, f.c, f.k.Order("h3"), &o)
		return err == nil && found && o.Version == 2 && o.Action == ActionSwap
	})
	res, err := Rollback(ctx, f.c, f.k, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Failed) != 1 || res.Failed[0].Host != "h3" {
		t.Fatalf("rollback with h3 busy: %+v", res.Failed)
	}
	if err := <-pushed; !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), StateRolledBack) {
		t.Fatalf("push during a rollback: %v, want ErrConflict", err)
	}
	close(slow.hold)
	f.consistent(v1)
}

// TestOfflineAcrossRollbackAndPush: a host away during a fleet rollback
// and the push after it goes straight to the group's version when it
// returns, never through the old rollback's target.
func TestOfflineAcrossRollbackAndPush(t *testing.T) {
	f, fakes := fakeFleet(t, 3)
	ctx := testCtx(t)
	f.push(ctx, v1, v2)
	f.stop("h3")
	f.waitAlive(2)
	if _, err := Rollback(ctx, f.c, f.k, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	f.push(ctx, v3)
	h3 := fakes["h3"]
	h3.mu.Lock()
	seen := len(h3.lives)
	h3.mu.Unlock()
	f.start("h3")
	f.waitAlive(3)
	f.consistent(v3)
	h3.mu.Lock()
	defer h3.mu.Unlock()
	if got := h3.lives[seen:]; len(got) != 1 || got[0] != sum([]byte(v3)) {
		t.Fatalf("h3 went through %d versions on its way back, want only v3", len(got))
	}
}
