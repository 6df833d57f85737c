// Command fwslot-bench-fleet is the fleet section of `make bench`: the
// time from `fleet push` to every host live and confirmed for 10, 50 and
// 100 hosts and a 10k-rule ruleset, beside a sequential `nft -f` loop over
// the same hosts; fleet rollback to every host flipped; etcd bytes per
// version; the memory of one agent process at rest.
//
//	go run ./bench/cmd/fwslot-bench-fleet                  # 10,50,100 hosts, 10k rules
//	go run ./bench/cmd/fwslot-bench-fleet -hosts 10 -rules 1000
//
// Hosts are network namespaces named fwsb-fleet-<pid>-*, each kept by an
// agent running inside this process (100 agent processes would not fit 2
// cores); etcd is embedded, on free 127.0.0.1 ports. Everything is removed
// at the end, on error and on Ctrl-C; the root namespace is never touched.
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
	"syscall"
	"time"

	"github.com/fwslot/fwslot/bench"
)

func main() {
	os.Exit(run())
}

func run() int {
	hostsFlag := flag.String("hosts", "10,50,100", "comma-separated fleet sizes")
	rules := flag.Int("rules", 10000, "rules of each generated version")
	stagers := flag.Int("stagers", 2*runtime.NumCPU(), "in-process agents compiling at once")
	fwslotBin := flag.String("fwslot", "", "fwslot binary for the agent-memory measurement (default: go build ./cmd/fwslot)")
	out := flag.String("o", "", "also write the report to this file")
	flag.Parse()
	sizes, err := bench.ParseSizes(*hostsFlag)
	if err != nil {
		fmt.Fprintf(os.Stderr, "fwslot-bench-fleet: fleet sizes: %v\n", err)
		return 2
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "fwslot-bench-fleet: needs root (network namespaces, nf_tables)")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir, err := os.MkdirTemp("", "fwslot-bench-fleet-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "fwslot-bench-fleet:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin := *fwslotBin
	if bin == "" {
		b, err := bench.BuildFwslot(dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fwslot-bench-fleet: build fwslot:", err)
			return 1
		}
		bin = b
	}
	cfg := &bench.FleetConfig{Rules: *rules, Stagers: *stagers, Fwslot: bin,
		Log: func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }}
	start := time.Now()
	var rs []*bench.FleetResult
	for _, n := range sizes {
		r, err := bench.MeasureFleet(ctx, cfg, n)
		if err != nil {
			fmt.Fprintf(os.Stderr, "fwslot-bench-fleet: %d hosts: %v\n", n, err)
			return 1
		}
		rs = append(rs, r)
	}
	cfg.Log("agent memory: one fwslot agent process")
	mem, err := bench.MeasureAgentMemory(ctx, cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "fwslot-bench-fleet: agent memory: %v\n", err)
		return 1
	}
	var w io.Writer = os.Stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fwslot-bench-fleet:", err)
			return 1
		}
		defer f.Close()
		w = io.MultiWriter(os.Stdout, f)
	}
	fmt.Fprintf(w, "## fwslot-bench-fleet results\n\n")
	fmt.Fprintf(w, "- command: `go run ./bench/cmd/fwslot-bench-fleet %s`\n", strings.Join(os.Args[1:], " "))
	fmt.Fprintf(w, "- date: %s; machine: nproc %d, load average at start %s, %s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), loadavg(), runtime.Version())
	fmt.Fprintf(w, "- ruleset: `gen.Ruleset(gen.Options{Rules: %d, Seed: 1|2, Family: %q})`; wall time %s\n\n", *rules, bench.Family, time.Since(start).Round(time.Second))
	bench.FleetTable(cfg, rs, mem).Fprint(w)
	return 0
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}
