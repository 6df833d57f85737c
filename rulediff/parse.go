package rulediff

import (
	"fmt"
	"sort"
	"strings"

	"github.com/fwslot/fwslot/internal/names"
)

// Ruleset is a ruleset as nft lists it, split into tables and objects.
type Ruleset struct {
	tables []*table
}

// table is one table: its own attribute lines (flags, comment) and its
// chains, sets, maps, flowtables and named objects.
type table struct {
	Family  string
	Name    string
	Attrs   []string
	Objects []*object
}

// key names the table as nft does: "inet filter".
func (t *table) key() string { return t.Family + " " + t.Name }

// object is a chain, set, map, flowtable or named stateful object, with its
// body one statement a line (whitespace normalized, one line per set
// element).
type object struct {
	Kind  string // "chain", "set", "map", "counter", "ct helper"...
	Name  string
	Lines []string
}

// key names the object inside its table: "chain input".
func (o *object) key() string { return o.Kind + " " + o.Name }

// Parse reads the output of `nft list ruleset` (best with -s, stateless).
func Parse(text string) (*Ruleset, error) {
	rs := &Ruleset{}
	var tab *table
	var obj *object
	var pending string // a statement continued over several lines
	depth := 0
	for i, raw := range strings.Split(text, "\n") {
		line := strings.Join(strings.Fields(raw), " ")
		if pending != "" {
			line = pending + " " + line
			pending = ""
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		open, close := braces(line)
		switch {
		case depth == 0:
			f := strings.Fields(line)
			if len(f) != 4 || f[0] != "table" || f[3] != "{" {
				return nil, fmt.Errorf("nft output line %d: want \"table FAMILY NAME {\", got %q", i+1, line)
			}
			tab = &table{Family: f[1], Name: f[2]}
			rs.tables = append(rs.tables, tab)
			depth = 1
		case depth == 1 && line == "}":
			depth = 0
			tab = nil
		case depth == 1 && strings.HasSuffix(line, "{") && open == close+1:
			f := strings.Fields(strings.TrimSuffix(line, "{"))
			if len(f) < 2 {
				return nil, fmt.Errorf("nft output line %d: object without a name: %q", i+1, line)
			}
			obj = &object{Kind: strings.Join(f[:len(f)-1], " "), Name: f[len(f)-1]}
			tab.Objects = append(tab.Objects, obj)
			depth = 2
		case depth == 1:
			if open != close {
				pending = line
				continue
			}
			tab.Attrs = append(tab.Attrs, line)
		case depth == 2 && line == "}":
			depth = 1
			obj = nil
		default:
			if open != close {
				// A list that nft wraps over several lines.
				pending = line
				continue
			}
			obj.Lines = append(obj.Lines, splitElements(line)...)
		}
	}
	if depth != 0 || pending != "" {
		return nil, fmt.Errorf("nft output ends inside a block")
	}
	return rs, nil
}

// braces counts the braces of a line outside double quotes.
func braces(s string) (open, close int) {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '{':
			open++
		case c == '}':
			close++
		}
	}
	return open, close
}

// splitElements turns `elements = { a, b }` into one line per element, so
// that a set diff shows the elements that changed; other lines pass.
func splitElements(line string) []string {
	const head = "elements = {"
	if !strings.HasPrefix(line, head) || !strings.HasSuffix(line, "}") {
		return []string{line}
	}
	body := strings.TrimSpace(line[len(head) : len(line)-1])
	var out []string
	depth, quoted, start := 0, false, 0
	for i := 0; i <= len(body); i++ {
		if i < len(body) {
			switch c := body[i]; {
			case c == '"':
				quoted = !quoted
				continue
			case quoted:
				continue
			case c == '{':
				depth++
				continue
			case c == '}':
				depth--
				continue
			case c != ',' || depth > 0:
				continue
			}
		}
		if e := strings.TrimSpace(body[start:i]); e != "" {
			out = append(out, "element "+e)
		}
		start = i + 1
	}
	return out
}

// String prints the ruleset in nft's layout, objects sorted by kind and name.
func (rs *Ruleset) String() string {
	return rs.print(func(lines []string) []string { return lines })
}

