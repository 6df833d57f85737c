package rulediff

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Canonical forms from sources.
//
// FromSource reads a flattened ruleset source (includes already in place,
// as history stores it) into the same table and object structure Parse
// builds from nft's listing, without nft: statements one a line with
// whitespace collapsed, defines expanded, the blocks of one table or
// object merged, set elements one a line and sorted. History keeps it
// with each version (canonicalText, through CanonicalSource), so `fwslot diff` of two stored
// versions compares two texts read from history instead of installing
// both versions in a namespace and listing them with nft.
//
// It reads the block form nft lists and people write (tables holding
// chains, sets, maps and named objects; `define`; `flush ruleset`) and
// the `add`/`create`/`insert` commands of it. A source that uses any
// other command (delete, replace, rename, flush chain...) or that it
// cannot read is refused: its versions are rendered by
// nft as before. Unlike nft's listing it keeps what the source wrote
// where nft would print another spelling of the same thing (a port
// name, `priority 0` for `priority filter`); two sources that compile to
// the same kernel objects are the same to a caller that compares their
// compiled forms first.

// errNoCanonical is returned (wrapped) by FromSource for sources it does
// not read.
var errNoCanonical = errors.New("no canonical form from source")

// canonParser builds a Ruleset from tokens.
type canonParser struct {
	toks    []canonTok
	pos     int
	defines map[string][]string
	rs      *Ruleset
	tables  map[string]*table
	objects map[string]*object // "family table\x00kind name"
}

// FromSource returns the canonical form of a flattened ruleset source,
// sorted as Compare sorts them, or an error saying what it could not read.
func FromSource(src string) (*Ruleset, error) {
	toks, err := lexCanon(src)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNoCanonical, err)
	}
	p := &canonParser{toks: toks, defines: map[string][]string{}}
	p.reset()
	if err := p.top(); err != nil {
		return nil, fmt.Errorf("%w: %v", errNoCanonical, err)
	}
	for _, t := range p.rs.tables {
		for _, o := range t.Objects {
			if o.Kind == "set" || o.Kind == "map" {
				sortElements(o.Lines)
			}
		}
	}
	p.rs.sortAll()
	return p.rs, nil
}

// sortElements puts the element lines of a set's body after its other
// lines, sorted.
func sortElements(lines []string) {
	var head, elems []string
	for _, l := range lines {
		if strings.HasPrefix(l, "element ") {
			elems = append(elems, l)
		} else {
			head = append(head, l)
		}
	}
	if len(elems) == 0 {
		return
	}
	slices.Sort(elems)
	copy(lines, head)
	copy(lines[len(head):], elems)
}

func (p *canonParser) reset() {
	p.rs = &Ruleset{}
	p.tables = map[string]*table{}
	p.objects = map[string]*object{}
}

func (p *canonParser) errorf(format string, args ...any) error {
	line := 0
	if p.pos < len(p.toks) {
		line = p.toks[p.pos].line
	} else if len(p.toks) > 0 {
		line = p.toks[len(p.toks)-1].line
	}
	return fmt.Errorf("line %d: %s", line, fmt.Sprintf(format, args...))
}

func (p *canonParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos].text
	}
	return ""
}

// skipSeps skips statement separators.
func (p *canonParser) skipSeps() {
	for p.pos < len(p.toks) && p.toks[p.pos].sep() {
		p.pos++
	}
}

// statement returns the tokens up to the end of the statement (a
// separator outside braces, or the "}" that closes the enclosing block,
// which it leaves), with defines expanded.
func (p *canonParser) statement() ([]string, error) {
	var out []string
	depth := 0
	for p.pos < len(p.toks) {
		t := p.toks[p.pos].text
		if depth == 0 && (t == ";" || t == "\n" || t == "}") {
			break
		}
		p.pos++
		switch t {
		case "{":
			depth++
		case "}":
			depth--
		case "\n":
			continue // a statement continued inside braces
		}
		if strings.HasPrefix(t, "$") {
			v, ok := p.defines[t[1:]]
			if !ok {
				return nil, p.errorf("%s is not defined", t)
			}
			out = append(out, v...)
			continue
		}
		out = append(out, t)
	}
	if depth != 0 {
		return nil, p.errorf("unbalanced braces")
	}
	return out, nil
}

