package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fwslot/fwslot/internal/nsutil"
)

// ScaleLimit bounds one `fwslot diff` of the scale section, so the
// benchmark always ends; a run that hits it is reported as "> limit".
const ScaleLimit = 120 * time.Second

// ScaleRuns is how many recorded runs each timed row of the scale section
// has (after one warm-up for nft): a 1M-element load takes seconds and
// adds a version of tens of MB to history.
const ScaleRuns = 3

// Cmd is one timed command of the scale section.
type Cmd struct {
	Wall    float64 // seconds
	RSS     float64 // MB
	Timeout bool    // killed at the limit
}

// ScaleResult holds the rows of the scale section: fwslot and nft (or
// diff -u) side by side, whole commands, one run.
type ScaleResult struct {
	Elements, Rules   int
	SetMB, RulesMB    float64 // source sizes
	SetLoad, SetNft   []Cmd   // stage a new 1M-element version / nft -f reload
	RuleLoad, RuleNft []Cmd   // same, 100k rules
	// History file sizes (MB).
	SetDBv1, SetDBGrowth1pct    float64
	RuleDBv1, RuleDBGrowth1pct  float64
	RuleDBPerVersion            float64 // (growth over the fresh versions) / their number
	SetRefresh, RuleRefresh     Cmd     // stage 1% of the set changed / 10 rules changed
	SetHistory, RuleHistory     Cmd     // fwslot history with 2 versions
	SetDiff, RuleDiff           Cmd     // fwslot diff 1 2
	SetDiffFiles, RuleDiffFiles Cmd     // diff -u of the two files
}

// runLimited runs name in ns under GNU time (peak RSS) and kills its whole
// process group at limit.
func runLimited(ns string, limit time.Duration, name string, args ...string) (Cmd, string, error) {
	f, err := os.CreateTemp("", "fwsb-rss-*")
	if err != nil {
		return Cmd{}, "", err
	}
	f.Close()
	defer os.Remove(f.Name())
	var c Cmd
	var out bytes.Buffer
	err = nsutil.Do(ns, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), limit)
		defer cancel()
		cmd := exec.CommandContext(ctx, timeBin, append([]string{"-f", "%M", "-o", f.Name(), name}, args...)...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		var errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		start := time.Now()
		err := cmd.Run()
		c.Wall = time.Since(start).Seconds()
		if ctx.Err() != nil {
			c.Timeout = true
			return nil
		}
		if err != nil {
			// diff exits 1 when the files differ: that is its answer.
			var ee *exec.ExitError
			if name == "diff" && errors.As(err, &ee) && ee.ExitCode() == 1 {
				return nil
			}
			e := errb.String()
			if len(e) > 2000 {
				e = e[:2000] + "..."
			}
			return fmt.Errorf("%s %v: %v: %s", name, args, err, e)
		}
		return nil
	})
	if err != nil || c.Timeout {
		return c, out.String(), err
	}
	b, err := os.ReadFile(f.Name())
	if err != nil {
		return c, out.String(), err
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	kb, err := strconv.ParseInt(strings.TrimSpace(lines[len(lines)-1]), 10, 64)
	if err != nil {
		return c, out.String(), fmt.Errorf("%s -f %%M: %q: %w", timeBin, b, err)
	}
	c.RSS = float64(kb) / 1024
	return c, out.String(), nil
}

// changeSet writes the set file of seed with every 100th element replaced
// by an address outside the set: 1% of the elements changed.
func changeSet(dir string, n int, seed int64) (string, error) {
	p := filepath.Join(dir, fmt.Sprintf("big%d-s%d-1pct.nft", n, seed))
	var b strings.Builder
	b.Grow(n*16 + 512)
	fmt.Fprintf(&b, "# %d-element set, seed %d, 1%% changed\ntable ip filter {\n\tset big {\n\t\ttype ipv4_addr\n\t\telements = {", n, seed)
	for i := range n {
		if i%16 == 0 {
			b.WriteString("\n\t\t\t")
		}
		if i%100 == 0 {
			fmt.Fprintf(&b, "172.%d.%d.%d", 16+i>>16&15, i>>8&255, i&255)
		} else {
			b.WriteString(bigAddr(seed, i))
		}
		if i < n-1 {
			b.WriteString(", ")
		}
	}
	b.WriteString("\n\t\t}\n\t}\n\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n\t\tip saddr @big counter drop\n\t}\n}\n")
	return p, os.WriteFile(p, []byte(b.String()), 0o600)
}

