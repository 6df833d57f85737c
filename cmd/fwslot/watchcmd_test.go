package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fwslot/fwslot/internal/testnet"
)

// syncBuffer is a bytes.Buffer safe for a command writing while the test
// reads; seen is how far waitFor has matched.
type syncBuffer struct {
	mu   sync.Mutex
	b    bytes.Buffer
	seen int
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls out until what it printed since the last match holds
// want; the deadline only ends a hung test.
func waitFor(t *testing.T, out *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		s := out.String()
		if i := strings.Index(s[out.seen:], want); i >= 0 {
			out.seen += i + len(want)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("watch output lacks %q after what was matched:\n%s", want, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWatchCommand runs `fwslot watch` end to end on a namespace: real
// edits of the file and of an include, a rename-save, a rejected version,
// then --swap with probes making a version live pending confirmation.
func TestWatchCommand(t *testing.T) {
	ns, _ := testnet.Pair(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "h.db")
	main := filepath.Join(dir, "ruleset.nft")
	inc := filepath.Join(dir, "ports.nft")
	os.WriteFile(inc, []byte("define BLOCKED = 9\n"), 0o600)
	body := "include \"./ports.nft\"\n" + strings.Replace(good, "tcp dport 9 drop", "tcp dport $BLOCKED drop", 1)
	os.WriteFile(main, []byte(body), 0o600)

	start := func(extra ...string) (*syncBuffer, func()) {
		out := &syncBuffer{}
		root := newRoot()
		root.SetOut(out)
		root.SetErr(out)
		root.SetArgs(append([]string{"--netns", ns, "--db", db, "watch", main, "--debounce", "100ms"}, extra...))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- root.ExecuteContext(ctx) }()
		return out, func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("watch: %v\n%s", err, out.String())
			}
		}
	}
	out, stop := start()
	waitFor(t, out, "staged v1")
	os.WriteFile(inc, []byte("define BLOCKED = 10\n"), 0o600) // the include on its own
	waitFor(t, out, "staged v2")
	tmp := filepath.Join(dir, ".ruleset.nft.new") // an editor's rename-save
	os.WriteFile(tmp, []byte(strings.Replace(body, "$BLOCKED drop", "$BLOCKED drop; tcp dport 11 drop", 1)), 0o600)
	os.Rename(tmp, main)
	waitFor(t, out, "staged v3")
	os.WriteFile(main, []byte(strings.Replace(body, "drop", "dorp", 1)), 0o600)
	waitFor(t, out, "rejected: ")
	if !strings.Contains(out.String(), "Error:") {
		t.Errorf("rejection does not show nft's error line:\n%s", out.String())
	}
	os.WriteFile(main, []byte(body), 0o600) // the content of v2 again: restaged
	waitFor(t, out, "staged v2")
	stop()
	if st, _ := run(t, "--netns", ns, "--db", db, "status"); strings.Contains(st, "production  version") {
		t.Fatalf("watch without --swap made something live:\n%s", st)
	}

	probes := writeFile(t, "w.probes", "drop tcp 203.0.113.9:40000 -> 192.0.2.10:10 in eth0\naccept tcp 203.0.113.9:40001 -> 192.0.2.10:22 in eth0\n")
	if out, code := run(t, "--netns", ns, "--db", db, "watch", main, "--swap"); code != 2 || !strings.Contains(out, "--probes") {
		t.Fatalf("--swap without probes: exit %d\n%s", code, out)
	}
	out, stop = start("--probes", probes, "--swap", "--confirm", "10m")
	waitFor(t, out, "unchanged (v2)")
	os.WriteFile(inc, []byte("define BLOCKED = 22\n"), 0o600) // fails the ssh probe
	waitFor(t, out, "rejected: probe")
	os.WriteFile(inc, []byte("define BLOCKED = { 10, 12 }\n"), 0o600)
	waitFor(t, out, "live pending confirmation")
	stop()
	st, _ := run(t, "--netns", ns, "--db", db, "status")
	if !strings.Contains(st, "pending") {
		t.Fatalf("status after watch --swap:\n%s", st)
	}
	if out, code := run(t, "--netns", ns, "--db", db, "confirm"); code != 0 {
		t.Fatalf("confirm: %s", out)
	}
}
