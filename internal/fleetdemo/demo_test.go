package fleetdemo

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/fwslot/fwslot/internal/nsutil"
	"github.com/fwslot/fwslot/internal/testnet"
)

// labNamespaces lists the namespaces this process's labs made.
func labNamespaces(t *testing.T, prefix string) []string {
	t.Helper()
	entries, err := os.ReadDir(nsutil.RunDir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix+strconv.Itoa(os.Getpid())+"-") {
			out = append(out, e.Name())
		}
	}
	return out
}

// Run in this process (under -race): every checked outcome holds (the
// bad version passes every host's probes, goes live on the canary only,
// fails its --check there and is reverted), and the lab's namespaces and
// directory are gone when it returns.
func TestRun(t *testing.T) {
	testnet.RequireRoot(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	var out bytes.Buffer
	if err := Run(context.Background(), Options{Out: &out, Hosts: 3}); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"version 1 is live and confirmed on all 3 hosts",
		// The bad version passes the probes (the canary staged and
		// swapped it); the canary's live check catches it, and it alone
		// ran it.
		"the canary web-1 caught it live",
		"web-1: health check of version 2 failed: --check",
		"9100: Connection refused",
		"each host's history: version 2 went live on web-1 only",
		"version 3 -> 1: 3 of 3 hosts flipped",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("transcript lacks %q:\n%s", want, out.String())
		}
	}
	if left := labNamespaces(t, "fwslot-fdemo-"); len(left) > 0 {
		t.Errorf("namespaces left: %v", left)
	}
	if entries, _ := os.ReadDir(tmp); len(entries) > 0 {
		t.Errorf("%d entries left in TMPDIR, first %s", len(entries), entries[0].Name())
	}
}

// cancelAt cancels when a write contains at, as Ctrl-C at that step.
type cancelAt struct {
	w      *bytes.Buffer
	at     string
	cancel func()
}

func (c *cancelAt) Write(b []byte) (int, error) {
	if strings.Contains(string(b), c.at) {
		c.cancel()
	}
	return c.w.Write(b)
}

// A cancelled context (Ctrl-C) as the first push starts: Run says so and
// still removes everything.
func TestRunCancelled(t *testing.T) {
	testnet.RequireRoot(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	ctx, cancel := context.WithCancel(context.Background())
	var out bytes.Buffer
	err := Run(ctx, Options{Out: &cancelAt{w: &out, at: "fwslot fleet push v1.nft", cancel: cancel}, Hosts: 2})
	if err == nil || !strings.Contains(err.Error(), "the demo was stopped") {
		t.Fatalf("want a stopped demo, got %v\n%s", err, out.String())
	}
	if left := labNamespaces(t, "fwslot-fdemo-"); len(left) > 0 {
		t.Errorf("namespaces left: %v", left)
	}
	if entries, _ := os.ReadDir(tmp); len(entries) > 0 {
		t.Errorf("%d entries left in TMPDIR, first %s", len(entries), entries[0].Name())
	}
}