// join prints tokens as one normalized statement: single spaces, none
// before a comma or after a brace's inner ";".
func join(toks []string) string {
	var b strings.Builder
	for i, t := range toks {
		if i > 0 && t != "," && t != ";" {
			b.WriteByte(' ')
		}
		b.WriteString(t)
	}
	return b.String()
}

// top reads top-level statements.
func (p *canonParser) top() error {
	for {
		p.skipSeps()
		if p.pos >= len(p.toks) {
			return nil
		}
		st := p.pos
		word := p.peek()
		switch word {
		case "define", "redefine":
			if err := p.define(); err != nil {
				return err
			}
		case "undefine":
			p.pos++
			delete(p.defines, p.peek())
			p.pos++
		case "flush":
			toks, err := p.statement()
			if err != nil {
				return err
			}
			if join(toks) != "flush ruleset" {
				p.pos = st
				return p.errorf("%q is not read without nft", join(toks))
			}
			p.reset()
		case "add", "create", "insert":
			p.pos++
			if err := p.command(word); err != nil {
				return err
			}
		case "table":
			if err := p.command("add"); err != nil {
				return err
			}
		case "}":
			return p.errorf("unexpected }")
		default:
			return p.errorf("%q is not read without nft", word)
		}
	}
}

// tableRef reads "[family] name" and returns the table, created on first use.
func (p *canonParser) tableRef() (*table, error) {
	a := p.peek()
	p.pos++
	family, name := "ip", a
	switch a {
	case "ip", "ip6", "inet", "arp", "bridge", "netdev":
		if n := p.peek(); n != "" && n != "{" && !p.toks[p.pos].sep() {
			family, name = a, n
			p.pos++
		}
	}
	if name == "" || name == "{" || name == "}" {
		return nil, p.errorf("table without a name")
	}
	key := family + " " + name
	t := p.tables[key]
	if t == nil {
		t = &table{Family: family, Name: name}
		p.tables[key] = t
		p.rs.tables = append(p.rs.tables, t)
	}
	return t, nil
}

// objectRef reads "[family] table name": the table of an object and the
// object's name.
func (p *canonParser) objectRef() (*table, string, error) {
	t, err := p.tableRef()
	if err != nil {
		return nil, "", err
	}
	name := p.peek()
	p.pos++
	return t, name, nil
}

// refStatement reads an object reference and the statement after it, as
// `add rule` and `add element` write them.
func (p *canonParser) refStatement() (*table, string, []string, error) {
	t, name, err := p.objectRef()
	if err != nil {
		return nil, "", nil, err
	}
	toks, err := p.statement()
	if err != nil {
		return nil, "", nil, err
	}
	return t, name, toks, nil
}

// object returns the object kind name of table t, created on first use.
func (p *canonParser) object(t *table, kind, name string) *object {
	key := t.key() + "\x00" + kind + " " + name
	o := p.objects[key]
	if o == nil {
		o = &object{Kind: kind, Name: name}
		p.objects[key] = o
		t.Objects = append(t.Objects, o)
	}
	return o
}

// command reads an add/create/insert command after its verb (or a bare
// "table" block).
func (p *canonParser) command(verb string) error {
	what := p.peek()
	p.pos++
	switch what {
	case "table":
		t, err := p.tableRef()
		if err != nil {
			return err
		}
		if p.peek() == "{" {
			return p.tableBody(t)
		}
		return nil
	case "rule":
		t, chain, toks, err := p.refStatement()
		if err != nil {
			return err
		}
		if len(toks) > 0 && (toks[0] == "handle" || toks[0] == "position" || toks[0] == "index") {
			return p.errorf("rule placement by %s is not read without nft", toks[0])
		}
		o := p.object(t, "chain", chain)
		if verb == "insert" {
			o.Lines = append([]string{join(toks)}, o.Lines...)
		} else {
			o.Lines = append(o.Lines, join(toks))
		}
		return nil
	case "element":
		t, name, toks, err := p.refStatement()
		if err != nil {
			return err
		}
		o := p.objects[t.key()+"\x00set "+name]
		if o == nil {
			o = p.objects[t.key()+"\x00map "+name]
		}
		if o == nil {
			return p.errorf("element of %s, which is not declared before", name)
		}
		o.Lines = append(o.Lines, elements(toks)...)
		return nil
	case "":
		return p.errorf("%s without an object", verb)
	}
	// add chain|set|map|counter|... [family] table name [{ body }]
	kind := what
	if what == "ct" { // ct helper, ct timeout, ct expectation
		kind += " " + p.peek()
		p.pos++
	}
	t, name, err := p.objectRef()
	if err != nil {
		return err
	}
	o := p.object(t, kind, name)
	if p.peek() == "{" {
		return p.objectBody(o)
	}
	return nil
}

