package fleet

import (
	"fmt"
	"testing"
	"time"

	"github.com/fwslot/fwslot/internal/etcdtest"
)

// TestTLS runs a rollout and a fleet rollback with every client (agents,
// pusher) on TLS with client certificates.
func TestTLS(t *testing.T) {
	hosts := map[string]Host{}
	for i := 1; i <= 3; i++ {
		hosts[fmt.Sprintf("h%d", i)] = newFakeHost(fmt.Sprintf("h%d", i))
	}
	f := newTestFleetOn(t, startCluster(t, etcdtest.Options{TLS: true}), hosts)
	ctx := testCtx(t)
	for _, src := range []string{v1, v2} {
		f.push(ctx, src)
		f.consistent(src)
	}
	if res, err := Rollback(ctx, f.c, f.k, 30*time.Second); err != nil || len(res.Failed) != 0 {
		t.Fatalf("rollback: %+v, %v", res, err)
	}
	f.consistent(v1)
}

// TestRollback100 rolls 100 agents (fake hosts, one etcd client each)
// out and back, and logs how long the fleet rollback took from its etcd
// write to the last host's report (issue 13's target: within 1 s).
func TestRollback100(t *testing.T) {
	f, _ := fakeFleet(t, 100)
	ctx := testCtx(t)
	for _, src := range []string{v1, v2} {
		o := pushOpts(src)
		o.Canary, o.Waves = 1, []int{10, 100}
		start := time.Now()
		if _, err := f.pusher().Push(ctx, o); err != nil {
			t.Fatal(err)
		}
		t.Logf("push to 100 fake hosts (canary, 10%%, 100%%): %v", time.Since(start).Round(time.Millisecond))
	}
	f.consistent(v2)
	res, err := Rollback(ctx, f.c, f.k, time.Minute)
	if err != nil || len(res.Failed) != 0 || len(res.Hosts) != 100 {
		t.Fatalf("rollback: %d hosts, failed %+v, %v", len(res.Hosts), res.Failed, err)
	}
	t.Logf("fleet rollback of 100 hosts: %v", res.Took.Round(time.Millisecond))
	f.consistent(v1)
}
