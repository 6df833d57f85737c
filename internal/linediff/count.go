package linediff

import "strings"

// Split splits a source into its lines (a last newline ends the last
// line, it does not start an empty one).
func Split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// MaxCountEdits bounds the search of Count, which keeps one frontier only
// (linear memory); beyond it the counts come from matching lines by
// content regardless of order.
const MaxCountEdits = 20000

// MaxCountWork bounds the diagonal steps and line comparisons of Count's
// search (a few hundred milliseconds).
const MaxCountWork = 1 << 27

// Count returns how many lines a shortest edit script from a to b adds
// and removes, in memory linear in the texts: it runs the forward pass
// only, which gives the edit distance D, and added-removed is
// len(b)-len(a). Past MaxCountEdits edits, or MaxCountWork steps of the
// search, it counts by content as CountWithin does, so its time is
// bounded too.
func Count(a, b []string) (added, removed int) {
	return CountWithin(a, b, MaxCountEdits, MaxCountWork)
}

// CountWithin is Count with its own bounds: past maxD edits or maxWork
// steps it counts lines of b that a lacks and lines of a that b lacks, by
// content (a reordering counts nothing there).
func CountWithin(a, b []string, maxD, maxWork int) (added, removed int) {
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
	if d := Forward(a, b, maxD, maxWork, nil); d >= 0 {
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
