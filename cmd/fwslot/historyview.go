package main

import (
	"context"
	"fmt"
	"strconv"
	"text/tabwriter"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/linediff"
	"github.com/fwslot/fwslot/session"
	"github.com/spf13/cobra"
)

// historyRow is one version in `history --json`.
type historyRow struct {
	history.Version
	Slot    string `json:"slot,omitempty"`
	Added   int    `json:"lines_added"`
	Removed int    `json:"lines_removed"`
}

// runHistory lists versions with lines changed against the previous
// version and the slot each sits in, then activations with how each ended.
func runHistory(g *globals, cmd *cobra.Command, limit int) error {
	t, done, err := g.target()
	if err != nil {
		return err
	}
	defer done()
	if t.Store == nil {
		if g.json {
			return printJSON(cmd.OutOrStdout(), []any{})
		}
		fmt.Fprintf(cmd.OutOrStdout(), "no history yet (%s does not exist)\n", g.db)
		return nil
	}
	rows, acts, err := historyRows(t, limit)
	if err != nil {
		return err
	}
	if g.json {
		return printJSON(cmd.OutOrStdout(), rows)
	}
	w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "VERSION\tTIME\tUSER\tHASH\tCHANGE\tRULES\tSLOT\tMESSAGE")
	for _, r := range rows {
		change := fmt.Sprintf("+%d -%d", r.Added, r.Removed)
		if r.Origin == "adopted" {
			change = "adopted"
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", r.Number, r.Time.Local().Format("2006-01-02 15:04:05"),
			printable(r.User), printable(short(r.Hash)), change, r.Rules, r.Slot, printable(r.Message))
	}
	w.Flush()
	if len(acts) == 0 {
		return nil
	}
	fmt.Fprintln(cmd.OutOrStdout())
	w = tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ACTIVATION\tTIME\tHOW\tFROM\tTO\tUSER\tENDED")
	for _, a := range acts {
		from := "-"
		if a.From != 0 {
			from = strconv.FormatUint(a.From, 10)
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%d\t%s\t%s\n", a.Seq, a.Time.Local().Format("2006-01-02 15:04:05"), printable(a.How), from, a.To, printable(a.User), printable(a.Ended))
	}
	return w.Flush()
}

// activationRow is an activation with how it ended.
type activationRow struct {
	history.Activation
	Ended string `json:"ended"`
}

// historyRows reads the newest limit versions (all when limit <= 0) with
// their line counts and slots, and the activations with their endings.
func historyRows(t *session.Target, limit int) ([]historyRow, []activationRow, error) {
	vs, err := t.Store.Versions(t.Key())
	if err != nil {
		return nil, nil, err
	}
	acts, err := t.Store.Activations(t.Key())
	if err != nil {
		return nil, nil, err
	}
	start := 0
	if limit > 0 && len(vs) > limit {
		start = len(vs) - limit
	}
	slotOf := map[uint64]string{}
	if s, err := t.Status(context.Background()); err == nil {
		if s.Production != nil {
			slotOf[s.Production.Version] = "production"
		}
		if s.Staging != nil {
			slotOf[s.Staging.Version] = "staging"
		}
	}
	rows := make([]historyRow, 0, len(vs)-start)
	// Lines changed come from the summary history stored with each
	// version (no source is read) when it was counted against the
	// version listed before it; versions stored before summaries, or
	// whose version before was pruned since, are counted from sources.
	var prev []string
	prevRead := false
	for i := start; i < len(vs); i++ {
		v := vs[i]
		var before uint64
		if i > 0 {
			before = vs[i-1].Number
		}
		if sum := v.Summary; sum != nil && sum.Against == before {
			rows = append(rows, historyRow{Version: v, Slot: slotOf[v.Number], Added: sum.Added, Removed: sum.Removed})
			prevRead = false
			continue
		}
		if !prevRead {
			prev = nil
			if before != 0 {
				p, err := t.Store.Get(t.Key(), before)
				if err != nil {
					return nil, nil, err
				}
				prev = linediff.Split(p.Source)
			}
		}
		full, err := t.Store.Get(t.Key(), v.Number)
		if err != nil {
			return nil, nil, err
		}
		cur := linediff.Split(full.Source)
		add, rm := linediff.Count(prev, cur)
		rows = append(rows, historyRow{Version: v, Slot: slotOf[v.Number], Added: add, Removed: rm})
		prev, prevRead = cur, true
	}
	arows := make([]activationRow, 0, len(acts))
	for i, a := range acts {
		arows = append(arows, activationRow{a, activationEnd(acts, i)})
	}
	if limit > 0 && len(arows) > limit {
		arows = arows[len(arows)-limit:]
	}
	return rows, arows, nil
}

// activationEnd says how activation i ended, from what came after it:
// "live", "rolled back", "reverted", "replaced by N", and for confirmed
// swaps "confirmed" or "pending confirmation".
func activationEnd(acts []history.Activation, i int) string {
	a := acts[i]
	result := a.Result
	var end string
	if i+1 < len(acts) {
		next := acts[i+1]
		switch {
		case result == "reverted" || next.How == "revert":
			end = "reverted"
		case next.How == "rollback":
			end = "rolled back"
		default:
			end = fmt.Sprintf("replaced by %d", next.To)
		}
	} else {
		end = "live"
		if result == "pending" {
			return "pending confirmation"
		}
	}
	if result == "confirmed" {
		return "confirmed, " + end
	}
	return end
}

// printOriginal prints a version's files as written, includes separate,
// each after a "# ==> FILE <==" line (`show --original`).
func printOriginal(g *globals, cmd *cobra.Command, n uint64, v history.Version) error {
	if g.json {
		type file struct {
			Path    string `json:"path"`
			Content string `json:"content"`
		}
		files := []file{}
		for _, f := range v.Files {
			files = append(files, file{f.Path, string(f.Content)})
		}
		return printJSON(cmd.OutOrStdout(), struct {
			history.Version
			Files []file `json:"files"`
		}{v, files})
	}
	w := cmd.OutOrStdout()
	if len(v.Files) == 0 {
		fmt.Fprintf(w, "# ==> version %d (%s): no files recorded; its source as fwslot read it <==\n%s", n, printable(v.Origin), v.Source)
		return nil
	}
	for i, f := range v.Files {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "# ==> %s <==\n", printable(f.Path))
		w.Write(f.Content)
		if len(f.Content) > 0 && f.Content[len(f.Content)-1] != '\n' {
			fmt.Fprintln(w)
		}
	}
	return nil
}
