package rulediff

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
)

// Change is one table or object that differs between two rulesets.
type Change struct {
	Table string `json:"table"`          // "inet filter"
	Kind  string `json:"kind,omitempty"` // "chain", "set"...; empty for the table's own attributes
	Name  string `json:"name,omitempty"`
	// Status is "added", "removed" or "changed".
	Status string `json:"status"`
	// Lines is the line diff of the object's body.
	Lines []Op `json:"lines"`
}

// Added counts the lines the change adds.
func (c Change) Added() int { a, _ := countOps(c.Lines); return a }

// Removed counts the lines the change removes.
func (c Change) Removed() int { _, r := countOps(c.Lines); return r }

// MarshalJSON writes each line as {"op": "+", "text": ...}.
func (o Op) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Op   string `json:"op"`
		Text string `json:"text"`
	}{string(o.Kind), o.Text})
}

// Compare returns the tables and objects that differ from a to b, in
// table and object order.
func Compare(a, b *Ruleset) []Change {
	a.sortAll()
	b.sortAll()
	out := []Change{}
	at, akeys := byKey(a.tables)
	bt, bkeys := byKey(b.tables)
	tkeys := unionKeys(akeys, bkeys)
	sort.Strings(tkeys)
	for _, key := range tkeys {
		ta, tb := at[key], bt[key]
		switch {
		case ta == nil:
			out = append(out, wholeTable(tb, "added", '+')...)
		case tb == nil:
			out = append(out, wholeTable(ta, "removed", '-')...)
		default:
			if ops := lineDiff(ta.Attrs, tb.Attrs); changed(ops) {
				out = append(out, Change{Table: key, Status: "changed", Lines: ops})
			}
			ao, aok := byKey(ta.Objects)
			bo, bok := byKey(tb.Objects)
			keys := unionKeys(aok, bok)
			sort.SliceStable(keys, func(i, j int) bool {
				x, y := ao[keys[i]], ao[keys[j]]
				if x == nil {
					x = bo[keys[i]]
				}
				if y == nil {
					y = bo[keys[j]]
				}
				return objLess(x, y)
			})
			for _, ok := range keys {
				oa, ob := ao[ok], bo[ok]
				switch {
				case oa == nil:
					out = append(out, Change{Table: key, Kind: ob.Kind, Name: ob.Name, Status: "added", Lines: all('+', ob.Lines)})
				case ob == nil:
					out = append(out, Change{Table: key, Kind: oa.Kind, Name: oa.Name, Status: "removed", Lines: all('-', oa.Lines)})
				default:
					if ops := objectLines(oa, ob); changed(ops) {
						out = append(out, Change{Table: key, Kind: oa.Kind, Name: oa.Name, Status: "changed", Lines: ops})
					}
				}
			}
		}
	}
	return out
}

// objectLines diffs the bodies of two versions of an object. A set's or
// map's elements are a set, not a sequence: they are compared as sorted
// lists in one merge (a million elements in well under a second, where a
// line diff of them would be quadratic), after the diff of its other
// lines.
func objectLines(a, b *object) []Op {
	if a.Kind != "set" && a.Kind != "map" {
		return lineDiff(a.Lines, b.Lines)
	}
	ha, ea := splitElems(a.Lines)
	hb, eb := splitElems(b.Lines)
	ops := lineDiff(ha, hb)
	if len(ea) == 0 && len(eb) == 0 {
		return ops
	}
	return append(ops, mergeElems(ea, eb)...)
}

// splitElems returns a body's non-element lines and its element lines,
// sorted. A body whose elements come last and sorted (a canonical form)
// is split without copying.
func splitElems(lines []string) (head, elems []string) {
	i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "element ") })
	if i < 0 {
		return lines, nil
	}
	tail := lines[i:]
	if !slices.ContainsFunc(tail, func(l string) bool { return !strings.HasPrefix(l, "element ") }) && slices.IsSorted(tail) {
		return lines[:i], tail
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "element ") {
			elems = append(elems, l)
		} else {
			head = append(head, l)
		}
	}
	slices.Sort(elems)
	return head, elems
}

