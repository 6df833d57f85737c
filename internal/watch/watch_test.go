package watch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fwslot/fwslot/internal/source"
)

// fakeStager records the flattened content of every file it is asked to
// stage, and rejects content that contains "REJECT".
type fakeStager struct {
	mu     sync.Mutex
	staged []string
}

func (f *fakeStager) Stage(ctx context.Context, file string) (Outcome, error) {
	b, err := source.Load(file, source.Options{})
	if err != nil {
		return Outcome{}, err
	}
	if strings.Contains(b.Flat, "REJECT") {
		return Outcome{}, fmt.Errorf("nft rejected %s:\n%s:1:1-6: Error: syntax error\nREJECT\n^^^^^^", file, file)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.staged = append(f.staged, b.Flat)
	return Outcome{Kind: Staged, Version: uint64(len(f.staged))}, nil
}

func (f *fakeStager) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.staged)
}

// harness runs a watcher on a directory of real files.
type harness struct {
	t       *testing.T
	dir     string
	stager  *fakeStager
	reports chan Report
	done    chan error
	cancel  context.CancelFunc
}

func start(t *testing.T, files map[string]string, debounce time.Duration) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), stager: &fakeStager{}, reports: make(chan Report, 100), done: make(chan error, 1)}
	for name, body := range files {
		h.write(name, body)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() {
		h.done <- Run(ctx, Config{File: filepath.Join(h.dir, "ruleset.nft"), Debounce: debounce, Stager: h.stager,
			Report: func(r Report) { h.reports <- r }})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-h.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return after cancel")
		}
	})
	return h
}

