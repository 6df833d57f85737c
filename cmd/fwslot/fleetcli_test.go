package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fwslot/fwslot/fleet"
	"github.com/fwslot/fwslot/internal/etcdtest"
	"github.com/fwslot/fwslot/internal/testnet"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const (
	fleetV1 = "table inet fleet {\n  chain input {\n    type filter hook input priority 0; policy accept;\n    tcp dport 9000 drop\n  }\n}\n"
	fleetV2 = "table inet fleet {\n  chain input {\n    type filter hook input priority 0; policy accept;\n    tcp dport { 9000, 9001 } drop\n  }\n}\n"
)

// fleetCLI is an etcd and agents run as the fwslot binary, one per
// namespace, each with its own history.
type fleetCLI struct {
	t      *testing.T
	bin    string
	etcd   *etcdtest.Cluster
	c      *clientv3.Client
	k      fleet.Keys
	agents map[string]*exec.Cmd
	logs   map[string]*syncBuffer
	dbs    map[string]string
	nss    map[string]string
}

func newFleetCLI(t *testing.T, checks map[string]string, n int) *fleetCLI {
	testnet.RequireRoot(t)
	e := etcdtest.Start(t, etcdtest.Options{})
	f := &fleetCLI{t: t, bin: fwslotBinary(t), etcd: e, c: e.Client(t), k: fleet.Keys{Prefix: fleet.DefaultPrefix, Group: "web"},
		agents: map[string]*exec.Cmd{}, logs: map[string]*syncBuffer{}, dbs: map[string]string{}, nss: map[string]string{}}
	dir := t.TempDir()
	for i := 1; i <= n; i++ {
		h := fmt.Sprintf("h%d", i)
		f.nss[h], f.dbs[h] = testnet.Namespace(t, "fwslot-fcli"), filepath.Join(dir, h+".db")
		f.startAgent(h, checks[h])
	}
	f.waitAlive(n)
	return f
}

func (f *fleetCLI) etcdFlags() []string {
	return []string{"--etcd", strings.Join(f.etcd.Endpoints(), ","), "--group", "web"}
}

func (f *fleetCLI) startAgent(h, check string) {
	args := append([]string{"agent", "--host", h, "--netns", f.nss[h], "--db", f.dbs[h]}, f.etcdFlags()...)
	if check != "" {
		args = append(args, "--check", check)
	}
	cmd := exec.Command(f.bin, args...)
	f.logs[h] = &syncBuffer{}
	cmd.Stdout, cmd.Stderr = f.logs[h], f.logs[h]
	if err := cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	f.agents[h] = cmd
	f.t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if f.t.Failed() {
			f.t.Logf("agent %s:\n%s", h, f.logs[h])
		}
	})
}

func (f *fleetCLI) waitAlive(n int) {
	f.t.Helper()
	if !waitUntil(func() bool {
		hs, err := fleet.AliveHosts(context.Background(), f.c, f.k)
		return err == nil && len(hs) == n
	}, time.Minute) {
		f.t.Fatalf("%d agents did not come up", n)
	}
}

// fwslot runs the binary and returns its output and exit code.
func (f *fleetCLI) fwslot(args ...string) (string, int) {
	f.t.Helper()
	out, err := exec.Command(f.bin, args...).CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		f.t.Fatal(err)
	}
	return string(out), 0
}

func (f *fleetCLI) push(file string, extra ...string) []string {
	return append(append([]string{"fleet", "push", file, "-m", "test", "--canary", "1", "--waves", "100%", "--confirm", "1m"}, f.etcdFlags()...), extra...)
}

