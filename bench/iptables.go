package bench

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Iptables tools compared with fwslot: the nft backend and, where the
// kernel has the xtables modules, the legacy backend.
const (
	IptNft    = "iptables-nft-restore"
	IptLegacy = "iptables-legacy-restore"
)

// LegacyAvailable reports whether iptables-legacy works on this kernel
// (ip_tables and x_tables built in or loadable), checked in a throwaway
// namespace, and why not.
func LegacyAvailable() (bool, string) {
	if _, err := exec.LookPath(IptLegacy); err != nil {
		return false, IptLegacy + " not installed"
	}
	ns, err := CreateNS()
	if err != nil {
		return false, err.Error()
	}
	defer DeleteNS(ns)
	f, err := os.CreateTemp("", "fwsb-legacy-*.rules")
	if err != nil {
		return false, err.Error()
	}
	defer os.Remove(f.Name())
	f.WriteString("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -j ACCEPT\nCOMMIT\n")
	f.Close()
	if _, err := Run(ns, IptLegacy, f.Name()); err != nil {
		return false, "not available on this kernel (" + strings.TrimSpace(err.Error()) + ")"
	}
	return true, ""
}

// IptResult holds iptables-restore samples for one size, in seconds.
type IptResult struct {
	Rules    int // nft rules (gen.Ruleset)
	IptRules int // -A lines of the iptables form
	// Live: restore of the other version's file over the current one
	// (iptables-restore flushes the table it restores: a full reload).
	// Roll: the same, back to the previous file.
	LiveNft, LiveLegacy, RollNft, RollLegacy []float64
}

// MeasureIptables restores the iptables form of the rulesets Measure uses
// (seeds 1 and 2) alternately, with each backend in its own namespace.
func MeasureIptables(cfg *Config, n int, legacy bool) (res *IptResult, err error) {
	res = &IptResult{Rules: n}
	sc, err := newScratch(cfg, fmt.Sprintf("ipt%d", n))
	if err != nil {
		return nil, err
	}
	defer keepFirst(&err, sc.remove)
	dir := sc.dir
	A, rules, err := WriteIptables(dir, n, 1)
	if err != nil {
		return nil, err
	}
	B, _, err := WriteIptables(dir, n, 2)
	if err != nil {
		return nil, err
	}
	res.IptRules = rules
	tools := []string{IptNft}
	if legacy {
		tools = append(tools, IptLegacy)
	}
	for _, tool := range tools {
		cfg.logf("  %d rules: %s (%d iptables rules)", n, tool, rules)
		ns, err := CreateNS()
		if err != nil {
			return nil, err
		}
		err = func() error {
			if _, err := Run(ns, tool, A); err != nil {
				return err
			}
			live, roll := &res.LiveNft, &res.RollNft
			if tool == IptLegacy {
				live, roll = &res.LiveLegacy, &res.RollLegacy
			}
			// live: A→B, B→A, ... (runs+1, first unrecorded);
			// then rollback: the same alternation, recorded separately.
			for _, out := range []*[]float64{live, roll} {
				secs, err := cfg.recorded(func(i int) (time.Duration, error) {
					f := B
					if i%2 == 1 {
						f = A
					}
					p, err := Run(ns, tool, f)
					return p.Wall, err
				})
				if err != nil {
					return err
				}
				*out = secs
				// Sanity: the namespace holds the rules.
				if out == roll {
					save := strings.TrimSuffix(tool, "-restore") + "-save"
					p, err := Run(ns, save, "-t", "filter")
					if err != nil {
						return err
					}
					if got := strings.Count(p.Stdout, "\n-A "); got != rules {
						return fmt.Errorf("%s: %d rules after restore, want %d", tool, got, rules)
					}
				}
			}
			return nil
		}()
		keepFirst(&err, func() error { return DeleteNS(ns) })
		if err != nil {
			return nil, err
		}
	}
	return res, nil
}

// ToolTables renders "make live" and "rollback" with every tool side by
// side: fwslot and nft -f from Measure, iptables from MeasureIptables.
func ToolTables(rs []*SizeResult, ip []*IptResult, legacy bool, legacyWhy string) []*Table {
	lv := &Table{Title: "make a new ruleset live: fwslot swap vs nft -f vs iptables-restore",
		Note: "Same content for every tool: `gen.Ruleset(Options{Rules: N, Family: \"ip\"})` for fwslot and nft, its translation `gen.IptablesSave` for iptables (anonymous address sets and the verdict map become one rule per element, so the iptables form has more rules: column 2). " +
			"fwslot: `fwslot swap` (whole command) with the new version already staged; nft: `nft -f` of `flush ruleset` + file; iptables: `iptables-restore FILE` (flushes and replaces the filter table), each into a namespace holding the other version. Median (min–max); ratio = tool median / fwslot swap median.",
		Header: []string{"rules (nft)", "rules (iptables)", "fwslot swap", "nft -f", "iptables-nft-restore", "iptables-legacy-restore", "nft / fwslot", "ipt-nft / fwslot", "ipt-legacy / fwslot"}}
	rb := &Table{Title: "rollback: back to the previous ruleset, every tool",
		Note:   "`fwslot rollback` (previous version still in the other slot: a flip) vs reloading the previous file with `nft -f` (flush ruleset + file), `iptables-nft-restore` and `iptables-legacy-restore`. Ratio = tool median / fwslot rollback median.",
		Header: append([]string{"rules (nft)", "rules (iptables)", "fwslot rollback"}, lv.Header[3:]...)}
	if !legacy {
		w := "iptables-legacy-restore: " + legacyWhy
		lv.Verdicts = append(lv.Verdicts, w)
		rb.Verdicts = append(rb.Verdicts, w)
	}
	for i, r := range rs {
		var p *IptResult
		if i < len(ip) {
			p = ip[i]
		}
		if p == nil {
			p = &IptResult{}
		}
		row := func(fw, nft, in, il []float64) []string {
			f := Summarize(fw)
			cells := []string{strconv.Itoa(r.Rules), strconv.Itoa(p.IptRules), FmtTime(f)}
			var ratios []string
			for _, xs := range [][]float64{nft, in, il} {
				if len(xs) == 0 {
					cells = append(cells, "n/a")
					ratios = append(ratios, "–")
					continue
				}
				s := Summarize(xs)
				cells = append(cells, FmtTime(s))
				ratios = append(ratios, Ratio(s.Median, f.Median))
			}
			return append(cells, ratios...)
		}
		lv.AddRow(row(r.SwapCmd, r.SwapNft, p.LiveNft, p.LiveLegacy)...)
		rb.AddRow(row(r.RollCmd, r.RollNft, p.RollNft, p.RollLegacy)...)
	}
	return []*Table{lv, rb}
}
