package fleet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fwslot/fwslot/internal/kerneltest"
	"github.com/fwslot/fwslot/internal/testnet"
)

const (
	// kv1 lets the service on 8443 in; kbad drops it (the canary's own
	// health check, a real connection from the peer, catches that).
	kv1  = "table inet fleet {\n  chain input {\n    type filter hook input priority 0; policy accept;\n    tcp dport 9000 drop\n  }\n}\n"
	kv2  = "table inet fleet {\n  chain input {\n    type filter hook input priority 0; policy accept;\n    tcp dport { 9000, 9001 } drop\n  }\n}\n"
	kbad = "table inet fleet {\n  chain input {\n    type filter hook input priority 0; policy accept;\n    tcp dport { 8443, 9000 } drop\n  }\n}\n"
	// The group's probes: ssh to every host stays open.
	kprobes = "accept tcp 198.51.100.7:40000 -> 192.0.2.1:22 in eth0   # admin ssh\n"
)

// TestKernelFleet runs five agents on five namespaces with real
// nftables, real history files and real probes; h1 (the canary) serves
// on 8443 and its health check is a real connection from a peer.
func TestKernelFleet(t *testing.T) {
	testnet.RequireRoot(t)
	target, peer := testnet.Pair(t)
	testnet.Listen(t, target, "tcp", net.JoinHostPort(testnet.TargetIP, "8443"))
	reach := func() bool { return testnet.Connect(peer, net.JoinHostPort(testnet.TargetIP, "8443"), 2*time.Second) }
	dir := t.TempDir()
	hosts := map[string]Host{}
	libs := map[string]*LibHost{}
	for i := 1; i <= 5; i++ {
		h := fmt.Sprintf("h%d", i)
		ns := target
		if i > 1 {
			ns = testnet.Namespace(t, "fwslot-fleet")
		}
		libs[h] = &LibHost{NetNS: ns, DB: filepath.Join(dir, h+".db")}
		hosts[h] = libs[h]
	}
	libs["h1"].CheckCmd = fmt.Sprintf("ip netns exec %s timeout 2 bash -c 'exec 3<>/dev/tcp/%s/8443'", peer, testnet.TargetIP)
	f := newTestFleet(t, hosts)
	ctx := testCtx(t)
	opts := func(src string) PushOptions {
		o := pushOpts(src)
		o.Probes, o.Confirm = kprobes, time.Minute
		return o
	}
	// production is every host's production: the version's hash and the
	// kernel's production objects.
	production := func() map[string]string {
		out := map[string]string{}
		for h, lh := range libs {
			st, err := lh.State(ctx)
			if err != nil {
				t.Fatal(err)
			}
			out[h] = st.Production + " " + sum(kerneltest.Production(t, lh.NetNS))
		}
		return out
	}

	start := time.Now()
	if _, err := f.pusher().Push(ctx, opts(kv1)); err != nil {
		t.Fatal(err)
	}
	t.Logf("push to 5 hosts, live and confirmed: %v", time.Since(start).Round(time.Millisecond))
	f.consistent(kv1)
	if !reach() {
		t.Fatal("version 1 is live on h1 but 8443 is not reachable")
	}

	t.Run("failing canary", func(t *testing.T) {
		before := production()
		_, err := f.pusher().Push(ctx, opts(kbad))
		var fe *FailedError
		if !errors.As(err, &fe) || fe.Wave != 1 || len(fe.Failed) != 1 || fe.Failed[0].Host != "h1" || !strings.Contains(fe.Failed[0].Reason, "--check") {
			t.Fatalf("push of a version that cuts h1's service: %v", err)
		}
		f.consistent(kv1)
		if after := production(); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatalf("production changed: %v -> %v", before, after)
		}
		if !reach() {
			t.Fatal("h1 did not get its service back")
		}
		for _, h := range []string{"h2", "h3", "h4", "h5"} {
			if st, _ := libs[h].State(ctx); st.Staging != sum([]byte(kbad)) {
				t.Errorf("%s of a later wave: %+v, want the bad version only staged", h, st)
			}
		}
	})

	t.Run("staged content pushed again is probed again", func(t *testing.T) {
		// Every host has the bad version staged from the failed push;
		// pushed again with a probe it fails, it must be refused at
		// staging, before any swap.
		before := production()
		o := opts(kbad)
		o.Probes += "accept tcp 198.51.100.7:40001 -> 192.0.2.1:8443 in eth0   # the service\n"
		_, err := f.pusher().Push(ctx, o)
		var fe *FailedError
		if !errors.As(err, &fe) || len(fe.Failed) != 1 || !strings.Contains(fe.Failed[0].Reason, "stage version") || strings.Contains(fe.Failed[0].Reason, "health check") {
			t.Fatalf("push of staged content with a failing probe: %v, want a refusal at staging", err)
		}
		f.consistent(kv1)
		if after := production(); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatalf("production changed: %v -> %v", before, after)
		}
	})

	t.Run("fleet rollback", func(t *testing.T) {
		before := production()
		if _, err := f.pusher().Push(ctx, opts(kv2)); err != nil {
			t.Fatal(err)
		}
		f.consistent(kv2)
		if fmt.Sprint(production()) == fmt.Sprint(before) {
			t.Fatal("production objects look the same with version 2 live")
		}
		res, err := Rollback(ctx, f.c, f.k, time.Minute)
		if err != nil || len(res.Failed) != 0 {
			t.Fatalf("rollback: %+v, %v", res, err)
		}
		t.Logf("fleet rollback of 5 hosts: %v", res.Took.Round(time.Millisecond))
		f.consistent(kv1)
		if after := production(); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatalf("production after the rollback differs from before the push:\n%v\n%v", before, after)
		}
		if !reach() {
			t.Fatal("8443 not reachable after the rollback")
		}
	})

	t.Run("offline host converges", func(t *testing.T) {
		f.stop("h5")
		f.waitAlive(4)
		if _, err := f.pusher().Push(ctx, opts(kv2)); err != nil {
			t.Fatal(err)
		}
		if st, _ := libs["h5"].State(ctx); st.Production != sum([]byte(kv1)) {
			t.Fatalf("the offline host changed: %+v", st)
		}
		f.start("h5")
		f.waitAlive(5)
		f.consistent(kv2)
	})
	_ = context.Background
}
