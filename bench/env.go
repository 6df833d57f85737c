// Package bench measures fwslot against plain `nft -f` on the same
// generated rulesets (internal/gen): swap, rollback, load and restage
// latency, and peak memory. Everything runs in network namespaces that the
// package creates and removes; the root namespace is never touched.
//
// The command bench/cmd/fwslot-bench prints the tables; bench_test.go holds
// Go benchmarks of swap latency.
package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/session"

	"github.com/fwslot/fwslot/internal/gen"
	"github.com/fwslot/fwslot/internal/nsutil"
)

// NsPrefix starts the name of every namespace the benchmarks create.
const NsPrefix = "fwsb-"

// Proc is the outcome of one child process.
type Proc struct {
	Wall time.Duration
	// MaxRSS is ru_maxrss of wait4 in bytes: the largest resident set of
	// the process or of any descendant it waited for (Linux folds the
	// children's maximum into the rusage of their parent at exit).
	MaxRSS    int64
	User, Sys time.Duration
	Stdout    string
}

// Run starts name with args inside network namespace ns ("" = the current
// one), waits for it, and reports wall time (fork/exec included) and its
// rusage. A non-zero exit is an error carrying the output.
func Run(ns string, name string, args ...string) (Proc, error) {
	var p Proc
	err := nsutil.Do(ns, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, name, args...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		start := time.Now()
		err := cmd.Run()
		p.Wall = time.Since(start)
		if cmd.ProcessState != nil {
			if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
				p.MaxRSS = ru.Maxrss * 1024
				p.User = time.Duration(ru.Utime.Nano())
				p.Sys = time.Duration(ru.Stime.Nano())
			}
		}
		p.Stdout = out.String()
		if err != nil {
			e := errb.String()
			if len(e) > 2000 {
				e = e[:2000] + "..."
			}
			return fmt.Errorf("%s %v: %v: %s", name, args, err, e)
		}
		return nil
	})
	return p, err
}

// cleanup tracks namespaces so that an interrupted run still removes them.
var cleanup struct {
	sync.Mutex
	ns map[string]bool
}

// CreateNS makes a namespace for a benchmark; remove it with DeleteNS.
func CreateNS() (string, error) {
	name, err := nsutil.Create(NsPrefix)
	if err != nil {
		return "", err
	}
	cleanup.Lock()
	if cleanup.ns == nil {
		cleanup.ns = map[string]bool{}
	}
	cleanup.ns[name] = true
	cleanup.Unlock()
	return name, nil
}

// DeleteNS removes a namespace made by CreateNS.
func DeleteNS(name string) error {
	cleanup.Lock()
	delete(cleanup.ns, name)
	cleanup.Unlock()
	return nsutil.Delete(name)
}

// DeleteAllNS removes every namespace CreateNS made that still exists
// (for signal handlers).
func DeleteAllNS() {
	cleanup.Lock()
	names := make([]string, 0, len(cleanup.ns))
	for n := range cleanup.ns {
		names = append(names, n)
	}
	cleanup.Unlock()
	for _, n := range names {
		_ = DeleteNS(n)
	}
}

// BuildFwslot builds cmd/fwslot into dir with the go that runs the
// benchmark (first in PATH, else the standard install location), its
// output on stderr, and returns the binary's path.
func BuildFwslot(dir string) (string, error) {
	bin := filepath.Join(dir, "fwslot")
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = "/usr/local/go/bin/go"
	}
	cmd := exec.Command(gobin, "build", "-o", bin, "github.com/fwslot/fwslot/cmd/fwslot")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/fwslot: %w", err)
	}
	return bin, nil
}

// fwslotOn returns runners of the measured fwslot binary on namespace ns
// and history db: timed, and timed with peak RSS.
func (cfg *Config) fwslotOn(ns, db string) (fw, fwRSS func(args ...string) (Proc, error)) {
	argv := func(args []string) []string { return append([]string{"--netns", ns, "--db", db}, args...) }
	return func(args ...string) (Proc, error) { return Run("", cfg.Fwslot, argv(args)...) },
		func(args ...string) (Proc, error) { return RunRSS("", cfg.Fwslot, argv(args)...) }
}

