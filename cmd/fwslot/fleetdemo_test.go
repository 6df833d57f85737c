package main

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fwslot/fwslot/internal/nsutil"
	"github.com/fwslot/fwslot/internal/testnet"
)

// startFleetDemo starts `fwslot fleet demo` with its own TMPDIR, so that
// the test sees every temporary file it makes.
func startFleetDemo(t *testing.T, args ...string) (*exec.Cmd, *syncBuffer, string) {
	t.Helper()
	tmp := t.TempDir()
	cmd := exec.Command(fwslotBinary(t), append([]string{"fleet", "demo"}, args...)...)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, out, tmp
}

// leftovers names what a finished demo left: namespaces named with its
// pid, files in its TMPDIR.
func leftovers(t *testing.T, pid int, tmp string) []string {
	t.Helper()
	left := namespacesWith("fwslot-fdemo-" + strconv.Itoa(pid) + "-")
	for _, n := range left {
		nsutil.Delete(n)
	}
	entries, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		left = append(left, "TMPDIR/"+e.Name())
	}
	return left
}

// The demo runs to the end: the good versions go live in waves (real
// connections prove it, the demo checks them), the bad one is stopped by
// the canary's live health check, named with it, the fleet rollback flips
// every host; exit 0 and nothing left behind.
func TestFleetDemo(t *testing.T) {
	testnet.RequireRoot(t)
	cmd, out, tmp := startFleetDemo(t)
	err := cmd.Wait()
	s := out.String()
	if err != nil {
		t.Fatalf("fleet demo: %v\n%s", err, s)
	}
	for _, want := range []string{
		"version 1 is live and confirmed on all 5 hosts",
		"wave 1 of 3: swapping [web-1]",
		"wave 2 of 3: swapping [web-2 web-3]",
		"wave 3 of 3: swapping [web-4 web-5]",
		"10.200.5.2 -> web-5  10.200.5.1: 443 open, 8443 refused",
		"rollout of version 2 failed in wave 1",
		// The bad version passes the probes everywhere; the canary's
		// live --check (a connection to 9100) fails and it reverts.
		"web-1: health check of version 2 failed: --check",
		"the canary web-1 caught it live",
		"each host's history: version 2 went live on web-1 only",
		"10.200.3.2 -> web-3  10.200.3.1: 443 open, 8443 open",
		"version 3 -> 1: 5 of 5 hosts flipped",
		"removed the 5 host namespaces",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("the transcript lacks %q", want)
		}
	}
	if left := leftovers(t, cmd.Process.Pid, tmp); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	if t.Failed() {
		t.Logf("transcript:\n%s", s)
	}
}

// SIGTERM or Ctrl-C midway (a rollout between waves, or between steps
// with the agents idle) stops the demo; it removes its namespaces, etcd
// and its temporary directory, and says it was interrupted.
func TestFleetDemoSignals(t *testing.T) {
	testnet.RequireRoot(t)
	cases := []struct {
		name    string
		sig     syscall.Signal
		pauseAt string
	}{
		{"SIGTERM inside a rollout, between waves", syscall.SIGTERM, "wave 2 of 3: swapping"},
		{"SIGTERM after the canary stopped the bad version", syscall.SIGTERM, "the canary web-1 caught it"},
		{"Ctrl-C with the agents idle", syscall.SIGINT, "real packets from the client (version 3)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd, out, tmp := startFleetDemo(t, "--pause-at", c.pauseAt)
			mine := "fwslot-fdemo-" + strconv.Itoa(cmd.Process.Pid) + "-"
			if !waitUntil(func() bool { return strings.Contains(out.String(), "(paused at") }, 2*time.Minute) {
				cmd.Process.Kill()
				cmd.Wait()
				leftovers(t, cmd.Process.Pid, tmp)
				t.Fatalf("the demo did not reach %q:\n%s", c.pauseAt, out.String())
			}
			if n := len(namespacesWith(mine)); n != 6 {
				t.Errorf("paused with %d namespaces of the demo, want 6 (5 hosts, 1 client)", n)
			}
			if err := cmd.Process.Signal(c.sig); err != nil {
				t.Fatal(err)
			}
			err := cmd.Wait()
			s := out.String()
			if err == nil || !strings.Contains(s, "interrupted") {
				t.Errorf("exit %v, want a failure that says interrupted", err)
			}
			if !strings.Contains(s, "removed the 5 host namespaces") {
				t.Errorf("the demo did not say it removed everything")
			}
			if left := leftovers(t, cmd.Process.Pid, tmp); len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
			if t.Failed() {
				t.Logf("transcript:\n%s", s)
			}
		})
	}
}
