package bench

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/fwslot/fwslot/internal/slots"
	"github.com/fwslot/fwslot/session"
)

// Phases of a load, in the order session.Session.Load runs them.
var Phases = slots.LoadPhases

// phases collects what a slots.Timer reports, safely from several
// goroutines (Load writes history while it builds the batch).
type phases struct {
	mu sync.Mutex
	d  map[string]time.Duration
}

func newPhases() *phases { return &phases{d: map[string]time.Duration{}} }

func (p *phases) timer() slots.Timer {
	return func(phase string, d time.Duration) {
		p.mu.Lock()
		p.d[phase] += d
		p.mu.Unlock()
	}
}

// PhasedLoad runs session.Session.Load on file and returns the duration of
// each of its phases.
func PhasedLoad(ctx context.Context, t *session.Target, file string) (map[string]time.Duration, error) {
	p := newPhases()
	if _, err := t.Load(ctx, file, session.LoadOptions{Timer: p.timer()}); err != nil {
		return nil, err
	}
	return p.d, nil
}

// BreakdownResult holds per-phase samples for one size.
type BreakdownResult struct {
	Rules    int
	Phase    map[string][]float64
	Total    []float64
	Messages int
}

// Breakdown loads new content cfg.Runs (+1 warm-up) times in-process into a
// managed target whose staging slot holds n rules, timing each phase.
func Breakdown(cfg *Config, n int) (*BreakdownResult, error) {
	write := func(dir string, i int) (string, error) {
		f, err := WriteRuleset(dir, n, int64(3000+i))
		if err != nil {
			return "", err
		}
		return f.Plain, nil
	}
	return phasedRuns(cfg, n, "bd", "load", Phases, write, PhasedLoad)
}

// phasedRuns times op cfg.Runs (+1 warm-up) times on a prepared target
// with n rules, one sample per phase and run; prepare, when set, makes
// op's argument outside the timed part.
func phasedRuns(cfg *Config, n int, prefix, what string, phases []string,
	prepare func(dir string, i int) (string, error),
	op func(ctx context.Context, t *session.Target, arg string) (map[string]time.Duration, error)) (res *BreakdownResult, err error) {
	res = &BreakdownResult{Rules: n, Phase: map[string][]float64{}}
	sc, err := newScratch(cfg, fmt.Sprintf("%s%d", prefix, n))
	if err != nil {
		return nil, err
	}
	defer keepFirst(&err, sc.remove)
	dir := sc.dir
	tgt, err := sc.create()
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	t, done, err := preparedTarget(ctx, dir, tgt, n)
	if err != nil {
		return nil, err
	}
	defer done()
	cfg.logf("  %d rules: phased in-process %s", n, what)
	for i := 0; i <= cfg.Runs; i++ {
		var arg string
		if prepare != nil {
			if arg, err = prepare(dir, i); err != nil {
				return nil, err
			}
		}
		start := time.Now()
		ph, err := op(ctx, t, arg)
		if err != nil {
			return nil, err
		}
		total := time.Since(start)
		if i == 0 {
			continue
		}
		res.Total = append(res.Total, total.Seconds())
		for _, p := range phases {
			res.Phase[p] = append(res.Phase[p], ph[p].Seconds())
		}
		res.Messages = int(ph[slots.PhaseBatchSize])
	}
	return res, nil
}

// BreakdownTable renders the load phase medians, one column per size.
func BreakdownTable(rs []*BreakdownResult) *Table {
	t := &Table{Title: "load breakdown: where `fwslot load` spends its time (in-process, median per phase)",
		Note: "Each phase of session.Session.Load timed separately (reported by Load's own timer; encode and history write run alongside building the batch, so shares of those overlap); new content each run, staging slot holding the same number of rules. Share = phase median / sum of phase medians."}
	phaseTable(t, rs, Phases)
	row := []string{"batch messages"}
	for _, r := range rs {
		row = append(row, fmt.Sprintf("%d", r.Messages), "")
	}
	t.AddRow(row...)
	return t
}

// SwapBreakdownTable renders the swap phase medians, one column per size.
func SwapBreakdownTable(rs []*BreakdownResult) *Table {
	t := &Table{Title: "swap breakdown: where `Session.Swap` spends its time (in-process, median per phase)",
		Note: "Each phase of Session.Swap timed separately (reported by Session.Swap's own timer). Share = phase median / sum of phase medians."}
	phaseTable(t, rs, SwapPhases)
	return t
}

func phaseTable(t *Table, rs []*BreakdownResult, phases []string) {
	t.Header = []string{"phase"}
	for _, r := range rs {
		t.Header = append(t.Header, strconv.Itoa(r.Rules)+" rules", "share")
	}
	sums := make([]float64, len(rs))
	for i, r := range rs {
		for _, p := range phases {
			sums[i] += Summarize(r.Phase[p]).Median
		}
	}
	for _, p := range phases {
		row := []string{p}
		for i, r := range rs {
			m := Summarize(r.Phase[p]).Median
			row = append(row, FmtSeconds(m), fmt.Sprintf("%.0f%%", 100*m/sums[i]))
		}
		t.AddRow(row...)
	}
	row := []string{"**total (wall)**"}
	for _, r := range rs {
		row = append(row, FmtTime(Summarize(r.Total)), "")
	}
	t.AddRow(row...)
}
