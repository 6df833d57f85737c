package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/session"
)

// Config chooses what a run measures.
type Config struct {
	Sizes []int
	// Runs is the number of recorded runs per row; one more unrecorded
	// warm-up run precedes them.
	Runs int
	// Fwslot is the path of the built fwslot binary.
	Fwslot string
	// Dir holds generated rulesets and history files.
	Dir string
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

func (c *Config) logf(format string, args ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, format+"\n", args...)
	}
}

// SizeResult holds the raw samples for one ruleset size; times are in
// seconds and memory in MB.
type SizeResult struct {
	Rules int

	SwapCmd, SwapLib, SwapNft []float64
	RollCmd, RollNft          []float64

	LoadCmd, LoadCmdRSS, LoadCmdCPU []float64
	LoadNft, LoadNftRSS, LoadNftCPU []float64

	Restage, RestageRSS, RestageNft []float64
}

var stagedRE = regexp.MustCompile(`staged version (\d+) in slot`)

// Measure runs every measurement for n rules in a fresh target namespace
// and a fresh comparison namespace, and removes both afterwards.
func Measure(cfg *Config, n int) (res *SizeResult, err error) {
	res = &SizeResult{Rules: n}
	sc, err := newScratch(cfg, fmt.Sprintf("n%d", n))
	if err != nil {
		return nil, err
	}
	defer keepFirst(&err, sc.remove)
	dir := sc.dir
	tgt, err := sc.create()
	if err != nil {
		return nil, err
	}
	cmp, err := sc.create()
	if err != nil {
		return nil, err
	}
	db := filepath.Join(dir, "fwslot.db")
	fw, fwRSS := cfg.fwslotOn(tgt, db)
	byVersion := map[uint64]Files{}
	load := func(f Files) (Proc, error) {
		p, err := fwRSS("load", f.Plain)
		if err != nil {
			return p, err
		}
		m := stagedRE.FindStringSubmatch(p.Stdout)
		if m == nil {
			return p, fmt.Errorf("fwslot load %s staged nothing: %s", f.Plain, p.Stdout)
		}
		v, _ := strconv.ParseUint(m[1], 10, 64)
		byVersion[v] = f
		return p, nil
	}

	A, err := WriteRuleset(dir, n, 1)
	if err != nil {
		return nil, err
	}
	B, err := WriteRuleset(dir, n, 2)
	if err != nil {
		return nil, err
	}
	cfg.logf("  %d rules: setup (load A, swap, load B; nft -f A)", n)
	if _, err := load(A); err != nil {
		return nil, err
	}
	if _, err := fw("swap"); err != nil {
		return nil, err
	}
	if _, err := load(B); err != nil {
		return nil, err
	}
	if _, err := Nft(cmp, A.Reload); err != nil {
		return nil, err
	}

	// flip runs `fwslot CMD`, which must flip the slots without restaging.
	flip := func(cmd string) func(int) (time.Duration, error) {
		return func(int) (time.Duration, error) {
			p, err := fw(cmd)
			if err != nil {
				return 0, err
			}
			if !strings.Contains(p.Stdout, "flipped") || strings.Contains(p.Stdout, "restaged") {
				return 0, fmt.Errorf("fwslot %s was not an instant flip: %s", cmd, p.Stdout)
			}
			return p.Wall, nil
		}
	}
	// reload is `nft -f` full reloads of even, odd, even, ... files.
	reload := func(even, odd Files) func(int) (time.Duration, error) {
		return func(i int) (time.Duration, error) {
			f := even
			if i%2 == 1 {
				f = odd
			}
			p, err := Nft(cmp, f.Reload)
			return p.Wall, err
		}
	}

	// 1. swap: each `fwslot swap` flips production and staging.
	cfg.logf("  %d rules: fwslot swap (command)", n)
	if res.SwapCmd, err = cfg.recorded(flip("swap")); err != nil {
		return nil, err
	}
	cfg.logf("  %d rules: Session.Swap (in-process)", n)
	if err := func() error {
		store, err := history.Open(db, history.Options{})
		if err != nil {
			return err
		}
		defer store.Close()
		t := &session.Target{NetNS: tgt, Store: store}
		res.SwapLib, err = cfg.recorded(func(int) (time.Duration, error) {
			start := time.Now()
			_, err := t.Swap(context.Background(), session.SwapOptions{})
			return time.Since(start), err
		})
		return err
	}(); err != nil {
		return nil, err
	}
	cfg.logf("  %d rules: nft -f full reload", n)
	if res.SwapNft, err = cfg.recorded(reload(B, A)); err != nil {
		return nil, err
	}

	// 2. rollback: flips back to the previous version each time.
	cfg.logf("  %d rules: fwslot rollback (flip) and nft -f of the previous file", n)
	if res.RollCmd, err = cfg.recorded(flip("rollback")); err != nil {
		return nil, err
	}
	if res.RollNft, err = cfg.recorded(reload(A, B)); err != nil {
		return nil, err
	}

	// 3. load: new content each run, so that nothing is "unchanged" and
	// every run compiles, clears the staging slot (it holds N rules),
	// writes N rules and records a new version.
	cfg.logf("  %d rules: fwslot load and nft -f into an empty namespace", n)
	for i := 0; i <= cfg.Runs; i++ {
		f, err := WriteRuleset(dir, n, int64(1000+i))
		if err != nil {
			return nil, err
		}
		p, err := load(f)
		if err != nil {
			return nil, err
		}
		ns, err := CreateNS()
		if err != nil {
			return nil, err
		}
		q, err := NftRSS(ns, f.Plain)
		keepFirst(&err, func() error { return DeleteNS(ns) })
		if err != nil {
			return nil, err
		}
		if i > 0 {
			res.LoadCmd = append(res.LoadCmd, p.Wall.Seconds())
			res.LoadCmdRSS = append(res.LoadCmdRSS, float64(p.MaxRSS)/1e6)
			res.LoadCmdCPU = append(res.LoadCmdCPU, (p.User + p.Sys).Seconds())
			res.LoadNft = append(res.LoadNft, q.Wall.Seconds())
			res.LoadNftRSS = append(res.LoadNftRSS, float64(q.MaxRSS)/1e6)
			res.LoadNftCPU = append(res.LoadNftCPU, (q.User + q.Sys).Seconds())
		}
	}

	// 4. restage: rollback --to a version that sits in neither slot.
	cfg.logf("  %d rules: fwslot rollback --to N (restage from history)", n)
	p, err := fw("--json", "status")
	if err != nil {
		return nil, err
	}
	var st struct {
		Production, Staging *struct{ Version uint64 }
	}
	if err := json.Unmarshal([]byte(p.Stdout), &st); err != nil {
		return nil, fmt.Errorf("fwslot status --json: %w", err)
	}
	var cands []uint64
	for v := uint64(1); v <= uint64(len(byVersion)); v++ {
		if _, ok := byVersion[v]; !ok {
			continue
		}
		if (st.Production != nil && st.Production.Version == v) || (st.Staging != nil && st.Staging.Version == v) {
			continue
		}
		cands = append(cands, v)
	}
	if len(cands) < cfg.Runs+1 {
		return nil, fmt.Errorf("only %d versions outside the slots, need %d", len(cands), cfg.Runs+1)
	}
	for i, v := range cands[:cfg.Runs+1] {
		p, err := fwRSS("rollback", "--to", strconv.FormatUint(v, 10))
		if err != nil {
			return nil, err
		}
		if !strings.Contains(p.Stdout, "restaged") {
			return nil, fmt.Errorf("fwslot rollback --to %d did not restage: %s", v, p.Stdout)
		}
		q, err := Nft(cmp, byVersion[v].Reload)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			res.Restage = append(res.Restage, p.Wall.Seconds())
			res.RestageRSS = append(res.RestageRSS, float64(p.MaxRSS)/1e6)
			res.RestageNft = append(res.RestageNft, q.Wall.Seconds())
		}
	}
	return res, nil
}

