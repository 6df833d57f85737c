package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/gen"
	"github.com/fwslot/fwslot/internal/sandbox"
	"github.com/fwslot/fwslot/session"
)

// DatapathResult holds packets per second through the target's input hook,
// one sample per run.
type DatapathResult struct {
	Rules         int
	Run           time.Duration
	Fwslot, Plain []float64 // packets/s through the ruleset, per run
	// CountedFw and CountedP are the truth counter after the ruleset over
	// the packets the senders got out, over all runs (1 = every packet
	// sent was evaluated by the whole input chain and accepted).
	CountedFw, CountedP float64
}

// sliceLen is the length of one slice of a datapath run.
const sliceLen = 250 * time.Millisecond

// minDatapathRuns is the number of runs per layout of a full (not quick)
// datapath measurement: the rate varies by several percent from run to
// run on a 2-core machine, more than the effect measured.
const minDatapathRuns = 10

// MeasureDatapath compares the forwarding cost of fwslot's slot layout
// (base chain → jump → slot chain) with the same ruleset loaded plainly by
// nft -f: two identical sandboxes, one each, flooded alternately (ABBA
// order, so drift hits both alike) for runs of d.
func MeasureDatapath(cfg *Config, n int, d time.Duration, senders int) (res *DatapathResult, err error) {
	res = &DatapathResult{Rules: n, Run: d}
	sc, err := newScratch(cfg, fmt.Sprintf("dp%d", n))
	if err != nil {
		return nil, err
	}
	defer keepFirst(&err, sc.remove)
	dir := sc.dir
	// The flood passes every rule of the input chain and is accepted by
	// the last one, then counted and dropped by the truth table.
	text := withRule(gen.Ruleset(gen.Options{Rules: n, Seed: 1, Family: Family}), "udp dport 9999 accept", false)
	file := filepath.Join(dir, "r.nft")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		return nil, err
	}
	truth := filepath.Join(dir, "truth.nft")
	if err := os.WriteFile(truth, []byte(truthTable), 0o600); err != nil {
		return nil, err
	}
	var sbs []*Sandbox
	defer func() {
		for _, sb := range sbs {
			keepFirst(&err, sb.Close)
		}
	}()
	for range 2 {
		sb, err := NewSandbox()
		if err != nil {
			return nil, err
		}
		sbs = append(sbs, sb)
		if _, err := Nft(sb.Target, truth); err != nil {
			return nil, err
		}
	}
	fwsb, plain := sbs[0], sbs[1]
	cfg.logf("  datapath at %d rules: fwslot load+swap in one sandbox, nft -f in the other", n)
	store, err := history.Open(filepath.Join(dir, "fwslot.db"), history.Options{})
	if err != nil {
		return nil, err
	}
	defer store.Close()
	t := &session.Target{NetNS: fwsb.Target, Store: store}
	if _, err := t.Load(context.Background(), file, session.LoadOptions{}); err != nil {
		return nil, err
	}
	if _, err := t.Swap(context.Background(), session.SwapOptions{}); err != nil {
		return nil, err
	}
	if _, err := Nft(plain.Target, file); err != nil {
		return nil, err
	}
	// One flooder per sandbox, made once. A run gives each layout d of
	// flood in slices of sliceLen, alternating A B B A A B ... so that
	// drift slower than a slice hits both alike. The rate is counted at the
	// senders (veth delivers in the sender's softirq, so what is sent has
	// been through the ruleset when the call returns); the truth counters
	// check that afterwards.
	floods := map[*Sandbox]*Flooder{}
	for _, sb := range sbs {
		fl, err := NewFlooder(sb.Client, sandbox.TargetIP, senders)
		if err != nil {
			return nil, err
		}
		defer fl.Close()
		floods[sb] = fl
	}
	slice := min(sliceLen, d)
	nslices := max(1, int(d/slice))
	runs := cfg.Runs
	if runs < minDatapathRuns && d >= 3*time.Second {
		runs = minDatapathRuns
	}
	var sentTotal = map[*Sandbox]int64{}
	c0 := map[*Sandbox]uint64{}
	for _, sb := range sbs {
		v, err := Counter(sb.Target, "ip", "fwsbtruth", "after")
		if err != nil {
			return nil, err
		}
		c0[sb] = v
	}
	cfg.logf("  datapath at %d rules: %d+1 runs of %v per layout, in %v slices, ABBA order", n, runs, d, slice)
	for i := 0; i <= runs; i++ {
		sent := map[*Sandbox]int64{}
		el := map[*Sandbox]time.Duration{}
		for j := 0; j < 2*nslices; j++ {
			sb := fwsb
			if (j+1)/2%2 == 1 {
				sb = plain
			}
			fl := floods[sb]
			start := time.Now()
			fl.Start()
			time.Sleep(slice)
			s := fl.Stop()
			el[sb] += time.Since(start)
			sent[sb] += s
			sentTotal[sb] += s
		}
		fr := float64(sent[fwsb]) / el[fwsb].Seconds()
		pr := float64(sent[plain]) / el[plain].Seconds()
		cfg.logf("    run %d: fwslot %.0fk packets/s, plain %.0fk packets/s (%+.1f%%)", i, fr/1e3, pr/1e3, 100*(fr/pr-1))
		if i == 0 {
			continue
		}
		res.Fwslot = append(res.Fwslot, fr)
		res.Plain = append(res.Plain, pr)
	}
	time.Sleep(200 * time.Millisecond)
	for _, sb := range sbs {
		v, err := Counter(sb.Target, "ip", "fwsbtruth", "after")
		if err != nil {
			return nil, err
		}
		c := float64(v - c0[sb])
		if sb == fwsb {
			res.CountedFw = c / float64(sentTotal[sb])
		} else {
			res.CountedP = c / float64(sentTotal[sb])
		}
	}
	return res, nil
}