// mergeElems diffs two sorted element lists.
func mergeElems(a, b []string) []Op {
	out := make([]Op, 0, max(len(a), len(b)))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j >= len(b) || (i < len(a) && a[i] < b[j]):
			out = append(out, Op{'-', a[i]})
			i++
		case i >= len(a) || b[j] < a[i]:
			out = append(out, Op{'+', b[j]})
			j++
		default:
			out = append(out, Op{' ', a[i]})
			i++
			j++
		}
	}
	return out
}

func wholeTable(t *table, status string, op byte) []Change {
	out := []Change{{Table: t.key(), Status: status, Lines: all(op, t.Attrs)}}
	for _, o := range t.Objects {
		out = append(out, Change{Table: t.key(), Kind: o.Kind, Name: o.Name, Status: status, Lines: all(op, o.Lines)})
	}
	return out
}

func all(op byte, lines []string) []Op {
	out := make([]Op, 0, len(lines))
	for _, l := range lines {
		out = append(out, Op{op, l})
	}
	return out
}

func changed(ops []Op) bool {
	for _, o := range ops {
		if o.Kind != ' ' {
			return true
		}
	}
	return false
}

// byKey indexes tables or objects by key and lists the keys in order.
func byKey[T interface{ key() string }](xs []T) (map[string]T, []string) {
	m := make(map[string]T, len(xs))
	keys := make([]string, 0, len(xs))
	for _, x := range xs {
		m[x.key()] = x
		keys = append(keys, x.key())
	}
	return m, keys
}

// unionKeys merges two key lists without repeats.
func unionKeys(a, b []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, op := range lineDiff(a, b) {
		if !seen[op.Text] {
			seen[op.Text] = true
			out = append(out, op.Text)
		}
	}
	return out
}

// Style chooses how WriteText marks lines.
type Style struct {
	// Color uses ANSI colours: red for removed, green for added lines.
	Color bool
	// Context is how many unchanged lines to show around a change.
	Context int
}

const (
	ansiRed   = "\x1b[31m"
	ansiGreen = "\x1b[32m"
	ansiBold  = "\x1b[1m"
	ansiCyan  = "\x1b[36m"
	ansiReset = "\x1b[0m"
)

// WriteText prints changes grouped by table, each object with its changed
// lines and some context, like:
//
//	table inet filter
//	  chain input
//	    - tcp dport 22 accept
//	    + tcp dport 2222 accept
func WriteText(w io.Writer, changes []Change, st Style) error {
	paint := func(code, s string) string {
		if !st.Color {
			return s
		}
		return code + s + ansiReset
	}
	var b strings.Builder
	table := ""
	for _, c := range changes {
		if c.Table != table {
			table = c.Table
			head := "table " + table
			if c.Kind == "" && c.Status != "changed" {
				head += " (" + c.Status + ")"
			}
			b.WriteString(paint(ansiBold, head) + "\n")
		}
		indent := "    "
		if c.Kind != "" {
			head := "  " + c.Kind + " " + c.Name
			if c.Status != "changed" {
				head += " (" + c.Status + ")"
			}
			b.WriteString(paint(ansiCyan, head) + "\n")
		} else {
			indent = "  "
		}
		for _, h := range hunks(c.Lines, st.Context) {
			if h < 0 {
				b.WriteString(indent + "  ...\n")
				continue
			}
			o := c.Lines[h]
			switch o.Kind {
			case '+':
				b.WriteString(paint(ansiGreen, indent+"+ "+o.Text) + "\n")
			case '-':
				b.WriteString(paint(ansiRed, indent+"- "+o.Text) + "\n")
			default:
				b.WriteString(indent + "  " + o.Text + "\n")
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	if err != nil {
		return fmt.Errorf("write diff: %w", err)
	}
	return nil
}

// hunks returns the indexes of lines to print: changed lines with ctx
// lines of context around them; -1 marks skipped lines.
func hunks(ops []Op, ctx int) []int {
	show := make([]bool, len(ops))
	for i, o := range ops {
		if o.Kind == ' ' {
			continue
		}
		for j := max(0, i-ctx); j <= min(len(ops)-1, i+ctx); j++ {
			show[j] = true
		}
	}
	var out []int
	skipped := false
	for i := range ops {
		if show[i] {
			out = append(out, i)
			skipped = false
		} else if !skipped {
			out = append(out, -1)
			skipped = true
		}
	}
	return out
}
