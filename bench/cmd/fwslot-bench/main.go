// Command fwslot-bench measures fwslot against `nft -f`, `iptables-restore`
// (nft and legacy backends) and `ipset` on the same generated rulesets,
// and a fleet rollout through etcd, and prints one Markdown table per
// measurement:
//
//	go run ./bench/cmd/fwslot-bench            # 100, 1k, 10k, 100k rules, 1M-element set, 5 runs, fleet of 10, 50, 100 hosts
//	go run ./bench/cmd/fwslot-bench -quick     # 100, 1k, 10k rules, 100k-element set, no fleet (< 2 min)
//	go run ./bench/cmd/fwslot-bench -sizes 1000,10000 -runs 7 -only tools,flood
//	go run ./bench/cmd/fwslot-bench -only fleet -hosts 10 -fleet-rules 1000
//
// It needs root, nft, iptables, ipset and the Go toolchain (it builds
// cmd/fwslot, so that the measured command includes process start).
// Everything runs in network namespaces named fwsb-*, removed at the end,
// on error and on Ctrl-C; the root namespace is never touched. The fleet
// section's hosts are namespaces fwsb-fleet-<pid>-*, each kept by an agent
// running inside this process (100 agent processes would not fit 2 cores),
// on an embedded etcd on free 127.0.0.1 ports.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fwslot/fwslot/bench"
)

func main() {
	os.Exit(run())
}

// allSections are the sections -only chooses from, in the order they run.
var allSections = []string{"core", "tools", "bigset", "scale", "flood", "datapath", "probes", "breakdown", "fleet"}

// options are the parsed flags, defaults filled in.
type options struct {
	sizes, netSizes, hosts          []int
	runs, bigset, scaleSet          int
	scaleRules, senders, fleetRules int
	stagers                         int
	floodFor, dpFor                 time.Duration
	cpuprofile, fwslot, out         string
	sections                        map[string]bool
}

func run() int {
	o, code := parseFlags()
	if code != 0 {
		return code
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "fwslot-bench: needs root (network namespaces, nf_tables)")
		return 2
	}

	dir, err := os.MkdirTemp("", "fwslot-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "fwslot-bench:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	guard := &interruptGuard{}
	go guard.watch(sig, cancel, dir)

	bin := o.fwslot
	if bin == "" {
		b, err := bench.BuildFwslot(dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fwslot-bench: build fwslot:", err)
			return 1
		}
		bin = b
	}

	cfg := &bench.Config{Sizes: o.sizes, Runs: o.runs, Fwslot: bin, Dir: dir, Log: os.Stderr}
	load := loadavg()
	start := time.Now()
	tables, err := runSections(ctx, cfg, o, guard)
	if err != nil {
		fmt.Fprintf(os.Stderr, "fwslot-bench: %v\n", err)
		return 1
	}

	var w io.Writer = os.Stdout
	if o.out != "" {
		f, err := os.Create(o.out)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fwslot-bench:", err)
			return 1
		}
		defer f.Close()
		w = io.MultiWriter(os.Stdout, f)
	}
	fmt.Fprintf(w, "## fwslot-bench results\n\n")
	fmt.Fprintf(w, "- command: `go run ./bench/cmd/fwslot-bench %s`\n", strings.Join(os.Args[1:], " "))
	fmt.Fprintf(w, "- date: %s; machine: %s; load average at start %s\n", start.UTC().Format("2006-01-02 15:04 MST"), machine(), load)
	fmt.Fprintf(w, "- ruleset: `gen.Ruleset(gen.Options{Rules: N, Seed: s, Family: %q})` (anonymous sets and vmap, ≤ %d anonymous sets); iptables: `gen.IptablesSave` of the same options\n", bench.Family, 400)
	fmt.Fprintf(w, "- %d recorded runs per cell after one warm-up (the fleet section: one run per size); wall time %s\n\n", o.runs, time.Since(start).Round(time.Second))
	for _, t := range tables {
		t.Fprint(w)
	}
	return 0
}

// interruptGuard removes the benchmark's namespaces and exits on Ctrl-C,
// except while the fleet section runs: then it cancels the context, and
// the fleet section removes its lab (namespaces, agents, etcd) itself
// before returning.
type interruptGuard struct {
	mu    sync.Mutex
	fleet bool
}

func (g *interruptGuard) watch(sig <-chan os.Signal, cancel context.CancelFunc, dir string) {
	<-sig
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.fleet {
		fmt.Fprintln(os.Stderr, "fwslot-bench: interrupted; the fleet section removes its namespaces")
		cancel()
		return
	}
	fmt.Fprintln(os.Stderr, "fwslot-bench: interrupted; removing namespaces")
	bench.DeleteAllNS()
	os.RemoveAll(dir)
	os.Exit(130)
}