// changeRules writes a copy of the ruleset file with count of its rules
// that end in accept given a counter.
func changeRules(src, dst string, count int) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	lines := strings.Split(string(b), "\n")
	var cand []int
	for i, l := range lines {
		if strings.HasPrefix(l, "\t\t") && strings.HasSuffix(l, " accept") && !strings.Contains(l, "policy") && !strings.Contains(l, "counter") {
			cand = append(cand, i)
		}
	}
	if len(cand) < count {
		return fmt.Errorf("%s has %d rules to change, want %d", src, len(cand), count)
	}
	step := len(cand) / count
	for k := range count {
		i := cand[k*step]
		lines[i] = strings.TrimSuffix(lines[i], " accept") + " counter accept"
	}
	return os.WriteFile(dst, []byte(strings.Join(lines, "\n")), 0o600)
}

// MeasureScale runs the scale section: a set of n elements and a ruleset
// of rules rules, each staged by fwslot (whole commands, in a namespace it
// makes) and by nft -f, history sizes, a refresh with 1% of the set or 10
// rules changed, `fwslot history` and `fwslot diff 1 2` (bounded by
// ScaleLimit) against `diff -u` of the files.
func MeasureScale(cfg *Config, n, rules int) (res *ScaleResult, err error) {
	res = &ScaleResult{Elements: n, Rules: rules}
	sc, err := newScratch(cfg, "scale")
	if err != nil {
		return nil, err
	}
	defer keepFirst(&err, sc.remove)
	dir := sc.dir
	mk := sc.create
	// The set: v1, v2 = 1% changed, then new versions.
	var setFiles [][3]string
	for s := range ScaleRuns + 1 {
		a, b, _, err := writeBigSet(dir, n, int64(s+1), "unused")
		if err != nil {
			return nil, err
		}
		setFiles = append(setFiles, [3]string{a, b})
	}
	set1pct, err := changeSet(dir, n, 1)
	if err != nil {
		return nil, err
	}
	res.SetMB = fileMB(setFiles[0][0])
	if res.SetNft, res.SetDiffFiles, err = res.compare(cfg, mk, fmt.Sprintf("%d-element set", n), filepath.Join(dir, "set.db"), setFiles, set1pct, "", true); err != nil {
		return nil, err
	}

	// The rules: v1, v2 = 1% changed, v3 = 10 rules changed from v2,
	// then new versions.
	var ruleFiles [][3]string
	for s := range ScaleRuns + 1 {
		f, err := WriteRuleset(dir, rules, int64(9000+s))
		if err != nil {
			return nil, err
		}
		ruleFiles = append(ruleFiles, [3]string{f.Plain, f.Reload})
	}
	res.RulesMB = fileMB(ruleFiles[0][0])
	rule1pct := filepath.Join(dir, "rules-1pct.nft")
	if err := changeRules(ruleFiles[0][0], rule1pct, rules/100); err != nil {
		return nil, err
	}
	rule10 := filepath.Join(dir, "rules-10.nft")
	if err := changeRules(rule1pct, rule10, 10); err != nil {
		return nil, err
	}
	if res.RuleNft, res.RuleDiffFiles, err = res.compare(cfg, mk, fmt.Sprintf("%d rules", rules), filepath.Join(dir, "rules.db"), ruleFiles, rule1pct, rule10, false); err != nil {
		return nil, err
	}
	return res, nil
}

// compare measures one input both ways: fwslot's side (fwslotSide with
// files[0] as v1 and the rest as fresh versions), then `nft -f` of the
// same files and `diff -u` of v1 and v2.
func (r *ScaleResult) compare(cfg *Config, mk func() (string, error), what, db string, files [][3]string, v2, v3 string, isSet bool) (nft []Cmd, diff Cmd, err error) {
	cfg.logf("  scale: %s, fwslot", what)
	if err := r.fwslotSide(cfg, mk, db, files[0][0], v2, v3, files[1:], isSet); err != nil {
		return nil, Cmd{}, err
	}
	cfg.logf("  scale: %s, nft -f and diff -u", what)
	if nft, err = nftSide(mk, files); err != nil {
		return nil, Cmd{}, err
	}
	diff, _, err = runLimited("", ScaleLimit, "diff", "-u", files[0][0], v2)
	return nft, diff, err
}

