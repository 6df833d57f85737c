package nsutil

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/vishvananda/netns"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
}

func TestCreateDoDelete(t *testing.T) {
	requireRoot(t)
	name, err := Create("fwslot-test-")
	if err != nil {
		t.Fatal(err)
	}
	defer Delete(name)
	root, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()

	var inside string
	err = Do(name, func() error {
		out, err := exec.Command("ip", "-o", "link", "show").Output()
		inside = string(out)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(inside, "lo:") || !strings.Contains(inside, "UP") || strings.Count(inside, "\n") != 1 {
		t.Fatalf("expected only an up loopback inside, got:\n%s", inside)
	}
	now, _ := netns.Get()
	defer now.Close()
	if !now.Equal(root) {
		t.Fatal("Do left the calling thread in another namespace")
	}
	if err := Delete(name); err != nil {
		t.Fatal(err)
	}
	if Exists(name) {
		t.Fatal("namespace still exists after Delete")
	}
	if err := Delete(name); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
}

func TestDoFreshIsPrivate(t *testing.T) {
	requireRoot(t)
	var links string
	err := DoFresh(func() error {
		out, err := exec.Command("ip", "-o", "link", "show").Output()
		links = string(out)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(links, "\n") != 1 || !strings.Contains(links, "lo:") {
		t.Fatalf("fresh namespace should hold only lo, got:\n%s", links)
	}
}

func TestOpenMissing(t *testing.T) {
	if _, err := Open("fwslot-does-not-exist"); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("want a clear error, got %v", err)
	}
}

// A namespace whose creator died is swept; one whose creator lives, and
// one with no pid in its name, are kept.
func TestSweepStale(t *testing.T) {
	requireRoot(t)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	prefix := "fwslot-sweep-"
	names := map[string]bool{ // name -> swept
		prefix + strconv.Itoa(dead.Process.Pid) + "-00": true,
		prefix + strconv.Itoa(os.Getpid()) + "-00":      false,
		prefix + "nopid": false,
	}
	for n := range names {
		if err := CreateNamed(n); err != nil {
			t.Fatal(err)
		}
		defer Delete(n)
	}
	swept, err := SweepStale(prefix)
	if err != nil {
		t.Fatal(err)
	}
	for n, want := range names {
		if Exists(n) == want {
			t.Errorf("%s: exists=%v after sweep, want swept=%v (swept %v)", n, Exists(n), want, swept)
		}
	}
	if len(swept) != 1 {
		t.Errorf("swept %v, want exactly the dead creator's namespace", swept)
	}
}
