package history

import (
	"strings"

	"github.com/fwslot/fwslot/internal/linediff"
)

// SplitLines splits a source into its lines (a last newline ends the last
// line, it does not start an empty one).
func SplitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// CountLines returns how many lines a shortest edit script from a to b
// adds and removes, as Count(Lines(a, b)) would, in memory linear in the
// texts: it runs Myers' forward pass only, which gives the edit distance
// D, and added-removed is len(b)-len(a). Past maxCountEdits edits, or
// maxCountWork steps of the search, it counts lines of b that a lacks and
// lines of a that b lacks, by content (a reordering counts nothing there),
// so its time is bounded too.
func CountLines(a, b []string) (added, removed int) {
	return countLines(a, b, maxCountEdits, maxCountWork)
}

// maxCountWork bounds the diagonal steps and line comparisons of
// CountLines' search (a few hundred milliseconds).
const maxCountWork = 1 << 27

func countLines(a, b []string, maxD, maxWork int) (added, removed int) {
	for len(a) > 0 && len(b) > 0 && a[0] == b[0] {
		a, b = a[1:], b[1:]
	}
	for len(a) > 0 && len(b) > 0 && a[len(a)-1] == b[len(b)-1] {
		a, b = a[:len(a)-1], b[:len(b)-1]
	}
	n, m := len(a), len(b)
	if n == 0 || m == 0 {
		return m, n
	}
	if d := linediff.Forward(a, b, maxD, maxWork, nil); d >= 0 {
		return (d + m - n) / 2, (d - m + n) / 2
	}
	have := make(map[string]int, n)
	for _, s := range a {
		have[s]++
	}
	for _, s := range b {
		if have[s] > 0 {
			have[s]--
		} else {
			added++
		}
	}
	for _, c := range have {
		removed += c
	}
	return added, removed
}

// maxCountEdits bounds the search of CountLines, which keeps one frontier
// only (linear memory); beyond it the counts come from matching lines by
// content regardless of order.
const maxCountEdits = 20000

// storeCountWork bounds the search when a version is stored, where the
// count must not cost seconds (a 1M-element set with 1% changed gives
// 10,000 changed lines): about 40 ms, then lines are matched by content,
// which counts the same unless lines moved.
const storeCountWork = 1 << 22