// tableBody reads "{ ... }" of a table.
func (p *canonParser) tableBody(t *table) error {
	return p.block("table "+t.key(), func(w string) error {
		switch w {
		case "flags", "comment":
			toks, err := p.statement()
			if err != nil {
				return err
			}
			t.Attrs = append(t.Attrs, join(toks))
			return nil
		}
		// KIND... NAME { body }
		var head []string
		for p.peek() != "{" {
			if p.pos >= len(p.toks) || p.toks[p.pos].sep() || p.peek() == "}" {
				return p.errorf("%q in table %s is not read without nft", join(head), t.key())
			}
			head = append(head, p.peek())
			p.pos++
		}
		if len(head) < 2 {
			return p.errorf("object without a name in table %s", t.key())
		}
		o := p.object(t, strings.Join(head[:len(head)-1], " "), head[len(head)-1])
		return p.objectBody(o)
	})
}

// block reads "{ ... }": defines in it, and every other statement
// through stmt, which gets its first word. what names the block in the
// error for a missing }.
func (p *canonParser) block(what string, stmt func(w string) error) error {
	p.pos++ // {
	for {
		p.skipSeps()
		w := p.peek()
		switch w {
		case "":
			return p.errorf("%s is not closed", what)
		case "}":
			p.pos++
			return nil
		case "define", "redefine":
			if err := p.define(); err != nil {
				return err
			}
			continue
		}
		if err := stmt(w); err != nil {
			return err
		}
	}
}

// define reads one "define NAME = value" statement, at top level or
// inside a block (nft scopes it to the block; a later define of the same
// name outside would shadow it the same way).
func (p *canonParser) define() error {
	p.pos++
	name := p.peek()
	p.pos++
	if p.peek() != "=" {
		return p.errorf("define %s without =", name)
	}
	p.pos++
	v, err := p.statement()
	if err != nil {
		return err
	}
	p.defines[name] = v
	return nil
}

// objectBody reads "{ ... }" of a chain, set, map or named object.
func (p *canonParser) objectBody(o *object) error {
	return p.block(o.Kind+" "+o.Name, func(string) error {
		toks, err := p.statement()
		if err != nil {
			return err
		}
		if (o.Kind == "set" || o.Kind == "map") && len(toks) > 2 && toks[0] == "elements" && toks[1] == "=" {
			o.Lines = append(o.Lines, elements(toks[2:])...)
			return nil
		}
		o.Lines = append(o.Lines, join(toks))
		return nil
	})
}

// elements returns "element X" lines of a "{ a, b, ... }" list, with
// nested lists (expanded defines) spliced in.
func elements(toks []string) []string {
	if len(toks) >= 2 && toks[0] == "{" && toks[len(toks)-1] == "}" {
		toks = toks[1 : len(toks)-1]
	}
	var out []string
	depth, start := 0, 0
	flush := func(end int) {
		e := toks[start:end]
		switch {
		case len(e) == 1:
			out = append(out, "element "+e[0])
		case len(e) >= 2 && e[0] == "{" && e[len(e)-1] == "}":
			out = append(out, elements(e)...)
		case len(e) > 0:
			out = append(out, "element "+join(e))
		}
	}
	for i, t := range toks {
		switch {
		case t == "{":
			depth++
		case t == "}":
			depth--
		case t == "," && depth == 0:
			flush(i)
			start = i + 1
		}
	}
	flush(len(toks))
	return out
}
