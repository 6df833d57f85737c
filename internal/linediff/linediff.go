// Package linediff is the forward pass of Myers' greedy line diff, shared by
// history's line counts and rulediff's edit scripts, and the bounded line
// counts history stores and `fwslot history` shows.
package linediff

// Forward runs Myers' forward pass from a to b and returns the length of a
// shortest edit script, or -1 once that exceeds maxD or the search has taken
// more than maxWork diagonal steps and line comparisons. When before is not
// nil, it is called before each distance d with the frontier as it stands:
// frontier[d+k] is the furthest x reached on diagonal k, for k in [-d, d],
// which is what a walk back from the end needs; it must copy what it keeps.
func Forward(a, b []string, maxD, maxWork int, before func(frontier []int)) int {
	n, m := len(a), len(b)
	max := n + m
	if max > maxD {
		max = maxD
	}
	off := max + 1
	v := make([]int, 2*max+3)
	work := 0
	for d := 0; d <= max; d++ {
		if before != nil {
			before(v[off-d : off+d+1])
		}
		for k := -d; k <= d; k += 2 {
			var x int
			if k == -d || (k != d && v[off+k-1] < v[off+k+1]) {
				x = v[off+k+1]
			} else {
				x = v[off+k-1] + 1
			}
			y := x - k
			start := x
			for x < n && y < m && a[x] == b[y] {
				x++
				y++
			}
			if work += 1 + x - start; work > maxWork {
				return -1
			}
			v[off+k] = x
			if x >= n && y >= m {
				return d
			}
		}
	}
	return -1
}
