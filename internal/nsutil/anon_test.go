package nsutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// threadNamespaces lists the network namespaces of this process's threads.
func threadNamespaces(t *testing.T) map[string]bool {
	t.Helper()
	paths, err := filepath.Glob("/proc/self/task/*/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]bool{}
	for _, p := range paths {
		if l, err := os.Readlink(p); err == nil {
			m[l] = true
		}
	}
	return m
}

// TestNewAnon: the namespace is new, its loopback is up, nothing under
// RunDir names it, no thread is left in it (only the handle holds it), and
// a child process started in DoHandle runs inside it.
func TestNewAnon(t *testing.T) {
	requireRoot(t)
	before, _ := os.ReadDir(RunDir)
	h, err := NewAnon()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	here, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer here.Close()
	if h.Equal(here) {
		t.Fatal("NewAnon returned the current namespace")
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(h), &st); err != nil {
		t.Fatal(err)
	}
	ino := strconv.FormatUint(st.Ino, 10)
	if threadNamespaces(t)["net:["+ino+"]"] {
		t.Errorf("a thread of this process stayed in the new namespace %s", ino)
	}
	if after, _ := os.ReadDir(RunDir); len(after) != len(before) {
		t.Errorf("%s changed: %d entries before, %d after", RunDir, len(before), len(after))
	}
	var link, self string
	err = DoHandle(h, func() error {
		out, err := exec.Command("ip", "-o", "link", "show", "lo").Output()
		link = string(out)
		if err != nil {
			return err
		}
		self, err = os.Readlink("/proc/thread-self/ns/net")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(link, "UP") || self != "net:["+ino+"]" {
		t.Fatalf("inside: lo %q, namespace %s; want lo up in net:[%s]", link, self, ino)
	}
}
