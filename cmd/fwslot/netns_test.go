package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/fwslot/fwslot/internal/nsutil"
	"github.com/fwslot/fwslot/internal/sysbin"
)

// TestNetnsName: --netns takes a name as `ip netns` does. A path such as
// ../../proc/1/ns/net used to reach the host's namespace as if it were a
// named one, skipping the host's SSH lockout guard; now it is bad usage,
// refused before anything is read or written.
func TestNetnsName(t *testing.T) {
	db := filepath.Join(t.TempDir(), "h.db")
	rules := writeFile(t, "ruleset.nft", sshOnly)
	for _, tt := range []struct {
		name, netns, want string
	}{
		{"path to the host", "../../proc/1/ns/net", `--netns: invalid network namespace name "../../proc/1/ns/net"`},
		{"absolute path", "/proc/1/ns/net", `--netns: invalid network namespace name "/proc/1/ns/net"`},
		{"dot dot", "..", `--netns: invalid network namespace name ".."`},
		{"empty", "", "--netns: empty network namespace name"},
		{"too long", strings.Repeat("n", 256), "--netns: network namespace name of 256 bytes; at most 255"},
	} {
		for _, args := range [][]string{{"status"}, {"load", rules}, {"swap"}} {
			t.Run(tt.name+"/"+args[0], func(t *testing.T) {
				out, code := run(t, append([]string{"--netns", tt.netns, "--db", db}, args...)...)
				if code != exitUsage || !strings.Contains(out, tt.want) {
					t.Errorf("exit %d, want %d and %q:\n%s", code, exitUsage, tt.want, out)
				}
				if _, err := os.Stat(db); err == nil {
					t.Errorf("a refused --netns created the history file %s", db)
				}
			})
		}
	}
}

// TestNetnsHostAlias: a name that pins the host's own namespace (ip netns
// attach NAME PID of a host process) is the host: the host's SSH lockout guard applies
// and history keeps the host's versions. Nothing on the host changes: the
// test only attaches and detaches a name.
func TestNetnsHostAlias(t *testing.T) {
	ip, err := sysbin.IP()
	if err != nil {
		t.Fatal(err)
	}
	// A child started from this goroutine's thread runs in the host's
	// namespace (the main thread may have been left in another by a
	// namespace switch of an earlier test).
	child := exec.Command("/bin/sleep", "60")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		child.Process.Kill()
		child.Wait() // killed: its exit status says nothing
	}()
	name := "fwslot-hostalias-" + filepath.Base(t.TempDir())
	if out, err := exec.Command(ip, "netns", "attach", name, strconv.Itoa(child.Process.Pid)).CombinedOutput(); err != nil {
		t.Fatalf("ip netns attach: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if err := nsutil.Delete(name); err != nil {
			t.Error(err)
		}
	})
	other, err := nsutil.Create("fwslot-t-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nsutil.Delete(other) })
	t.Setenv("SSH_CONNECTION", "198.51.100.7 50022 192.0.2.10 22")
	for _, tt := range []struct {
		netns, want string
		host        bool
	}{
		{name, "", true},
		{other, other, false},
	} {
		var stderr bytes.Buffer
		g := &globals{netns: tt.netns, stderr: &stderr}
		if err := g.checkNetns(true); err != nil {
			t.Fatal(err)
		}
		if g.netns != tt.want {
			t.Errorf("--netns %s: target %q, want %q", tt.netns, g.netns, tt.want)
		}
		// The host's guard protects the SSH session; a named namespace's
		// does not (the session does not land there).
		a, err := accessToKeep(g.netns, "")
		if err != nil {
			t.Fatal(err)
		}
		if (a != nil) != tt.host {
			t.Errorf("--netns %s: lockout guard protects the ssh session: %v, want %v", tt.netns, a != nil, tt.host)
		}
		if tt.host && !strings.Contains(stderr.String(), "is the host's own network namespace; acting on the host") {
			t.Errorf("--netns %s: no note on stderr: %q", tt.netns, stderr.String())
		}
	}
}