// enterFleet hands Ctrl-C over to the fleet section. An interrupt that
// came before holds the lock until it has exited the process.
func (g *interruptGuard) enterFleet() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.fleet = true
}

// parseFlags reads the flags and fills in the defaults (smaller with
// -quick unless a flag is given); a non-zero code means stop with it.
func parseFlags() (*options, int) {
	quick := flag.Bool("quick", false, "sizes 100,1000,10000 (unless -sizes is given), smaller sets and runs, no fleet section (unless -only names it)")
	sizesFlag := flag.String("sizes", "", "comma-separated rule counts (default 100,1000,10000,100000)")
	runs := flag.Int("runs", 5, "recorded runs per row (at least 5); one warm-up run precedes them")
	breakdown := flag.Bool("breakdown", true, "also time each phase of an in-process load and swap (default off with -quick)")
	only := flag.String("only", "", "comma-separated sections to run (default all): "+strings.Join(allSections, ","))
	scaleSet := flag.Int("scale-set", 1000000, "elements of the scale section's set (20000 with -quick)")
	scaleRules := flag.Int("scale-rules", 100000, "rules of the scale section's ruleset (2000 with -quick)")
	bigset := flag.Int("bigset", 1000000, "elements of the large set (100000 with -quick)")
	floodFor := flag.Duration("flood", 10*time.Second, "how long to swap under the flood, per size (3s with -quick)")
	dpFor := flag.Duration("datapath", 5*time.Second, "length of one datapath run (1.5s with -quick)")
	senders := flag.Int("senders", runtime.NumCPU(), "UDP sender sockets for the flood and datapath runs (one goroutine each, pinned to CPU i mod nproc)")
	hosts := flag.String("hosts", "10,50,100", "comma-separated fleet sizes of the fleet section")
	fleetRules := flag.Int("fleet-rules", 10000, "rules of each version the fleet section pushes")
	stagers := flag.Int("stagers", 2*runtime.NumCPU(), "in-process fleet agents compiling at once")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the in-process phased loads to this file")
	fwslotBin := flag.String("fwslot", "", "fwslot binary to measure (default: go build ./cmd/fwslot)")
	out := flag.String("o", "", "also write the report to this file")
	flag.Parse()

	if *runs < 5 {
		fmt.Fprintln(os.Stderr, "fwslot-bench: -runs must be at least 5")
		return nil, 2
	}
	o := &options{sizes: []int{100, 1000, 10000, 100000}, netSizes: []int{1000, 10000},
		runs: *runs, senders: *senders, fleetRules: *fleetRules, stagers: *stagers,
		cpuprofile: *cpuprofile, fwslot: *fwslotBin, out: *out}
	explicit := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	o.bigset = orQuick(*quick, explicit, "bigset", *bigset, 100000)
	o.scaleSet = orQuick(*quick, explicit, "scale-set", *scaleSet, 20000)
	o.scaleRules = orQuick(*quick, explicit, "scale-rules", *scaleRules, 2000)
	o.floodFor = orQuick(*quick, explicit, "flood", *floodFor, 3*time.Second)
	o.dpFor = orQuick(*quick, explicit, "datapath", *dpFor, 1500*time.Millisecond)
	if *quick {
		o.sizes = []int{100, 1000, 10000}
		o.netSizes = []int{1000}
		if !explicit["breakdown"] {
			*breakdown = false
		}
	}
	o.sections = map[string]bool{}
	for _, s := range allSections {
		o.sections[s] = *only == ""
	}
	if *only != "" {
		for _, s := range strings.Split(*only, ",") {
			s = strings.TrimSpace(s)
			if _, ok := o.sections[s]; !ok {
				fmt.Fprintf(os.Stderr, "fwslot-bench: unknown section %q\n", s)
				return nil, 2
			}
			o.sections[s] = true
		}
		if o.sections["tools"] {
			o.sections["core"] = true // the tools tables take fwslot and nft from core
		}
	} else if *quick {
		o.sections["fleet"] = false
	}
	if !*breakdown {
		o.sections["breakdown"] = false
	}
	var err error
	if *sizesFlag != "" {
		if o.sizes, err = bench.ParseSizes(*sizesFlag); err != nil {
			fmt.Fprintf(os.Stderr, "fwslot-bench: -sizes: %v\n", err)
			return nil, 2
		}
	}
	if o.hosts, err = bench.ParseSizes(*hosts); err != nil {
		fmt.Fprintf(os.Stderr, "fwslot-bench: -hosts: %v\n", err)
		return nil, 2
	}
	return o, 0
}

// orQuick is the value of flag name: small under -quick unless the flag
// was given, else full.
func orQuick[T any](quick bool, explicit map[string]bool, name string, full, small T) T {
	if quick && !explicit[name] {
		return small
	}
	return full
}
