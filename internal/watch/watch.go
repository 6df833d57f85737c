// Package watch follows a ruleset file and every file it includes, and
// hands each new content to a Stager: fwslot's watch mode. It watches the
// directories that hold the files, not the files themselves, so editors
// that save by writing a new file and renaming it over the old one are
// followed, and it re-reads the include list after every change.
package watch

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/fwslot/fwslot/internal/source"
)

// DefaultDebounce is how long the files must stay quiet before a change is
// processed, so a burst of writes (an editor's save, a git checkout) is
// staged once.
const DefaultDebounce = 300 * time.Millisecond

// Outcome kinds.
const (
	// Staged: a new version is in the staging slot.
	Staged = "staged"
	// Unchanged: a slot already holds this content.
	Unchanged = "unchanged"
	// Rejected: the content could not be read, compiled, proved or staged.
	Rejected = "rejected"
	// Same: the files changed on disk but their content (the flattened
	// ruleset) did not; nothing was staged.
	Same = "same"
)

// Outcome is what handling one content of the ruleset gave.
type Outcome struct {
	Kind    string `json:"outcome"`
	Version uint64 `json:"version,omitempty"`
	// Live is set when the version was also made live.
	Live bool `json:"live,omitempty"`
	// Detail is the first line of the error of a rejection, or a note.
	Detail string `json:"detail,omitempty"`
}

// Stager stages the ruleset file whose content changed. Errors count as
// rejections; their first error line is reported.
type Stager interface {
	Stage(ctx context.Context, file string) (Outcome, error)
}

// Report is one processed change.
type Report struct {
	Time    time.Time `json:"time"`
	Hash    string    `json:"hash,omitempty"`
	Files   []string  `json:"files,omitempty"`
	Outcome Outcome   `json:"result"`
}

// Config is what Run watches and whom it tells.
type Config struct {
	// File is the main ruleset file.
	File string
	// IncludeDirs are where its includes may read besides its own
	// directory (source.Options.IncludeDirs).
	IncludeDirs []string
	// Debounce is the quiet time before a change is processed; zero means
	// DefaultDebounce.
	Debounce time.Duration
	// Stager stages each new content.
	Stager Stager
	// Report, when set, is called after every processed change, including
	// the first look at the files when Run starts.
	Report func(Report)
}

// Run stages the ruleset once, then again on every change of its content,
// until ctx ends; it returns nil then. Only content changes reach the
// Stager: a file saved without changes is reported as Same.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Stager == nil {
		return errors.New("watch: no stager")
	}
	main, err := filepath.Abs(cfg.File)
	if err != nil {
		return fmt.Errorf("watch %s: %w", cfg.File, err)
	}
	debounce := cfg.Debounce
	if debounce <= 0 {
		debounce = DefaultDebounce
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", cfg.File, err)
	}
	defer fw.Close()
	w := &watcher{cfg: cfg, main: main, fw: fw, dirs: map[string]bool{}}
	if err := w.sync([]string{main}); err != nil {
		return err
	}
	w.check(ctx)

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case ev, ok := <-fw.Events:
			if !ok {
				return errors.New("watch: file notifications stopped")
			}
			if w.relevant(ev) {
				timer.Reset(debounce)
			}
		case err, ok := <-fw.Errors:
			if !ok {
				return errors.New("watch: file notifications stopped")
			}
			// Lost events (queue overflow): look at the files again.
			w.report(Report{Outcome: Outcome{Kind: Rejected, Detail: "file notifications: " + err.Error()}})
			timer.Reset(debounce)
		case <-timer.C:
			w.check(ctx)
		}
	}
}

type watcher struct {
	cfg     Config
	main    string
	fw      *fsnotify.Watcher
	dirs    map[string]bool
	files   map[string]bool
	last    string // hash of the content last handed to the stager
	lastErr string // the last read error reported
}

// relevant drops notifications that cannot change the ruleset: attribute
// changes (touch, chmod) and files in the watched directories that the
// ruleset does not read and that are not ruleset-like (editor backups,
// swap files). New files ending in .nft or .conf may match an include
// pattern, so they count.
func (w *watcher) relevant(ev fsnotify.Event) bool {
	if ev.Op == fsnotify.Chmod {
		return false
	}
	if w.files[ev.Name] || ev.Name == w.main {
		return true
	}
	base := filepath.Base(ev.Name)
	if strings.HasPrefix(base, ".") || strings.HasSuffix(base, "~") || strings.HasSuffix(base, ".swp") {
		return false
	}
	return strings.HasSuffix(base, ".nft") || strings.HasSuffix(base, ".conf") || !strings.Contains(base, ".")
}

// sync watches the directories of files (and of the main file) and stops
// watching the others.
func (w *watcher) sync(files []string) error {
	want := map[string]bool{filepath.Dir(w.main): true}
	w.files = map[string]bool{}
	for _, f := range files {
		want[filepath.Dir(f)] = true
		w.files[f] = true
	}
	for d := range want {
		if w.dirs[d] {
			continue
		}
		if err := w.fw.Add(d); err != nil {
			return fmt.Errorf("watch directory %s: %w", d, err)
		}
		w.dirs[d] = true
	}
	for d := range w.dirs {
		if !want[d] {
			_ = w.fw.Remove(d) // gone already when the directory was removed
			delete(w.dirs, d)
		}
	}
	return nil
}

// check reads the ruleset with its includes and stages it when its
// content changed.
func (w *watcher) check(ctx context.Context) {
	b, err := source.Load(w.main, source.Options{IncludeDirs: w.cfg.IncludeDirs})
	if err != nil {
		msg := FirstErrorLine(err)
		if msg == w.lastErr {
			w.report(Report{Outcome: Outcome{Kind: Same}})
			return
		}
		w.lastErr, w.last = msg, ""
		w.report(Report{Outcome: Outcome{Kind: Rejected, Detail: msg}})
		return
	}
	w.lastErr = ""
	var files []string
	for _, f := range b.Files {
		files = append(files, f.Path)
	}
	sort.Strings(files)
	r := Report{Hash: b.Hash, Files: files}
	if err := w.sync(files); err != nil {
		r.Outcome = Outcome{Kind: Rejected, Detail: err.Error()}
		w.report(r)
		return
	}
	if b.Hash == w.last {
		r.Outcome = Outcome{Kind: Same}
		w.report(r)
		return
	}
	w.last = b.Hash
	out, err := w.cfg.Stager.Stage(ctx, w.main)
	if err != nil {
		out = Outcome{Kind: Rejected, Detail: FirstErrorLine(err)}
	}
	r.Outcome = out
	w.report(r)
}

func (w *watcher) report(r Report) {
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	if w.cfg.Report != nil {
		w.cfg.Report(r)
	}
}

// FirstErrorLine returns the line of an error message that says what is
// wrong: the first one naming an error (nft's "file:line:col: Error: ..."),
// else the first non-empty line.
func FirstErrorLine(err error) string {
	lines := strings.Split(err.Error(), "\n")
	for _, l := range lines {
		if strings.Contains(l, "Error:") || strings.Contains(l, "error:") {
			return strings.TrimSpace(l)
		}
	}
	for _, l := range lines {
		if s := strings.TrimSpace(l); s != "" {
			return s
		}
	}
	return "unknown error"
}
