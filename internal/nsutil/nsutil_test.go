package nsutil

import (
	"os"
	"os/exec"
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