// FmtRate renders a packets/s summary as "median (min–max)" in kpps.
func FmtRate(s Summary) string {
	return fmt.Sprintf("%.0fk (%.0f–%.0fk)", s.Median/1e3, s.Min/1e3, s.Max/1e3)
}

// DatapathTable renders the dispatch cost.
func DatapathTable(rs []*DatapathResult) *Table {
	t := &Table{Title: "datapath cost of the dispatch: fwslot's slot layout vs the same ruleset loaded with nft -f",
		Note: "Two identical sandboxes (client → veth → target); one target holds the N-rule ruleset staged and swapped by fwslot (base chain → jump → slot chain), the other the same file loaded with `nft -f`. " +
			"The ruleset's input chain ends with `udp dport 9999 accept`, so the UDP flood passes every rule of input; a separate table counts it after the ruleset and drops it. " +
			"One Go UDP sender per core (pinned) in the client namespace saturates both cores; veth delivers each packet in the sender's own softirq, so packets/s = packets sent / time, and the truth counter confirms every sent packet went through (last column). Each run gives each layout the stated time in 250 ms slices alternating A B B A, which cancels drift slower than a slice; paired difference = per-run fwslot / plain − 1.",
		Header: []string{"rules", "runs", "fwslot layout (packets/s)", "nft -f plain (packets/s)", "difference of medians", "paired difference, median (min–max)", "counted after ruleset / sent"}}
	for _, r := range rs {
		f, p := Summarize(r.Fwslot), Summarize(r.Plain)
		diff := f.Median/p.Median - 1
		// Each run of one layout is paired with the adjacent run of the
		// other (ABBA), which cancels slow drift of the machine.
		var pairs []float64
		for i := range min(len(r.Fwslot), len(r.Plain)) {
			pairs = append(pairs, r.Fwslot[i]/r.Plain[i]-1)
		}
		pd := Summarize(pairs)
		t.AddRow(strconv.Itoa(r.Rules), fmt.Sprintf("%d × %v each", len(r.Fwslot), r.Run), FmtRate(f), FmtRate(p), fmt.Sprintf("%+.1f%%", 100*diff),
			fmt.Sprintf("%+.1f%% (%+.1f%% to %+.1f%%)", 100*pd.Median, 100*pd.Min, 100*pd.Max),
			fmt.Sprintf("%.4f / %.4f", r.CountedFw, r.CountedP))
		v := "MET"
		if pd.Median < -0.03 {
			v = "MISSED"
		}
		t.Verdicts = append(t.Verdicts, fmt.Sprintf("%d rules: target fwslot layout within 3%% of plain nft (paired median): %s (%+.1f%%; difference of medians %+.1f%%; run-to-run spread of the plain layout %.0f%%)",
			r.Rules, v, 100*pd.Median, 100*diff, 100*(p.Max-p.Min)/p.Median))
	}
	return t
}