// fwslotSide loads v1, then v2 (1% changed), runs history and diff 1 2,
// then (rules) v3 with 10 rules changed, then each of fresh as a new
// version; every load is followed by a swap.
func (r *ScaleResult) fwslotSide(cfg *Config, mk func() (string, error), db, v1, v2, v3 string, fresh [][3]string, isSet bool) error {
	ns, err := mk()
	if err != nil {
		return err
	}
	fw := func(limit time.Duration, args ...string) (Cmd, error) {
		c, _, err := runLimited("", limit, cfg.Fwslot, append([]string{"--netns", ns, "--db", db}, args...)...)
		return c, err
	}
	load := func(file string) (Cmd, error) {
		c, err := fw(15*time.Minute, "load", file)
		if err != nil {
			return c, err
		}
		if _, err := fw(15*time.Minute, "swap"); err != nil {
			return c, err
		}
		return c, nil
	}
	if _, err := load(v1); err != nil {
		return err
	}
	dbV1 := fileMB(db)
	refresh, err := load(v2)
	if err != nil {
		return err
	}
	growth := fileMB(db) - dbV1
	hist, err := fw(ScaleLimit, "history")
	if err != nil {
		return err
	}
	diff, err := fw(ScaleLimit, "diff", "1", "2")
	if err != nil {
		return err
	}
	if v3 != "" {
		if refresh, err = load(v3); err != nil {
			return err
		}
	}
	var loads []Cmd
	before := fileMB(db)
	for _, f := range fresh {
		c, err := load(f[0])
		if err != nil {
			return err
		}
		loads = append(loads, c)
	}
	// bbolt grows its file in steps: one version's growth is lumpy.
	per := (fileMB(db) - before) / float64(len(fresh))
	if isSet {
		r.SetDBv1, r.SetDBGrowth1pct, r.SetRefresh, r.SetHistory, r.SetDiff, r.SetLoad = dbV1, growth, refresh, hist, diff, loads
	} else {
		r.RuleDBv1, r.RuleDBGrowth1pct, r.RuleRefresh, r.RuleHistory, r.RuleDiff, r.RuleLoad, r.RuleDBPerVersion = dbV1, growth, refresh, hist, diff, loads, per
	}
	return nil
}