// print writes the ruleset in nft's layout, each object's body as body
// returns it from the object's lines.
func (rs *Ruleset) print(body func([]string) []string) string {
	var b strings.Builder
	for _, t := range rs.tables {
		fmt.Fprintf(&b, "table %s {\n", t.key())
		for _, a := range t.Attrs {
			fmt.Fprintf(&b, "\t%s\n", a)
		}
		for _, o := range t.Objects {
			fmt.Fprintf(&b, "\t%s {\n", o.key())
			for _, l := range body(o.Lines) {
				fmt.Fprintf(&b, "\t\t%s\n", l)
			}
			b.WriteString("\t}\n")
		}
		b.WriteString("}\n")
	}
	return b.String()
}

// stripSlots removes fwslot's slot layout from a ruleset listed from a
// namespace where fwslot installed it: the meta and marker chains go, each
// base chain gets its user's policy and the rules of its slot copy back,
// and per-slot names lose their prefix.
func stripSlots(rs *Ruleset) {
	for _, t := range rs.tables {
		byName := map[string]*object{}
		for _, o := range t.Objects {
			if o.Kind == "chain" {
				byName[o.Name] = o
			}
		}
		if byName[names.MetaChain] == nil {
			continue // not a table fwslot manages
		}
		var kept []*object
		for _, o := range t.Objects {
			if o.Kind == "chain" && (o.Name == names.MetaChain || o.Name == names.Marker(names.SlotA) || o.Name == names.Marker(names.SlotB)) {
				continue
			}
			if _, _, ok := names.FromSlot(o.Name); ok && o.Kind == "chain" {
				if isSlotCopyOfBase(o, byName) {
					continue // merged into its base chain below
				}
			}
			if o.Kind == "chain" && len(o.Lines) > 0 && strings.HasPrefix(o.Lines[0], "type ") {
				stripBase(o, byName)
			}
			kept = append(kept, o)
		}
		t.Objects = kept
		for _, o := range t.Objects {
			o.Name = unslot(o.Name)
			for i, l := range o.Lines {
				o.Lines[i] = unslot(l)
			}
		}
	}
}

// isSlotCopyOfBase reports whether a slot chain is the copy of a base
// chain (a chain of the user's name with a hook exists).
func isSlotCopyOfBase(o *object, byName map[string]*object) bool {
	_, user, _ := names.FromSlot(o.Name)
	b := byName[user]
	return b != nil && len(b.Lines) > 0 && strings.HasPrefix(b.Lines[0], "type ")
}

// stripBase rebuilds a user base chain from fwslot's dispatch pair: the
// policy comes from the policy rule and the rules from the slot copy.
func stripBase(o *object, byName map[string]*object) {
	head := o.Lines[0]
	var policy, slotChain string
	for _, l := range o.Lines[1:] {
		verdict, comment, _ := strings.Cut(l, " comment \""+names.TagPrefix)
		switch {
		case strings.HasPrefix(comment, "policy"):
			policy = strings.TrimSpace(verdict)
		case strings.HasPrefix(comment, "jump"):
			slotChain = strings.TrimPrefix(strings.TrimSpace(verdict), "jump ")
		}
	}
	if slotChain == "" {
		return // no dispatch: not in fwslot's layout
	}
	if policy != "" {
		if i := strings.Index(head, "policy "); i >= 0 {
			head = head[:i] + "policy " + policy + ";"
		}
	}
	lines := []string{head}
	if c := byName[slotChain]; c != nil {
		for _, l := range c.Lines {
			if strings.HasPrefix(l, "comment \""+names.TagPrefix) {
				continue
			}
			lines = append(lines, l)
		}
	}
	o.Lines = lines
}

// unslot removes the per-slot prefix from every name in s.
func unslot(s string) string {
	for _, sl := range []names.Slot{names.SlotA, names.SlotB} {
		s = strings.ReplaceAll(s, names.InSlot(sl, ""), "")
	}
	return s
}

// sortAll orders tables by key and objects by kind and name, so that two
// listings compare independently of creation order.
func (rs *Ruleset) sortAll() {
	sort.SliceStable(rs.tables, func(i, j int) bool { return rs.tables[i].key() < rs.tables[j].key() })
	for _, t := range rs.tables {
		sort.SliceStable(t.Objects, func(i, j int) bool { return objLess(t.Objects[i], t.Objects[j]) })
	}
}

// objLess orders sets and maps first, then named objects, then chains.
func objLess(a, b *object) bool {
	if a.Kind != b.Kind {
		return kindOrder(a.Kind) < kindOrder(b.Kind)
	}
	return a.Name < b.Name
}

func kindOrder(k string) string {
	switch k {
	case "chain":
		return "9"
	case "set", "map":
		return "1" + k
	}
	return "5" + k
}
