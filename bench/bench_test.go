package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/session"
)

// benchSizes returns the rule counts to benchmark: 1k and 10k, or the
// comma-separated list in FWSLOT_BENCH_SIZES (e.g. "1000,10000,100000").
func benchSizes(b *testing.B) []int {
	env := os.Getenv("FWSLOT_BENCH_SIZES")
	if env == "" {
		return []int{1000, 10000}
	}
	var out []int
	for _, s := range strings.Split(env, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			b.Fatalf("FWSLOT_BENCH_SIZES: bad size %q", s)
		}
		out = append(out, n)
	}
	return out
}

func requireKernel(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root: network namespaces and nf_tables")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		b.Skip("needs the nft binary")
	}
}

// target makes a managed target in a fresh namespace, with version 1 live
// and version 2 staged, n rules each.
func target(b *testing.B, n int) *session.Target {
	ns, err := CreateNS()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := DeleteNS(ns); err != nil {
			b.Error(err)
		}
	})
	dir := b.TempDir()
	store, err := history.Open(filepath.Join(dir, "fwslot.db"), history.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	t := &session.Target{NetNS: ns, Store: store}
	if err := Prepare(context.Background(), t, dir, n); err != nil {
		b.Fatal(err)
	}
	return t
}

// eachSize runs bench as a sub-benchmark per size of benchSizes, on a
// target made by target with that many rules; it skips without root
// and nft.
func eachSize(b *testing.B, bench func(b *testing.B, t *session.Target)) {
	requireKernel(b)
	for _, n := range benchSizes(b) {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) { bench(b, target(b, n)) })
	}
}

// BenchmarkSwap measures Session.Swap, the whole in-process swap: dial,
// read state, one transaction, activation record, socket close. Each
// iteration flips production and staging.
func BenchmarkSwap(b *testing.B) {
	eachSize(b, func(b *testing.B, t *session.Target) {
		ctx := context.Background()
		for b.Loop() {
			if _, err := t.Swap(ctx, session.SwapOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSwapPhases reports, per swap, the time of each phase of
// Session.Swap (ms/op columns), to tell fwslot's work from the kernel's.
func BenchmarkSwapPhases(b *testing.B) {
	eachSize(b, func(b *testing.B, t *session.Target) {
		ctx := context.Background()
		sum := map[string]float64{}
		for b.Loop() {
			ph, err := PhasedSwap(ctx, t)
			if err != nil {
				b.Fatal(err)
			}
			for k, v := range ph {
				sum[k] += v.Seconds() * 1e3
			}
		}
		units := map[string]string{
			session.PhaseOpen: "open-ms/op", session.PhaseDrift: "drift-ms/op",
			session.PhaseCommit: "commit-ms/op", session.PhaseRecord: "history-ms/op",
			session.PhaseClose: "close-ms/op",
		}
		for k, u := range units {
			b.ReportMetric(sum[k]/float64(b.N), u)
		}
	})
}