func (h *harness) write(name, body string) {
	h.t.Helper()
	p := filepath.Join(h.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// renameSave saves like vim with backupcopy=no or most IDEs: write a new
// file beside the old one, then rename it over.
func (h *harness) renameSave(name, body string) {
	h.t.Helper()
	tmp := filepath.Join(h.dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		h.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(h.dir, name)); err != nil {
		h.t.Fatal(err)
	}
}

// next waits for the next report that is not Same (unless same is true).
// The timeout only ends a hung test; nothing is asserted about time.
func (h *harness) next(same bool) Report {
	h.t.Helper()
	for {
		select {
		case r := <-h.reports:
			if r.Outcome.Kind == Same && !same {
				continue
			}
			return r
		case <-time.After(20 * time.Second):
			h.t.Fatal("no report from the watcher")
		}
	}
}

func (h *harness) expect(kind, contains string) Report {
	h.t.Helper()
	r := h.next(kind == Same)
	if r.Outcome.Kind != kind {
		h.t.Fatalf("outcome %+v, want %s", r.Outcome, kind)
	}
	if kind == Staged {
		h.stager.mu.Lock()
		last := h.stager.staged[len(h.stager.staged)-1]
		h.stager.mu.Unlock()
		if !strings.Contains(last, contains) {
			h.t.Fatalf("staged content lacks %q:\n%s", contains, last)
		}
	} else if !strings.Contains(r.Outcome.Detail, contains) {
		h.t.Fatalf("detail %q lacks %q", r.Outcome.Detail, contains)
	}
	return r
}

const mainBody = "include \"./rules.d/*.nft\"\ntable inet filter { chain input { type filter hook input priority 0; tcp dport 22 accept; } }\n"

func TestWatchFollowsEdits(t *testing.T) {
	h := start(t, map[string]string{
		"ruleset.nft":       mainBody,
		"rules.d/extra.nft": "define PORT = 80\n",
	}, 50*time.Millisecond)
	r := h.expect(Staged, "define PORT = 80")
	if len(r.Files) != 2 {
		t.Fatalf("files followed: %v", r.Files)
	}

	cases := []struct {
		name string
		edit func()
		kind string
		want string
	}{
		{"main file edited in place", func() { h.write("ruleset.nft", strings.Replace(mainBody, "22", "2222", 1)) }, Staged, "dport 2222"},
		{"main file saved by rename", func() { h.renameSave("ruleset.nft", strings.Replace(mainBody, "22", "2223", 1)) }, Staged, "dport 2223"},
		{"include edited on its own", func() { h.write("rules.d/extra.nft", "define PORT = 8080\n") }, Staged, "PORT = 8080"},
		{"include saved by rename", func() {
			tmp := filepath.Join(h.dir, "rules.d", ".extra.nft.swp")
			os.WriteFile(tmp, []byte("define PORT = 8081\n"), 0o644)
			os.Rename(tmp, filepath.Join(h.dir, "rules.d", "extra.nft"))
		}, Staged, "PORT = 8081"},
		{"saved without a change", func() { h.write("ruleset.nft", strings.Replace(mainBody, "22", "2223", 1)) }, Same, ""},
		{"new file matched by the include pattern", func() { h.write("rules.d/more.nft", "define MORE = 1\n") }, Staged, "MORE = 1"},
		{"a content nft rejects", func() { h.write("rules.d/more.nft", "REJECT\n") }, Rejected, "Error: syntax error"},
		{"fixed again", func() { h.write("rules.d/more.nft", "define MORE = 2\n") }, Staged, "MORE = 2"},
		{"include of a missing file", func() { h.write("ruleset.nft", "include \"./gone.nft\"\n"+mainBody) }, Rejected, "gone.nft"},
		{"missing file created", func() { h.write("gone.nft", "define GONE = 1\n") }, Staged, "GONE = 1"},
	}
	for _, c := range cases {
		c.edit()
		h.expect(c.kind, c.want)
	}
}

// A new include in another directory is followed once the main file names it.
func TestWatchRereadsIncludes(t *testing.T) {
	h := start(t, map[string]string{"ruleset.nft": "define A = 1\n", "lib/x.nft": "define X = 1\n"}, 50*time.Millisecond)
	h.expect(Staged, "A = 1")
	h.write("lib/x.nft", "define X = 2\n") // not included yet: no stage
	h.write("ruleset.nft", "include \"./lib/x.nft\"\ndefine A = 1\n")
	h.expect(Staged, "X = 2")
	h.write("lib/x.nft", "define X = 3\n")
	h.expect(Staged, "X = 3")
	if n := h.stager.count(); n != 3 {
		t.Fatalf("%d stages, want 3", n)
	}
}

// A burst of writes is staged as its final content, fewer times than written.
func TestWatchDebouncesBursts(t *testing.T) {
	h := start(t, map[string]string{"ruleset.nft": "define N = 0\n"}, 500*time.Millisecond)
	h.expect(Staged, "N = 0")
	const writes = 30
	for i := 1; i <= writes; i++ {
		h.write("ruleset.nft", fmt.Sprintf("define N = %d\n", i))
	}
	for {
		r := h.next(false)
		if r.Outcome.Kind != Staged {
			t.Fatalf("outcome %+v", r.Outcome)
		}
		h.stager.mu.Lock()
		last := h.stager.staged[len(h.stager.staged)-1]
		h.stager.mu.Unlock()
		if last == fmt.Sprintf("define N = %d\n", writes) {
			break
		}
	}
	if n := h.stager.count() - 1; n >= writes {
		t.Fatalf("%d writes staged %d times", writes, n)
	}
}

func TestWatchStops(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "ruleset.nft")
	os.WriteFile(file, []byte("define A = 1\n"), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	started := make(chan struct{}, 1)
	go func() {
		done <- Run(ctx, Config{File: file, Stager: &fakeStager{}, Report: func(Report) { started <- struct{}{} }})
	}()
	<-started
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
	if err := Run(context.Background(), Config{File: file}); err == nil {
		t.Fatal("Run without a stager succeeded")
	}
}

func TestFirstErrorLine(t *testing.T) {
	cases := []struct{ in, want string }{
		{"nft rejected x.nft:\nx.nft:3:1-5: Error: syntax error\nfoo\n^^^", "x.nft:3:1-5: Error: syntax error"},
		{"\n  plain failure\nmore", "plain failure"},
		{"", "unknown error"},
	}
	for _, c := range cases {
		if got := FirstErrorLine(errors.New(c.in)); got != c.want {
			t.Errorf("FirstErrorLine(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
