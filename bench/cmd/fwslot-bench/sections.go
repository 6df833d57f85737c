package main

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"strings"

	"github.com/fwslot/fwslot/bench"
)

// perSize measures each size in turn, logging what it measures, and
// stops at the first failure, naming the size.
func perSize[R any](sizes []int, what string, measure func(n int) (R, error)) ([]R, error) {
	rs := make([]R, 0, len(sizes))
	for _, n := range sizes {
		fmt.Fprintf(os.Stderr, "%s: %d\n", what, n)
		r, err := measure(n)
		if err != nil {
			return nil, fmt.Errorf("%s %d: %w", what, n, err)
		}
		rs = append(rs, r)
	}
	return rs, nil
}

// tableOf runs measure and renders its result with table.
func tableOf[R any](measure func() (R, error), table func(R) *bench.Table) func() ([]*bench.Table, error) {
	return func() ([]*bench.Table, error) {
		r, err := measure()
		if err != nil {
			return nil, err
		}
		return []*bench.Table{table(r)}, nil
	}
}

// runSections runs the chosen sections in order and returns their tables.
func runSections(ctx context.Context, cfg *bench.Config, o *options, guard *interruptGuard) ([]*bench.Table, error) {
	var tables []*bench.Table
	var results []*bench.SizeResult
	var err error
	if o.sections["core"] {
		results, err = perSize(o.sizes, "rules", func(n int) (*bench.SizeResult, error) { return bench.Measure(cfg, n) })
		if err != nil {
			return nil, err
		}
	}
	if o.sections["tools"] {
		legacy, why := bench.LegacyAvailable()
		fmt.Fprintf(os.Stderr, "iptables-restore, nft and legacy backends (legacy available: %v %s)\n", legacy, why)
		ipts, err := perSize(o.sizes, "iptables rules", func(n int) (*bench.IptResult, error) { return bench.MeasureIptables(cfg, n, legacy) })
		if err != nil {
			return nil, err
		}
		tables = append(tables, bench.ToolTables(results, ipts, legacy, why)...)
	}
	if o.sections["core"] {
		for _, t := range bench.Tables(results) {
			if o.sections["tools"] && strings.HasPrefix(t.Title, "rollback:") {
				continue // the tools table holds the same columns and more
			}
			tables = append(tables, t)
		}
	}
	steps := []struct {
		name, what string
		run        func() ([]*bench.Table, error)
	}{
		{"bigset", fmt.Sprintf("large set: %d elements", o.bigset), tableOf(
			func() (*bench.BigSetResult, error) { return bench.MeasureBigSet(cfg, o.bigset) }, bench.BigSetTable)},
		{"scale", fmt.Sprintf("scale: %d-element set, %d rules", o.scaleSet, o.scaleRules), tableOf(
			func() (*bench.ScaleResult, error) { return bench.MeasureScale(cfg, o.scaleSet, o.scaleRules) }, bench.ScaleTable)},
		{"flood", "packets during swaps", tableOf(func() ([]*bench.FloodResult, error) {
			return perSize(o.netSizes, "flood rules", func(n int) (*bench.FloodResult, error) { return bench.MeasureFlood(cfg, n, o.floodFor, o.senders) })
		}, bench.FloodTable)},
		{"datapath", "datapath cost of the dispatch", tableOf(func() ([]*bench.DatapathResult, error) {
			return perSize(o.netSizes, "datapath rules", func(n int) (*bench.DatapathResult, error) { return bench.MeasureDatapath(cfg, n, o.dpFor, o.senders) })
		}, bench.DatapathTable)},
		{"probes", "probes", tableOf(func() ([]*bench.ProbeResult, error) {
			return perSize([]int{1000, 10000}, "probes rules", func(n int) (*bench.ProbeResult, error) { return bench.MeasureProbes(cfg, n, 1000) })
		}, bench.ProbeTable)},
		{"breakdown", "phases of in-process loads and swaps", func() ([]*bench.Table, error) { return breakdown(cfg, o) }},
		{"fleet", fmt.Sprintf("fleet: %v hosts, %d rules", o.hosts, o.fleetRules), func() ([]*bench.Table, error) { return fleet(ctx, cfg, o, guard) }},
	}
	for _, s := range steps {
		if !o.sections[s.name] {
			continue
		}
		fmt.Fprintln(os.Stderr, s.what)
		ts, err := s.run()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		tables = append(tables, ts...)
	}
	return tables, nil
}

// breakdown times the phases of in-process loads and swaps, under the CPU
// profile when -cpuprofile asks for one.
func breakdown(cfg *bench.Config, o *options) ([]*bench.Table, error) {
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			return nil, fmt.Errorf("cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, fmt.Errorf("cpuprofile: %w", err)
		}
	}
	bds, err := perSize(o.sizes, "breakdown rules", func(n int) (*bench.BreakdownResult, error) { return bench.Breakdown(cfg, n) })
	pprof.StopCPUProfile()
	if err != nil {
		return nil, err
	}
	sbds, err := perSize(o.sizes, "swap breakdown rules", func(n int) (*bench.BreakdownResult, error) { return bench.SwapBreakdown(cfg, n) })
	if err != nil {
		return nil, err
	}
	return []*bench.Table{bench.BreakdownTable(bds), bench.SwapBreakdownTable(sbds)}, nil
}

// fleet pushes and rolls back fleets of each size, then measures one
// agent process's memory.
func fleet(ctx context.Context, cfg *bench.Config, o *options, guard *interruptGuard) ([]*bench.Table, error) {
	guard.enterFleet()
	fc := &bench.FleetConfig{Rules: o.fleetRules, Stagers: o.stagers, Fwslot: cfg.Fwslot,
		Log: func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }}
	rs, err := perSize(o.hosts, "fleet hosts", func(n int) (*bench.FleetResult, error) { return bench.MeasureFleet(ctx, fc, n) })
	if err != nil {
		return nil, err
	}
	fc.Log("agent memory: one fwslot agent process")
	mem, err := bench.MeasureAgentMemory(ctx, fc)
	if err != nil {
		return nil, fmt.Errorf("agent memory: %w", err)
	}
	return []*bench.Table{bench.FleetTable(fc, rs, mem)}, nil
}
