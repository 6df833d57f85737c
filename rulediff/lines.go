// Package rulediff compares rulesets as nft prints them: table by table and
// object by object (chains, sets, maps, named objects), with a line diff of
// each object's body. Rendering a side means listing it with nft in a
// private network namespace and removing fwslot's slot layout, so users see
// their own names, and moved includes or reformatted whitespace do not show.
package rulediff

import "github.com/fwslot/fwslot/internal/linediff"

// Op is one line of a line diff: Kind is ' ' (in both), '-' (only in the
// old text) or '+' (only in the new text).
type Op struct {
	Kind byte   `json:"-"`
	Text string `json:"text"`
}

// maxEdits bounds the work of lineDiff: beyond this many edits the remaining
// middle part is reported as removed and added wholesale. lineDiff keeps the
// frontier of every edit distance to walk the path back, (2d+1) ints for
// distance d: at most 2*maxEdits distances cost about 4*maxEdits^2 ints
// (32 MB), whatever the size of the texts; past linediff.MaxCountWork
// steps of the search it gives up the same way, so its time is bounded too.
const maxEdits = 1000

// lineDiff returns a shortest edit script from a to b (Myers' algorithm), as
// a sequence of kept, removed and added lines.
func lineDiff(a, b []string) []Op {
	// Common prefix and suffix cost nothing.
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	var out []Op
	for _, s := range a[:pre] {
		out = append(out, Op{' ', s})
	}
	out = append(out, myers(a[pre:len(a)-suf], b[pre:len(b)-suf])...)
	for _, s := range a[len(a)-suf:] {
		out = append(out, Op{' ', s})
	}
	return out
}

// countOps returns how many lines a diff adds and removes.
func countOps(ops []Op) (added, removed int) {
	for _, o := range ops {
		switch o.Kind {
		case '+':
			added++
		case '-':
			removed++
		}
	}
	return added, removed
}

func wholesale(a, b []string) []Op {
	out := make([]Op, 0, len(a)+len(b))
	for _, s := range a {
		out = append(out, Op{'-', s})
	}
	for _, s := range b {
		out = append(out, Op{'+', s})
	}
	return out
}

// myers is the greedy O((N+M)D) algorithm, keeping one V array per edit
// distance to walk the path back.
func myers(a, b []string) []Op {
	n, m := len(a), len(b)
	if n == 0 || m == 0 {
		return wholesale(a, b)
	}
	// trace[d] holds the frontier as it was before distance d: the only
	// entries the walk back reads for d.
	var trace [][]int
	found := linediff.Forward(a, b, 2*maxEdits, linediff.MaxCountWork, func(frontier []int) {
		trace = append(trace, append([]int(nil), frontier...))
	})
	if found < 0 {
		return wholesale(a, b)
	}
	// Walk back from (n, m) through the saved V arrays.
	var rev []Op
	x, y := n, m
	for d := found; d > 0; d-- {
		// vp[d+k] is v[off+k] before distance d; k-1 and k+1 lie within
		// [-d, d] whenever they are read.
		vp := trace[d]
		k := x - y
		var pk int
		if k == -d || (k != d && vp[d+k-1] < vp[d+k+1]) {
			pk = k + 1
		} else {
			pk = k - 1
		}
		px := vp[d+pk]
		py := px - pk
		for x > px && y > py {
			x--
			y--
			rev = append(rev, Op{' ', a[x]})
		}
		if x == px {
			y--
			rev = append(rev, Op{'+', b[y]})
		} else {
			x--
			rev = append(rev, Op{'-', a[x]})
		}
	}
	for x > 0 && y > 0 {
		x--
		y--
		rev = append(rev, Op{' ', a[x]})
	}
	out := make([]Op, len(rev))
	for i, o := range rev {
		out[len(rev)-1-i] = o
	}
	return out
}