// keepFirst runs cleanup and stores its error in *err unless *err holds
// one already: deferred, it removes what a measurement made without
// hiding the measurement's own failure.
func keepFirst(err *error, cleanup func() error) {
	if e := cleanup(); e != nil && *err == nil {
		*err = e
	}
}

// recorded runs run once unrecorded (i = 0, the warm-up) and then
// cfg.Runs times, and returns the recorded runs' times in seconds.
func (cfg *Config) recorded(run func(i int) (time.Duration, error)) ([]float64, error) {
	secs := make([]float64, 0, cfg.Runs)
	for i := 0; i <= cfg.Runs; i++ {
		d, err := run(i)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			secs = append(secs, d.Seconds())
		}
	}
	return secs, nil
}

// nsPool is the namespaces one measurement made, removed together.
type nsPool struct{ names []string }

// create makes a namespace with CreateNS and remembers it.
func (p *nsPool) create() (string, error) {
	ns, err := CreateNS()
	if err == nil {
		p.names = append(p.names, ns)
	}
	return ns, err
}

// deleteAll removes every namespace the pool made and returns the first
// error.
func (p *nsPool) deleteAll() error {
	var err error
	for _, ns := range p.names {
		keepFirst(&err, func() error { return DeleteNS(ns) })
	}
	return err
}

// Files are one generated ruleset on disk in two forms.
type Files struct {
	Rules int
	Seed  int64
	// Plain is the generated text, what fwslot loads and `nft -f FILE`
	// takes into an empty namespace.
	Plain string
	// Reload is "flush ruleset" followed by the same text: the full
	// reload an operator runs with nft alone.
	Reload string
}

// WriteRuleset generates gen.Ruleset(gen.Options{Rules: n, Seed: seed,
// Family: Family}) into dir.
func WriteRuleset(dir string, n int, seed int64) (Files, error) {
	text := gen.Ruleset(gen.Options{Rules: n, Seed: seed, Family: Family})
	f := Files{Rules: n, Seed: seed,
		Plain:  filepath.Join(dir, fmt.Sprintf("r%d-s%d.nft", n, seed)),
		Reload: filepath.Join(dir, fmt.Sprintf("r%d-s%d.reload.nft", n, seed))}
	if err := os.WriteFile(f.Plain, []byte(text), 0o600); err != nil {
		return f, err
	}
	if err := os.WriteFile(f.Reload, []byte("flush ruleset\n"+text), 0o600); err != nil {
		return f, err
	}
	return f, nil
}

// Nft runs `nft -f file` inside ns.
func Nft(ns, file string) (Proc, error) { return Run(ns, "nft", "-f", file) }

// scratch is what one measurement makes: a working folder below
// cfg.Dir and the namespaces of its pool; remove deletes them all.
type scratch struct {
	dir string
	nsPool
}

// newScratch makes the working folder name below cfg.Dir.
func newScratch(cfg *Config, name string) (*scratch, error) {
	dir := filepath.Join(cfg.Dir, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return &scratch{dir: dir}, nil
}

// remove deletes the namespaces, then the folder, and returns the first
// error.
func (s *scratch) remove() error {
	err := s.deleteAll()
	keepFirst(&err, func() error { return os.RemoveAll(s.dir) })
	return err
}

// preparedTarget opens a history in dir for the namespace ns and brings it
// to the steady state the breakdowns measure (see Prepare).
func preparedTarget(ctx context.Context, dir, ns string, n int) (*session.Target, func(), error) {
	store, err := history.Open(filepath.Join(dir, "fwslot.db"), history.Options{})
	if err != nil {
		return nil, nil, err
	}
	t := &session.Target{NetNS: ns, Store: store}
	if err := Prepare(ctx, t, dir, n); err != nil {
		store.Close()
		return nil, nil, err
	}
	return t, func() { store.Close() }, nil
}