// nftSide loads the first file, then reloads each other one (flush
// ruleset + file), timed.
func nftSide(mk func() (string, error), files [][3]string) ([]Cmd, error) {
	ns, err := mk()
	if err != nil {
		return nil, err
	}
	if _, err := Nft(ns, files[0][0]); err != nil {
		return nil, err
	}
	var out []Cmd
	for _, f := range files[1:] {
		c, _, err := runLimited(ns, 15*time.Minute, "nft", "-f", f[1])
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func cmdTimes(cs []Cmd) Summary {
	var xs []float64
	for _, c := range cs {
		xs = append(xs, c.Wall)
	}
	return Summarize(xs)
}

func cmdRSS(cs []Cmd) Summary {
	var xs []float64
	for _, c := range cs {
		xs = append(xs, c.RSS)
	}
	return Summarize(xs)
}

// fmtCmd renders one command: time and peak RSS, or "> limit".
func fmtCmd(c Cmd) string {
	if c.Timeout {
		return fmt.Sprintf("> %.0f s (killed)", ScaleLimit.Seconds())
	}
	return fmt.Sprintf("%s, %.0f MB", FmtSeconds(c.Wall), c.RSS)
}

// verdict says whether got meets the target (lower is better).
func verdict(got, target float64) string {
	if got <= target {
		return "met"
	}
	return "**missed**"
}

// ScaleTable renders the scale section with the issue 11 targets.
func ScaleTable(r *ScaleResult) *Table {
	t := &Table{Title: fmt.Sprintf("scale: a %d-element set and %d rules, fwslot and nft side by side", r.Elements, r.Rules),
		Note: fmt.Sprintf("Whole commands, each in namespaces the harness makes. Set: `table ip filter` with one `type ipv4_addr` set of %d addresses and one rule (%.1f MB source); rules: `gen.Ruleset` of %d rules (%.1f MB). "+
			"fwslot stage = `fwslot load` of a new version (different content) over a slot that holds one, then `fwslot swap`; nft = `nft -f` of `flush ruleset` + the file. "+
			"1%% changed: every 100th address replaced / every 100th accepting rule given a counter; 10 rules: ten more rules changed. "+
			"`fwslot history` and `fwslot diff 1 2` run on the history holding v1 and the 1%%-changed v2; diff is killed at %.0f s. Median (min–max) of %d runs where there are several; one run otherwise.",
			r.Elements, r.SetMB, r.Rules, r.RulesMB, ScaleLimit.Seconds(), ScaleRuns),
		Header: []string{"row", "fwslot", "nft -f / diff -u", "ratio", "target", ""}}
	sl, sn := cmdTimes(r.SetLoad), cmdTimes(r.SetNft)
	slm, snm := cmdRSS(r.SetLoad), cmdRSS(r.SetNft)
	t.AddRow(fmt.Sprintf("stage a %d-element set: time", r.Elements), FmtTime(sl), FmtTime(sn), Ratio(sl.Median, sn.Median), "≤ 1.5x", verdict(sl.Median, 1.5*sn.Median))
	t.AddRow("… peak RSS", FmtMB(slm), FmtMB(snm), Ratio(slm.Median, snm.Median), "≤ 1.5x", verdict(slm.Median, 1.5*snm.Median))
	rl, rn := cmdTimes(r.RuleLoad), cmdTimes(r.RuleNft)
	rlm, rnm := cmdRSS(r.RuleLoad), cmdRSS(r.RuleNft)
	t.AddRow(fmt.Sprintf("stage %d rules: time", r.Rules), FmtTime(rl), FmtTime(rn), Ratio(rl.Median, rn.Median), "≤ 2x", verdict(rl.Median, 2*rn.Median))
	t.AddRow("… peak RSS", FmtMB(rlm), FmtMB(rnm), Ratio(rlm.Median, rnm.Median), "≤ 1.5x", verdict(rlm.Median, 1.5*rnm.Median))
	t.AddRow(fmt.Sprintf("history file after v1 (%d-element set)", r.Elements), fmt.Sprintf("%.1f MB", r.SetDBv1), "–", Ratio(r.SetDBv1, r.SetMB)+" of the source", "≤ 0.5x", verdict(r.SetDBv1, 0.5*r.SetMB))
	t.AddRow("history growth, second version with 1% of the set changed", fmt.Sprintf("%.1f MB", r.SetDBGrowth1pct), "–", Ratio(r.SetDBGrowth1pct, r.SetMB)+" of the source", "≤ 0.05x", verdict(r.SetDBGrowth1pct, 0.05*r.SetMB))
	pv := r.RuleDBPerVersion
	t.AddRow(fmt.Sprintf("history growth per new version (%d rules)", r.Rules), fmt.Sprintf("%.1f MB", pv), "–", Ratio(pv, r.RulesMB)+" of the source", "≤ 0.5x", verdict(pv, 0.5*r.RulesMB))
	t.AddRow(fmt.Sprintf("history growth, 1%% of %d rules changed", r.Rules), fmt.Sprintf("%.1f MB", r.RuleDBGrowth1pct), "–", Ratio(r.RuleDBGrowth1pct, r.RulesMB)+" of the source", "≤ 0.05x", verdict(r.RuleDBGrowth1pct, 0.05*r.RulesMB))
	t.AddRow("refresh: stage 1% of the set changed", fmtCmd(r.SetRefresh), FmtTime(sn), Ratio(r.SetRefresh.Wall, sn.Median), "proportional to the change", "measured")
	t.AddRow(fmt.Sprintf("refresh: stage 10 of %d rules changed", r.Rules), fmtCmd(r.RuleRefresh), FmtTime(rn), Ratio(r.RuleRefresh.Wall, rn.Median), "proportional to the change", "measured")
	t.AddRow(fmt.Sprintf("`fwslot history`, 2 versions (%d rules)", r.Rules), fmtCmd(r.RuleHistory), "–", "", "≤ 50 ms", verdict(r.RuleHistory.Wall, 0.05))
	t.AddRow(fmt.Sprintf("`fwslot history`, 2 versions (%d-element set)", r.Elements), fmtCmd(r.SetHistory), "–", "", "≤ 50 ms", verdict(r.SetHistory.Wall, 0.05))
	t.AddRow(fmt.Sprintf("`fwslot diff 1 2`, %d rules, 1%% changed", r.Rules), fmtCmd(r.RuleDiff), fmtCmd(r.RuleDiffFiles), diffRatio(r.RuleDiff, r.RuleDiffFiles), "≤ 1 s, ≤ 200 MB", diffVerdict(r.RuleDiff))
	t.AddRow(fmt.Sprintf("`fwslot diff 1 2`, %d-element set, 1%% changed", r.Elements), fmtCmd(r.SetDiff), fmtCmd(r.SetDiffFiles), diffRatio(r.SetDiff, r.SetDiffFiles), "≤ 1 s, ≤ 200 MB", diffVerdict(r.SetDiff))
	return t
}

func diffRatio(fw, files Cmd) string {
	if fw.Timeout {
		return "–"
	}
	return Ratio(fw.Wall, files.Wall)
}

func diffVerdict(c Cmd) string {
	if !c.Timeout && c.Wall <= 1 && c.RSS <= 200 {
		return "met"
	}
	return "**missed**"
}
