package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fwslot/fwslot/internal/nsutil"
	"github.com/fwslot/fwslot/internal/testnet"
)

// Ctrl-C or SIGTERM while a command probes in a twin stops the command,
// removes every namespace it made, and leaves the target as it was.
func TestSignalsRemoveTwins(t *testing.T) {
	testnet.RequireRoot(t)
	bin := fwslotBinary(t)
	ns, _ := testnet.Pair(t)
	db := filepath.Join(t.TempDir(), "h.db")
	rules := writeFile(t, "jumpy.nft", jumpy)
	other := writeFile(t, "other.nft", strings.Replace(jumpy, "reject with tcp reset", "drop", 1))
	var many strings.Builder
	for p := 20000; p < 24000; p++ { // long enough to be interrupted mid-run
		fmt.Fprintf(&many, "accept tcp 198.51.100.7:%d -> 192.0.2.10:22 in eth0\n", p)
	}
	probes := writeFile(t, "many.probes", many.String())
	target := []string{"--netns", ns, "--db", db}
	if out, code := run(t, append(target, "load", other)...); code != 0 {
		t.Fatalf("load: %s", out)
	}
	cases := []struct {
		name string
		sig  syscall.Signal
		args []string
	}{
		{"test, Ctrl-C", syscall.SIGINT, []string{"test", rules, "--probes", probes}},
		{"test, SIGTERM", syscall.SIGTERM, []string{"test", rules, "--probes", probes}},
		{"load --probes, Ctrl-C", syscall.SIGINT, append(target, "load", rules, "--probes", probes)},
		{"diff --probes, SIGTERM", syscall.SIGTERM, append(target, "diff", rules, "--probes", probes)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := testnet.Run(t, ns, "nft", "list", "ruleset")
			cmd := exec.Command(bin, c.args...)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Twins are anonymous namespaces the process holds by
			// descriptor: one open means a twin is being built.
			mine := "-" + strconv.Itoa(cmd.Process.Pid) + "-"
			if !waitUntil(func() bool { return holdsNamespace(cmd.Process.Pid) }, 20*time.Second) {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("no twin appeared:\n%s", out.String())
			}
			cmd.Process.Signal(c.sig)
			err := cmd.Wait()
			if err == nil || !strings.Contains(out.String(), "interrupted") {
				t.Errorf("exit %v, want a failure that says interrupted:\n%s", err, out.String())
			}
			if left := namespacesWith(mine); len(left) > 0 {
				t.Errorf("namespaces left behind: %v", left)
				for _, n := range left {
					nsutil.Delete(n)
				}
			}
			if after := testnet.Run(t, ns, "nft", "list", "ruleset"); after != before {
				t.Errorf("the target changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

// A twin left by a process killed with SIGKILL is removed by the next run.
func TestStaleTwinsSwept(t *testing.T) {
	testnet.RequireRoot(t)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale := "fwp-t-" + strconv.Itoa(dead.Process.Pid) + "-0badf00d"
	if err := nsutil.CreateNamed(stale); err != nil {
		t.Fatal(err)
	}
	defer nsutil.Delete(stale)
	out, code := run(t, "version")
	if code != 0 || nsutil.Exists(stale) || !strings.Contains(out, stale) {
		t.Fatalf("exit %d, stale twin exists=%v; want it removed and named:\n%s", code, nsutil.Exists(stale), out)
	}
}

// holdsNamespace reports whether process pid has a network namespace
// open as a file.
func holdsNamespace(pid int) bool {
	fds, _ := filepath.Glob(filepath.Join("/proc", strconv.Itoa(pid), "fd", "*"))
	for _, fd := range fds {
		if l, err := os.Readlink(fd); err == nil && strings.HasPrefix(l, "net:[") {
			return true
		}
	}
	return false
}

func namespacesWith(part string) []string {
	entries, _ := os.ReadDir(nsutil.RunDir)
	var out []string
	for _, e := range entries {
		if strings.Contains(e.Name(), part) {
			out = append(out, e.Name())
		}
	}
	return out
}

func waitUntil(cond func() bool, limit time.Duration) bool {
	for end := time.Now().Add(limit); time.Now().Before(end); time.Sleep(time.Millisecond) {
		if cond() {
			return true
		}
	}
	return false
}
