package bench

import (
	"fmt"
	"io"
	"strings"
)

// Table is one printed result table (Markdown, so it pastes into
// docs/BENCHMARKS.md unchanged).
type Table struct {
	Title  string
	Note   string
	Header []string
	Rows   [][]string
	// Verdicts are lines like "target ... : MET" printed under the table.
	Verdicts []string
}

// AddRow appends a row.
func (t *Table) AddRow(cells ...string) { t.Rows = append(t.Rows, cells) }

// Fprint writes the table as Markdown.
func (t *Table) Fprint(w io.Writer) {
	fmt.Fprintf(w, "### %s\n\n", t.Title)
	if t.Note != "" {
		fmt.Fprintf(w, "%s\n\n", t.Note)
	}
	fmt.Fprintf(w, "| %s |\n", strings.Join(t.Header, " | "))
	seps := make([]string, len(t.Header))
	for i := range seps {
		seps[i] = "---"
	}
	fmt.Fprintf(w, "|%s|\n", strings.Join(seps, "|"))
	for _, r := range t.Rows {
		fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | "))
	}
	if len(t.Verdicts) > 0 {
		fmt.Fprintln(w)
		for _, v := range t.Verdicts {
			fmt.Fprintf(w, "- %s\n", v)
		}
	}
	fmt.Fprintln(w)
}