// status runs `fleet status --json` and checks its exact shape.
func (f *fleetCLI) status() fleet.GroupStatus {
	f.t.Helper()
	out, code := f.fwslot(append([]string{"fleet", "status", "--json"}, f.etcdFlags()...)...)
	if code != 0 {
		f.t.Fatalf("fleet status: exit %d\n%s", code, out)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		f.t.Fatalf("fleet status --json: %v\n%s", err, out)
	}
	keysOf := func(m map[string]json.RawMessage) []string {
		var ks []string
		for k := range m {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		return ks
	}
	if got := keysOf(raw); !reflect.DeepEqual(got, []string{"desired", "group", "hosts", "rollout"}) {
		f.t.Fatalf("fleet status --json keys %v", got)
	}
	var hosts []map[string]json.RawMessage
	var rollout, desired map[string]json.RawMessage
	if json.Unmarshal(raw["hosts"], &hosts) != nil || json.Unmarshal(raw["rollout"], &rollout) != nil || json.Unmarshal(raw["desired"], &desired) != nil {
		f.t.Fatalf("fleet status --json: %s", out)
	}
	if got := keysOf(rollout); !reflect.DeepEqual(got, []string{"failed", "state", "wave"}) {
		f.t.Fatalf("rollout keys %v", got)
	}
	if got := keysOf(desired); !reflect.DeepEqual(got, []string{"hash", "version"}) {
		f.t.Fatalf("desired keys %v", got)
	}
	for _, h := range hosts {
		if got := keysOf(h); !reflect.DeepEqual(got, []string{"error", "host", "last_seen", "production", "staging", "state"}) {
			f.t.Fatalf("host keys %v", got)
		}
	}
	var gs fleet.GroupStatus
	if err := json.Unmarshal([]byte(out), &gs); err != nil {
		f.t.Fatal(err)
	}
	return gs
}

// agree checks that every host runs exactly version v (by its own
// `fwslot status`, read from the kernel), and that etcd says so.
func (f *fleetCLI) agree(v uint64, src string) {
	f.t.Helper()
	hash := sha256hex(src)
	if !waitUntil(func() bool {
		gs := f.status()
		if gs.Desired == nil || gs.Desired.Version != v || len(gs.Hosts) != len(f.nss) {
			return false
		}
		for _, h := range gs.Hosts {
			if h.Production == nil || h.Production.Hash != hash {
				return false
			}
		}
		return true
	}, time.Minute) {
		f.t.Fatalf("etcd does not show every host on version %d: %+v", v, f.status())
	}
	for h := range f.nss {
		out, code := f.fwslot("status", "--json", "--netns", f.nss[h], "--db", f.dbs[h])
		var st struct {
			Production *struct{ Hash string }
			Pending    *struct{}
		}
		if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st.Production == nil || st.Production.Hash != hash || st.Pending != nil {
			f.t.Fatalf("%s runs something else than version %d, or unconfirmed:\n%s", h, v, out)
		}
	}
}

func sha256hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestFleetCLI(t *testing.T) {
	// h1's health check is slow, so a push is still in its canary wave
	// when it gets SIGTERM.
	f := newFleetCLI(t, map[string]string{"h1": "sleep 3"}, 3)
	v1 := writeFile(t, "v1.nft", fleetV1)
	v2 := writeFile(t, "v2.nft", fleetV2)
	probes := writeFile(t, "web.probes", "accept tcp 198.51.100.7:40000 -> 192.0.2.1:22 in eth0\n")

	if out, code := f.fwslot(f.push(v1, "--probes", probes)...); code != 0 {
		t.Fatalf("push: exit %d\n%s", code, out)
	}
	f.agree(1, fleetV1)

	t.Run("SIGTERM during push, then resume", func(t *testing.T) {
		push := exec.Command(f.bin, f.push(v2, "--probes", probes)...)
		out := &syncBuffer{}
		push.Stdout, push.Stderr = out, out
		// Signal once the canary has its swap order.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		w := f.c.Watch(ctx, f.k.Order("h1"))
		if err := push.Start(); err != nil {
			t.Fatal(err)
		}
		for ordered := false; !ordered; {
			wr := <-w
			if wr.Err() != nil || ctx.Err() != nil {
				t.Fatalf("no order for the canary: %v\n%s", wr.Err(), out)
			}
			for _, ev := range wr.Events {
				var o fleet.Order
				ordered = json.Unmarshal(ev.Kv.Value, &o) == nil && o.Action == fleet.ActionSwap && o.Version == 2
			}
		}
		push.Process.Signal(syscall.SIGTERM)
		err := push.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(out.String(), "fleet resume --group web") {
			t.Fatalf("push after SIGTERM: %v\n%s", err, out)
		}
		if gs := f.status(); gs.Rollout.State != fleet.StateRunning {
			t.Fatalf("after SIGTERM the rollout is %s, want running", gs.Rollout.State)
		}
		if o, code := f.fwslot(append([]string{"fleet", "resume"}, f.etcdFlags()...)...); code != 0 {
			t.Fatalf("resume: exit %d\n%s", code, o)
		}
		f.agree(2, fleetV2)
	})

	t.Run("fleet rollback", func(t *testing.T) {
		out, code := f.fwslot(append([]string{"fleet", "rollback"}, f.etcdFlags()...)...)
		if code != 0 || !strings.Contains(out, "3 of 3 live host(s) flipped") {
			t.Fatalf("rollback: exit %d\n%s", code, out)
		}
		t.Log(strings.TrimSpace(out))
		f.agree(1, fleetV1)
		if gs := f.status(); gs.Rollout.State != fleet.StateRolledBack {
			t.Fatalf("rollout state %s after the rollback", gs.Rollout.State)
		}
	})
}

// pendingOn says whether host h's own history shows a swap waiting for
// confirmation.
func (f *fleetCLI) pendingOn(h string) bool {
	out, code := f.fwslot("status", "--json", "--netns", f.nss[h], "--db", f.dbs[h])
	var st struct{ Pending *struct{} }
	return code == 0 && json.Unmarshal([]byte(out), &st) == nil && st.Pending != nil
}

// TestFleetAgentKilled: an agent is killed with SIGKILL after its swap,
// before the confirmation. Its detached watchdog reverts the host at the
// deadline; the push names the host and fails, the group goes back to
// the previous version; the agent, started again, agrees.
func TestFleetAgentKilled(t *testing.T) {
	f := newFleetCLI(t, map[string]string{"h2": "sleep 2"}, 3)
	v1 := writeFile(t, "v1.nft", fleetV1)
	v2 := writeFile(t, "v2.nft", fleetV2)
	if out, code := f.fwslot(f.push(v1)...); code != 0 {
		t.Fatalf("push: exit %d\n%s", code, out)
	}
	f.agree(1, fleetV1)

	args := f.push(v2)
	for i, a := range args {
		if a == "1m" {
			args[i] = "4s" // --confirm
		}
	}
	push := exec.Command(f.bin, args...)
	out := &syncBuffer{}
	push.Stdout, push.Stderr = out, out
	if err := push.Start(); err != nil {
		t.Fatal(err)
	}
	if !waitUntil(func() bool { return f.pendingOn("h2") }, time.Minute) {
		t.Fatalf("h2 never swapped:\n%s", out)
	}
	f.agents["h2"].Process.Kill()
	err := push.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(out.String(), "h2: no answer") {
		t.Fatalf("push with h2's agent killed: %v\n%s", err, out)
	}
	if !waitUntil(func() bool { return !f.pendingOn("h2") }, time.Minute) {
		t.Fatal("h2's watchdog did not settle the swap")
	}
	f.startAgent("h2", "")
	f.waitAlive(3)
	f.agree(1, fleetV1)
	if gs := f.status(); gs.Rollout.State != fleet.StateFailed {
		t.Fatalf("rollout state %s, want failed", gs.Rollout.State)
	}
}
