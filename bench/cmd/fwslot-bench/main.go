// Command fwslot-bench measures fwslot against `nft -f`, `iptables-restore`
// (nft and legacy backends) and `ipset` on the same generated rulesets and
// prints one Markdown table per measurement:
//
//	go run ./bench/cmd/fwslot-bench            # 100, 1k, 10k, 100k rules, 1M-element set, 5 runs
//	go run ./bench/cmd/fwslot-bench -quick     # 100, 1k, 10k rules, 100k-element set (< 2 min)
//	go run ./bench/cmd/fwslot-bench -sizes 1000,10000 -runs 7 -only tools,flood
//
// It needs root, nft, iptables, ipset and the Go toolchain (it builds
// cmd/fwslot, so that the measured command includes process start).
// Everything runs in network namespaces named fwsb-*, removed at the end,
// on error and on Ctrl-C; the root namespace is never touched.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fwslot/fwslot/bench"
)

func main() {
	os.Exit(run())
}

func run() int {
	quick := flag.Bool("quick", false, "sizes 100,1000,10000 (unless -sizes is given)")
	sizesFlag := flag.String("sizes", "", "comma-separated rule counts (default 100,1000,10000,100000)")
	runs := flag.Int("runs", 5, "recorded runs per row (at least 5); one warm-up run precedes them")
	breakdown := flag.Bool("breakdown", true, "also time each phase of an in-process load and swap (default off with -quick)")
	only := flag.String("only", "", "comma-separated sections to run (default all): core,tools,bigset,scale,flood,datapath,probes,breakdown")
	scaleSet := flag.Int("scale-set", 0, "elements of the scale section's set (default 1000000, 20000 with -quick)")
	scaleRules := flag.Int("scale-rules", 0, "rules of the scale section's ruleset (default 100000, 2000 with -quick)")
	bigset := flag.Int("bigset", 0, "elements of the large set (default 1000000, 100000 with -quick)")
	floodFor := flag.Duration("flood", 0, "how long to swap under the flood, per size (default 10s, 3s with -quick)")
	dpFor := flag.Duration("datapath", 0, "length of one datapath run (default 5s, 1.5s with -quick)")
	senders := flag.Int("senders", runtime.NumCPU(), "UDP sender sockets for the flood and datapath runs (one goroutine each, pinned to CPU i mod nproc)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the in-process phased loads to this file")
	fwslotBin := flag.String("fwslot", "", "fwslot binary to measure (default: go build ./cmd/fwslot)")
	out := flag.String("o", "", "also write the report to this file")
	flag.Parse()

	if *runs < 5 {
		fmt.Fprintln(os.Stderr, "fwslot-bench: -runs must be at least 5")
		return 2
	}
	sizes := []int{100, 1000, 10000, 100000}
	netSizes := []int{1000, 10000} // flood and datapath
	if *bigset == 0 {
		*bigset = 1000000
	}
	if *floodFor == 0 {
		*floodFor = 10 * time.Second
	}
	if *scaleSet == 0 {
		*scaleSet = 1000000
	}
	if *scaleRules == 0 {
		*scaleRules = 100000
	}
	if *dpFor == 0 {
		*dpFor = 5 * time.Second
	}
	explicit := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	if *quick {
		sizes = []int{100, 1000, 10000}
		netSizes = []int{1000}
		if !explicit["bigset"] {
			*bigset = 100000
		}
		if !explicit["scale-set"] {
			*scaleSet = 20000
		}
		if !explicit["scale-rules"] {
			*scaleRules = 2000
		}
		if !explicit["flood"] {
			*floodFor = 3 * time.Second
		}
		if !explicit["datapath"] {
			*dpFor = 1500 * time.Millisecond
		}
		if !explicit["breakdown"] {
			*breakdown = false
		}
	}
	sections := map[string]bool{}
	for _, s := range []string{"core", "tools", "bigset", "scale", "flood", "datapath", "probes", "breakdown"} {
		sections[s] = *only == ""
	}
	if *only != "" {
		for _, s := range strings.Split(*only, ",") {
			s = strings.TrimSpace(s)
			if _, ok := sections[s]; !ok {
				fmt.Fprintf(os.Stderr, "fwslot-bench: unknown section %q\n", s)
				return 2
			}
			sections[s] = true
		}
		if sections["tools"] {
			sections["core"] = true // the tools tables take fwslot and nft from core
		}
	}
	if !*breakdown {
		sections["breakdown"] = false
	}
	if *sizesFlag != "" {
		var err error
		if sizes, err = bench.ParseSizes(*sizesFlag); err != nil {
			fmt.Fprintf(os.Stderr, "fwslot-bench: -sizes: %v\n", err)
			return 2
		}
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
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		fmt.Fprintln(os.Stderr, "fwslot-bench: interrupted; removing namespaces")
		bench.DeleteAllNS()
		os.RemoveAll(dir)
		os.Exit(130)
	}()

	bin := *fwslotBin
	if bin == "" {
		b, err := bench.BuildFwslot(dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fwslot-bench: build fwslot:", err)
			return 1
		}
		bin = b
	}

	cfg := &bench.Config{Sizes: sizes, Runs: *runs, Fwslot: bin, Dir: dir, Log: os.Stderr}
	start := time.Now()
	var tables []*bench.Table
	fail := func(what string, err error) int {
		fmt.Fprintf(os.Stderr, "fwslot-bench: %s: %v\n", what, err)
		return 1
	}
	var results []*bench.SizeResult
	if sections["core"] {
		for _, n := range sizes {
			fmt.Fprintf(os.Stderr, "measuring %d rules\n", n)
			r, err := bench.Measure(cfg, n)
			if err != nil {
				return fail(fmt.Sprintf("%d rules", n), err)
			}
			results = append(results, r)
		}
	}
	if sections["tools"] {
		legacy, why := bench.LegacyAvailable()
		fmt.Fprintf(os.Stderr, "iptables-restore, nft and legacy backends (legacy available: %v %s)\n", legacy, why)
		var ipts []*bench.IptResult
		for _, n := range sizes {
			r, err := bench.MeasureIptables(cfg, n, legacy)
			if err != nil {
				return fail(fmt.Sprintf("iptables %d rules", n), err)
			}
			ipts = append(ipts, r)
		}
		tables = append(tables, bench.ToolTables(results, ipts, legacy, why)...)
	}
	if sections["core"] {
		for _, t := range bench.Tables(results) {
			if sections["tools"] && strings.HasPrefix(t.Title, "rollback:") {
				continue // the tools table holds the same columns and more
			}
			tables = append(tables, t)
		}
	}
	if sections["bigset"] {
		fmt.Fprintf(os.Stderr, "large set: %d elements\n", *bigset)
		r, err := bench.MeasureBigSet(cfg, *bigset)
		if err != nil {
			return fail("large set", err)
		}
		tables = append(tables, bench.BigSetTable(r))
	}
	if sections["scale"] {
		fmt.Fprintf(os.Stderr, "scale: %d-element set, %d rules\n", *scaleSet, *scaleRules)
		r, err := bench.MeasureScale(cfg, *scaleSet, *scaleRules)
		if err != nil {
			return fail("scale", err)
		}
		tables = append(tables, bench.ScaleTable(r))
	}
	if sections["flood"] {
		var frs []*bench.FloodResult
		for _, n := range netSizes {
			fmt.Fprintf(os.Stderr, "packets during swaps: %d rules\n", n)
			r, err := bench.MeasureFlood(cfg, n, *floodFor, *senders)
			if err != nil {
				return fail("flood", err)
			}
			frs = append(frs, r)
		}
		tables = append(tables, bench.FloodTable(frs))
	}
	if sections["datapath"] {
		var drs []*bench.DatapathResult
		for _, n := range netSizes {
			fmt.Fprintf(os.Stderr, "datapath: %d rules\n", n)
			r, err := bench.MeasureDatapath(cfg, n, *dpFor, *senders)
			if err != nil {
				return fail("datapath", err)
			}
			drs = append(drs, r)
		}
		tables = append(tables, bench.DatapathTable(drs))
	}
	if sections["probes"] {
		var prs []*bench.ProbeResult
		for _, n := range []int{1000, 10000} {
			fmt.Fprintf(os.Stderr, "probes: %d rules\n", n)
			r, err := bench.MeasureProbes(cfg, n, 1000)
			if err != nil {
				return fail("probes", err)
			}
			prs = append(prs, r)
		}
		tables = append(tables, bench.ProbeTable(prs))
	}
	if sections["breakdown"] {
		var bds, sbds []*bench.BreakdownResult
		if *cpuprofile != "" {
			f, err := os.Create(*cpuprofile)
			if err != nil {
				return fail("cpuprofile", err)
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				return fail("cpuprofile", err)
			}
		}
		for _, n := range sizes {
			r, err := bench.Breakdown(cfg, n)
			if err != nil {
				pprof.StopCPUProfile()
				return fail(fmt.Sprintf("breakdown %d rules", n), err)
			}
			bds = append(bds, r)
		}
		pprof.StopCPUProfile()
		for _, n := range sizes {
			r, err := bench.SwapBreakdown(cfg, n)
			if err != nil {
				return fail(fmt.Sprintf("swap breakdown %d rules", n), err)
			}
			sbds = append(sbds, r)
		}
		tables = append(tables, bench.BreakdownTable(bds), bench.SwapBreakdownTable(sbds))
	}

	var w io.Writer = os.Stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fwslot-bench:", err)
			return 1
		}
		defer f.Close()
		w = io.MultiWriter(os.Stdout, f)
	}
	fmt.Fprintf(w, "## fwslot-bench results\n\n")
	fmt.Fprintf(w, "- command: `go run ./bench/cmd/fwslot-bench %s`\n", strings.Join(os.Args[1:], " "))
	fmt.Fprintf(w, "- machine: %s\n", machine())
	fmt.Fprintf(w, "- ruleset: `gen.Ruleset(gen.Options{Rules: N, Seed: s, Family: %q})` (anonymous sets and vmap, ≤ %d anonymous sets); iptables: `gen.IptablesSave` of the same options\n", bench.Family, 400)
	fmt.Fprintf(w, "- %d recorded runs per cell after one warm-up; wall time %s\n\n", *runs, time.Since(start).Round(time.Second))
	for _, t := range tables {
		t.Fprint(w)
	}
	return 0
}

func machine() string {
	kernel := "?"
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		kernel = charsToString(u.Release[:])
	}
	nft := "?"
	if b, err := exec.Command("nft", "--version").Output(); err == nil {
		nft = strings.TrimSpace(string(b))
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 {
			if kb, err := strconv.Atoi(f[1]); err == nil {
				mem = fmt.Sprintf(", %.0f GiB RAM", float64(kb)/(1<<20))
			}
		}
	}
	ipt := "?"
	if b, err := exec.Command("iptables", "--version").Output(); err == nil {
		ipt = strings.TrimSpace(string(b))
	}
	ips := "ipset ?"
	if b, err := exec.Command("ipset", "--version").Output(); err == nil {
		ips = strings.TrimSpace(strings.SplitN(string(b), ",", 2)[0])
	}
	return fmt.Sprintf("nproc %d%s, kernel %s, %s, %s, %s, %s", runtime.NumCPU(), mem, kernel, nft, ipt, ips, runtime.Version())
}

func charsToString(ca []int8) string {
	var b strings.Builder
	for _, c := range ca {
		if c == 0 {
			break
		}
		b.WriteByte(byte(c))
	}
	return b.String()
}
