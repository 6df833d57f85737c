package fleet

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/fwslot/fwslot/internal/etcdtest"
	"github.com/fwslot/fwslot/internal/testnet"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// TestEtcdLostDuringPendingConfirm: the canary wave swaps, then etcd goes
// away before the pusher can confirm. The host's own deadline reverts it
// (the watchdog, as on one host); once etcd is back the agent reports the
// revert, and a resumed rollout brings the version and confirms it.
func TestEtcdLostDuringPendingConfirm(t *testing.T) {
	testnet.RequireRoot(t)
	real := &LibHost{NetNS: testnet.Namespace(t, "fwslot-fleet"), DB: filepath.Join(t.TempDir(), "h1.db")}
	slow := newFakeHost("h2")
	f := newTestFleet(t, map[string]Host{"h1": real, "h2": slow})
	ctx := testCtx(t)
	o := pushOpts(kv1)
	o.Probes, o.Canary, o.Waves, o.Confirm = kprobes, 2, []int{100}, 3*time.Second
	if _, err := f.pusher().Push(ctx, o); err != nil {
		t.Fatal(err)
	}
	f.consistent(kv1)

	slow.mu.Lock()
	slow.hold = make(chan struct{}) // h2's health check hangs: the wave waits
	slow.mu.Unlock()
	o.Source = []byte(kv2)
	pctx, cancel := context.WithCancel(ctx)
	pushed := make(chan error, 1)
	go func() { _, err := f.pusher().Push(pctx, o); pushed <- err }()
	f.until("h1 healthy on the new version", func() bool {
		gs, err := Status(ctx, f.c, f.k)
		if err != nil {
			return false
		}
		for _, h := range gs.Hosts {
			if h.Host == "h1" && h.State == HostHealthy && h.Production != nil && h.Production.Hash == sum([]byte(kv2)) {
				return true
			}
		}
		return false
	})
	member := f.etcd.Members()[0]
	member.Stop()
	cancel()
	if err := <-pushed; err == nil {
		t.Fatal("the push succeeded without etcd")
	}
	f.until("h1's deadline to revert it", func() bool {
		st, err := real.State(ctx)
		return err == nil && st.Production == sum([]byte(kv1)) && !st.Pending
	})
	member.Restart(t)
	f.until("h1 to report the revert", func() bool {
		gs, err := Status(ctx, f.c, f.k)
		if err != nil {
			return false
		}
		for _, h := range gs.Hosts {
			if h.Host == "h1" {
				return h.State == HostReverted && h.Production != nil && h.Production.Hash == sum([]byte(kv1))
			}
		}
		return false
	})
	close(slow.hold)
	// The interrupted pusher's lock lasts until its lease ends.
	p := f.pusher()
	p.LockWait = time.Minute
	st, err := p.Resume(ctx)
	if err != nil || st.State != StateSucceeded {
		t.Fatalf("resume: %+v, %v", st, err)
	}
	f.consistent(kv2)
}

// TestClusterLosesMember: a 3-member etcd loses a member (the one the
// canary reported through, or any) in the middle of a rollout; the
// rollout carries on through the other two.
func TestClusterLosesMember(t *testing.T) {
	fakes := map[string]Host{}
	for i := 1; i <= 5; i++ {
		fakes[fmt.Sprintf("h%d", i)] = newFakeHost(fmt.Sprintf("h%d", i))
	}
	te := startCluster(t, etcdtest.Options{Members: 3})
	f := newTestFleetOn(t, te, fakes)
	ctx := testCtx(t)
	f.push(ctx, v1)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for wr := range f.c.Watch(ctx, f.k.rollout()) {
			for _, ev := range wr.Events {
				if containsPhase(ev.Kv.Value, phaseConfirm) {
					f.etcd.Members()[0].Stop()
					return
				}
			}
		}
	}()
	st, err := f.pusher().Push(ctx, pushOpts(v2))
	<-stopped
	if err != nil || st.State != StateSucceeded {
		t.Fatalf("push while a member stopped: %+v, %v", st, err)
	}
	if f.etcd.Members()[0].Running() {
		t.Fatal("the member never stopped during the rollout")
	}
	f.consistent(v2)
}

// TestDisconnectAcrossCompaction: h3 talks to one member only, which
// stops; the group moves on without it, and etcd compacts the history
// h3's watch would resume from. Back, h3 reads the state again and
// converges.
func TestDisconnectAcrossCompaction(t *testing.T) {
	te := startCluster(t, etcdtest.Options{Members: 3})
	m0 := te.Members()[0]
	hosts := map[string]Host{"h1": newFakeHost("h1"), "h2": newFakeHost("h2"), "h3": newFakeHost("h3")}
	f := newTestFleetOn(t, te, hosts, func(a *Agent) {
		if a.Name == "h3" {
			c, err := clientv3.New(clientv3.Config{Endpoints: []string{m0.Endpoint()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			a.Client = c
		}
	})
	ctx := testCtx(t)
	f.push(ctx, v1)
	f.consistent(v1)
	before, err := f.c.Get(ctx, f.k.desired())
	if err != nil {
		t.Fatal(err)
	}
	m0.Stop()
	f.waitAlive(2)
	f.push(ctx, v2)
	r, err := f.c.Get(ctx, f.k.desired())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.Compact(ctx, r.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.Get(ctx, f.k.desired(), clientv3.WithRev(before.Header.Revision)); err == nil {
		t.Fatal("the revision h3 last saw is still readable after the compaction")
	}
	m0.Restart(t)
	f.waitAlive(3)
	f.consistent(v2)
}