// Tables turns results into the printed tables, with target verdicts.
func Tables(rs []*SizeResult) []*Table {
	sw := &Table{Title: "swap: make the staged version live",
		Note:   "`fwslot swap` is the whole command (fork/exec, history open, netlink state read, one transaction, activation record); `Session.Swap` is the library call in-process; `nft -f` is a full reload (`flush ruleset` + the same file) into a namespace that holds the other version. Median (min–max); ratio = nft -f median / fwslot median.",
		Header: []string{"rules", "fwslot swap (cmd)", "Session.Swap (in-process)", "nft -f reload", "nft / cmd", "nft / in-process"}}
	rb := &Table{Title: "rollback: back to the previous version",
		Note:   "`fwslot rollback` with the previous version still in the other slot (instant flip) vs `nft -f` of the previous file (full reload).",
		Header: []string{"rules", "fwslot rollback (cmd)", "nft -f previous file", "nft / fwslot"}}
	ld := &Table{Title: "load: compile and stage a new version",
		Note:   "`fwslot load FILE` (new content each run; the staging slot it clears holds the same number of rules) vs `nft -f FILE` into an empty namespace. Peak RSS is ru_maxrss from wait4 of the command, which covers the nft child that fwslot runs to compile. CPU = user+sys of the process tree.",
		Header: []string{"rules", "fwslot load", "nft -f", "time fwslot / nft", "fwslot peak RSS", "nft peak RSS", "RSS fwslot / nft", "CPU fwslot", "CPU nft"}}
	rs2 := &Table{Title: "restage: rollback --to N (N in neither slot)",
		Note:   "`fwslot rollback --to N` replays the compiled form from history into the staging slot and flips in the same transaction; compared with `nft -f` full reload of the same version's file.",
		Header: []string{"rules", "fwslot rollback --to N", "peak RSS", "nft -f reload", "fwslot / nft"}}
	for _, r := range rs {
		n := strconv.Itoa(r.Rules)
		sc, sl, sn := Summarize(r.SwapCmd), Summarize(r.SwapLib), Summarize(r.SwapNft)
		sw.AddRow(n, FmtTime(sc), FmtTime(sl), FmtTime(sn), Ratio(sn.Median, sc.Median), Ratio(sn.Median, sl.Median))
		if r.Rules == 50000 {
			v := "MISSED"
			if sn.Median/sc.Median >= 20 {
				v = "MET"
			}
			sw.Verdicts = append(sw.Verdicts, fmt.Sprintf("target `fwslot swap` ≥ 20x faster than `nft -f` at 50k rules: %s (%s)", v, Ratio(sn.Median, sc.Median)))
		}
		rc, rn := Summarize(r.RollCmd), Summarize(r.RollNft)
		rb.AddRow(n, FmtTime(rc), FmtTime(rn), Ratio(rn.Median, rc.Median))
		lc, ln := Summarize(r.LoadCmd), Summarize(r.LoadNft)
		lcr, lnr := Summarize(r.LoadCmdRSS), Summarize(r.LoadNftRSS)
		ld.AddRow(n, FmtTime(lc), FmtTime(ln), Ratio(lc.Median, ln.Median), FmtMB(lcr), FmtMB(lnr), Ratio(lcr.Median, lnr.Median),
			FmtSeconds(Summarize(r.LoadCmdCPU).Median), FmtSeconds(Summarize(r.LoadNftCPU).Median))
		v := "MET"
		if lc.Median > 2*ln.Median {
			v = "MISSED"
		}
		ld.Verdicts = append(ld.Verdicts, fmt.Sprintf("%d rules: target load ≤ 2x nft -f: %s (%s)", r.Rules, v, Ratio(lc.Median, ln.Median)))
		xc, xn := Summarize(r.Restage), Summarize(r.RestageNft)
		rs2.AddRow(n, FmtTime(xc), FmtMB(Summarize(r.RestageRSS)), FmtTime(xn), Ratio(xc.Median, xn.Median))
	}
	return []*Table{sw, rb, ld, rs2}
}
