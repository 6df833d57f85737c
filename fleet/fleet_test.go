package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// testFleet is an embedded etcd with agents running in goroutines.
type testFleet struct {
	t      *testing.T
	etcd   *testEtcd
	c      *clientv3.Client
	k      Keys
	hosts  map[string]Host
	mu     sync.Mutex
	cancel map[string]func()
	opts   []func(*Agent)
	agents map[string]*Agent
}

func newTestFleet(t *testing.T, hosts map[string]Host, opts ...func(*Agent)) *testFleet {
	return newTestFleetOn(t, startEtcd(t), hosts, opts...)
}

func newTestFleetOn(t *testing.T, te *testEtcd, hosts map[string]Host, opts ...func(*Agent)) *testFleet {
	f := &testFleet{t: t, etcd: te, c: te.client(t), k: te.Keys, hosts: hosts, cancel: map[string]func(){}, opts: opts}
	t.Cleanup(f.stopAll)
	for h := range hosts {
		f.start(h)
	}
	f.waitAlive(len(hosts))
	return f
}

func fakeFleet(t *testing.T, n int) (*testFleet, map[string]*fakeHost) {
	fakes := map[string]*fakeHost{}
	hosts := map[string]Host{}
	for i := 1; i <= n; i++ {
		h := fmt.Sprintf("h%d", i)
		fakes[h] = newFakeHost(h)
		hosts[h] = fakes[h]
	}
	return newTestFleet(t, hosts), fakes
}

func (f *testFleet) start(h string) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	c := f.etcd.ownClient(f.t)
	a := &Agent{Client: c, Keys: f.k, Name: h, Local: f.hosts[h], TTL: 2, Retry: 200 * time.Millisecond, Heartbeat: 300 * time.Millisecond}
	if testing.Verbose() {
		a.Log = os.Stderr
	}
	for _, o := range f.opts {
		o(a)
	}
	f.mu.Lock()
	if f.agents == nil {
		f.agents = map[string]*Agent{}
	}
	f.agents[h] = a
	f.mu.Unlock()
	go func() {
		defer close(done)
		if err := a.Run(ctx); err != nil {
			f.t.Errorf("agent %s: %v", h, err)
		}
	}()
	f.mu.Lock()
	f.cancel[h] = func() { cancel(); <-done; c.Close() }
	f.mu.Unlock()
}

func (f *testFleet) stop(h string) {
	f.mu.Lock()
	stop := f.cancel[h]
	delete(f.cancel, h)
	f.mu.Unlock()
	if stop != nil {
		stop()
	}
}

func (f *testFleet) stopAll() {
	for h := range f.hosts {
		f.stop(h)
	}
}

// until waits for cond, failing the test after a minute.
func (f *testFleet) until(what string, cond func() bool) {
	f.t.Helper()
	for end := time.Now().Add(time.Minute); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			f.t.Fatalf("gave up waiting for %s", what)
		}
	}
}

func (f *testFleet) waitAlive(n int) {
	f.t.Helper()
	f.until(fmt.Sprintf("%d live agents", n), func() bool {
		hs, err := AliveHosts(context.Background(), f.c, f.k)
		return err == nil && len(hs) == n
	})
}

func (f *testFleet) pusher() *Pusher {
	p := &Pusher{Client: f.c, Keys: f.k}
	if testing.Verbose() {
		p.Log = os.Stderr
	}
	return p
}

func pushOpts(src string) PushOptions {
	return PushOptions{Source: []byte(src), Probes: "accept tcp 192.0.2.1:1000 -> 192.0.2.2:22 in eth0", Message: "test", Author: "test",
		Canary: 1, Waves: []int{10, 50, 100}, Confirm: 30 * time.Second}
}

// push pushes each source in turn with pushOpts and fails the test on
// an error.
func (f *testFleet) push(ctx context.Context, srcs ...string) {
	f.t.Helper()
	for _, src := range srcs {
		if _, err := f.pusher().Push(ctx, pushOpts(src)); err != nil {
			f.t.Fatal(err)
		}
	}
}

// consistent checks that every live host runs exactly the group's desired
// version, confirmed, and that its status in etcd says so.
func (f *testFleet) consistent(want string) {
	f.t.Helper()
	ctx := testCtx(f.t)
	f.until("every host to report the desired version", func() bool {
		gs, err := Status(ctx, f.c, f.k)
		if err != nil || gs.Desired == nil || gs.Desired.Hash != sum([]byte(want)) {
			return false
		}
		for _, h := range gs.Hosts {
			if h.State == "offline" {
				continue
			}
			st, err := f.hosts[h.Host].State(ctx)
			if err != nil || st.Pending || st.Production != gs.Desired.Hash || h.Production == nil || h.Production.Hash != st.Production {
				return false
			}
		}
		return true
	})
}

func TestPlan(t *testing.T) {
	hosts := []string{"e", "d", "c", "b", "a"}
	for _, tc := range []struct {
		canary int
		waves  string
		want   string
	}{
		{1, "10%,50%,100%", "[[a] [b c] [d e]]"},
		{0, "100%", "[[a b c d e]]"},
		{2, "50%,100%", "[[a b] [c] [d e]]"},
		{9, "100%", "[[a b c d e]]"},
	} {
		w, err := ParseWaves(tc.waves)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(makePlan(hosts, tc.canary, w)); got != tc.want {
			t.Errorf("canary %d waves %s: plan %s, want %s", tc.canary, tc.waves, got, tc.want)
		}
	}
	for _, bad := range []string{"", "10", "50%,10%", "10%,50%", "0%,100%", "abc%"} {
		if _, err := ParseWaves(bad); err == nil {
			t.Errorf("ParseWaves(%q) accepted", bad)
		}
	}
}

func TestChunks(t *testing.T) {
	te := startEtcd(t)
	c, ctx := te.client(t), testCtx(t)
	for _, size := range []int{0, 10, chunkSize, chunkSize + 1, 3*chunkSize + 7} {
		src := make([]byte, size)
		for i := range src {
			src[i] = byte('a' + i%23)
		}
		m, err := putVersion(ctx, c, te.Keys, src, VersionMeta{Message: "x"}, 2, nil)
		if err != nil {
			t.Fatal(err)
		}
		v, err := getVersion(ctx, c, te.Keys, m.Version)
		if err != nil {
			t.Fatal(err)
		}
		if v.Source != string(src) || len(m.Chunks) != max(1, (size+chunkSize-1)/chunkSize) {
			t.Errorf("size %d: got %d bytes in %d chunks", size, len(v.Source), len(m.Chunks))
		}
	}
	// Only the newest 2 are kept.
	r, err := c.Get(ctx, te.Keys.versions(), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || r.Count != 2 {
		t.Fatalf("versions kept: %d, %v; want 2", r.Count, err)
	}
	// A chunk changed in etcd is refused on read.
	m, _ := GetMeta(ctx, c, te.Keys, 5)
	if _, err := c.Put(ctx, te.Keys.Chunk(m.Chunks[0]), "tampered"); err != nil {
		t.Fatal(err)
	}
	if _, err := getVersion(ctx, c, te.Keys, 5); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("tampered chunk: %v, want ErrCorrupt", err)
	}
}

// containsPhase says whether a rollout state value is in phase p.
func containsPhase(value []byte, p string) bool {
	var st RolloutState
	return json.Unmarshal(value, &st) == nil && st.Phase == p && st.State == StateRunning
}
