// Command fwslot-bench measures fwslot against `nft -f` on the same
// generated rulesets and prints one Markdown table per measurement:
//
//	go run ./bench/cmd/fwslot-bench            # 1k, 10k, 50k, 100k rules, 5 runs
//	go run ./bench/cmd/fwslot-bench -quick     # 100, 1k, 10k rules, 5 runs (< 2 min)
//	go run ./bench/cmd/fwslot-bench -sizes 1000,10000 -runs 7 -cpuprofile load.pprof
//
// It needs root, nft and the Go toolchain (it builds cmd/fwslot, so that the
// measured command includes process start). Everything runs in network
// namespaces named fwsb-*, removed at the end, on error and on Ctrl-C.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
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
	sizesFlag := flag.String("sizes", "", "comma-separated rule counts (default 1000,10000,50000,100000)")
	runs := flag.Int("runs", 5, "recorded runs per row (at least 5); one warm-up run precedes them")
	breakdown := flag.Bool("breakdown", true, "also time each phase of an in-process load")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the in-process phased loads to this file")
	fwslotBin := flag.String("fwslot", "", "fwslot binary to measure (default: go build ./cmd/fwslot)")
	out := flag.String("o", "", "also write the report to this file")
	flag.Parse()

	if *runs < 5 {
		fmt.Fprintln(os.Stderr, "fwslot-bench: -runs must be at least 5")
		return 2
	}
	sizes := []int{1000, 10000, 50000, 100000}
	if *quick {
		sizes = []int{100, 1000, 10000}
	}
	if *sizesFlag != "" {
		sizes = nil
		for _, s := range strings.Split(*sizesFlag, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n <= 0 {
				fmt.Fprintf(os.Stderr, "fwslot-bench: bad size %q\n", s)
				return 2
			}
			sizes = append(sizes, n)
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
		bin = filepath.Join(dir, "fwslot")
		gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, err := os.Stat(gobin); err != nil {
			gobin = "go"
		}
		cmd := exec.Command(gobin, "build", "-o", bin, "github.com/fwslot/fwslot/cmd/fwslot")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "fwslot-bench: build fwslot:", err)
			return 1
		}
	}

	cfg := &bench.Config{Sizes: sizes, Runs: *runs, Fwslot: bin, Dir: dir, Log: os.Stderr}
	start := time.Now()
	var results []*bench.SizeResult
	for _, n := range sizes {
		fmt.Fprintf(os.Stderr, "measuring %d rules\n", n)
		r, err := bench.Measure(cfg, n)
		if err != nil {
			fmt.Fprintf(os.Stderr, "fwslot-bench: %d rules: %v\n", n, err)
			return 1
		}
		results = append(results, r)
	}
	var bds, sbds []*bench.BreakdownResult
	if *breakdown {
		if *cpuprofile != "" {
			f, err := os.Create(*cpuprofile)
			if err != nil {
				fmt.Fprintln(os.Stderr, "fwslot-bench:", err)
				return 1
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				fmt.Fprintln(os.Stderr, "fwslot-bench:", err)
				return 1
			}
		}
		for _, n := range sizes {
			r, err := bench.Breakdown(cfg, n)
			if err != nil {
				pprof.StopCPUProfile()
				fmt.Fprintf(os.Stderr, "fwslot-bench: breakdown %d rules: %v\n", n, err)
				return 1
			}
			bds = append(bds, r)
		}
		pprof.StopCPUProfile()
		for _, n := range sizes {
			r, err := bench.SwapBreakdown(cfg, n)
			if err != nil {
				fmt.Fprintf(os.Stderr, "fwslot-bench: swap breakdown %d rules: %v\n", n, err)
				return 1
			}
			sbds = append(sbds, r)
		}
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
	fmt.Fprintf(w, "- ruleset: `gen.Ruleset(gen.Options{Rules: N, Seed: s})` (anonymous sets and vmap, ≤ %d anonymous sets)\n", 400)
	fmt.Fprintf(w, "- %d recorded runs per cell after one warm-up; wall time %s\n\n", *runs, time.Since(start).Round(time.Second))
	tables := bench.Tables(results)
	if len(bds) > 0 {
		tables = append(tables, bench.BreakdownTable(bds), bench.SwapBreakdownTable(sbds))
	}
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
	return fmt.Sprintf("nproc %d%s, kernel %s, %s, %s", runtime.NumCPU(), mem, kernel, nft, runtime.Version())
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
