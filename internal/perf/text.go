package perf

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// topChains is how many of the costliest chains the text report names.
const topChains = 3

// WriteText renders a measurement side by side, one column per version,
// and the regression when reg is not nil.
func WriteText(w io.Writer, res *Result, reg *Regression) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(label string, cell func(v VersionResult) string) {
		cells := []string{label}
		for _, v := range res.Versions {
			cells = append(cells, cell(v))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	row("", func(v VersionResult) string { return v.Source })
	row("packets/s (median)", func(v VersionResult) string { return fmtRate(v.PPS) })
	row("firewall ns/packet", func(v VersionResult) string { return fmt.Sprintf("%.0f", v.NsPerPacket) })
	row("rules evaluated (median, max)", func(v VersionResult) string {
		return fmt.Sprintf("%g, %d", v.RulesEvaluated.Median, v.RulesEvaluated.Max)
	})
	row("rules evaluated per packet", func(v VersionResult) string { return fmt.Sprintf("%.1f", v.RulesEvaluated.Mean) })
	fmt.Fprintln(tw, "\t")
	fmt.Fprintln(tw, "rules evaluated, per probe\t")
	for i := range res.Versions[0].Probes {
		p := res.Versions[0].Probes[i]
		row("  "+p.Where+" "+p.Probe, func(v VersionResult) string {
			if i >= len(v.Probes) {
				return "-"
			}
			q := v.Probes[i]
			if q.Error != "" {
				return "error: " + q.Error
			}
			s := fmt.Sprintf("%d", q.RulesEvaluated)
			if len(q.Chains) > 0 {
				s += " (" + chainName(q.Chains[0].Family, q.Chains[0].Table, q.Chains[0].Chain) + ")"
			}
			return s
		})
	}
	fmt.Fprintln(tw, "\t")
	fmt.Fprintln(tw, "chains that cost most (rules evaluated over the mix)\t")
	rows := 0
	for _, v := range res.Versions {
		rows = max(rows, min(topChains, len(v.Chains)))
	}
	for i := range rows {
		row(fmt.Sprintf("  %d.", i+1), func(v VersionResult) string {
			if i >= len(v.Chains) {
				return ""
			}
			c := v.Chains[i]
			return fmt.Sprintf("%s: %d", chainName(c.Family, c.Table, c.Chain), c.Rules)
		})
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nflood: %d probes as one mix, %.1fs per version in %.0fms slices, interleaved, %d sender(s); empty ruleset %s packets/s\n",
		res.Probes, res.Duration, 1000*res.Slice, res.Senders, fmtRate(res.BaselinePPS))
	if reg != nil {
		writeRegression(w, res, reg)
	}
	return nil
}

func writeRegression(w io.Writer, res *Result, reg *Regression) {
	what := "rules evaluated per packet"
	if reg.Metric == PacketsPerSecond {
		what = "packets per second (median of interleaved rounds)"
	}
	verdict := "within"
	if reg.Exceeded {
		verdict = "REGRESSION: above"
	}
	fmt.Fprintf(w, "\n%s is %+.1f%% slower than %s by %s: %s the %.0f%% allowed (rules %+.1f%%, packets/s %+.1f%%)\n",
		res.Versions[0].Source, 100*reg.Slower, res.Versions[1].Source, what, verdict, 100*reg.Max, 100*reg.RulesSlower, 100*reg.PPSSlower)
	if !reg.Exceeded {
		return
	}
	for _, p := range reg.Probes {
		fmt.Fprintf(w, "  slower probe %s %s: %d -> %d rules\n", p.Where, p.Probe, p.Old, p.New)
	}
	for _, c := range reg.Chains {
		fmt.Fprintf(w, "  slower chain %s: %d -> %d rules over the mix\n", chainName(c.Family, c.Table, c.Chain), c.Old, c.New)
	}
}

func chainName(family, table, chain string) string {
	if table == "" {
		return chain
	}
	return family + " " + table + " " + chain
}

func fmtRate(pps float64) string {
	switch {
	case pps >= 1e6:
		return fmt.Sprintf("%.2fM", pps/1e6)
	case pps >= 1e3:
		return fmt.Sprintf("%.1fk", pps/1e3)
	}
	return fmt.Sprintf("%.0f", pps)
}
