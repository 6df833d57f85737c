package source

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// ChainKey names a chain; Family is spelled as nft prints it: ip, ip6, inet,
// arp, bridge or netdev.
type ChainKey struct{ Family, Table, Chain string }

// Location is where a rule is written. Text is the rule's source text on one
// line, with whitespace collapsed and comments left out.
type Location struct {
	File string
	Line int
	Text string
}

var families = map[string]bool{"ip": true, "ip6": true, "inet": true, "arp": true, "bridge": true, "netdev": true}

// chainStatements are the chain block statements that are not rules.
var chainStatements = map[string]bool{
	"type": true, "hook": true, "priority": true, "policy": true, "comment": true,
	"devices": true, "device": true, "flags": true,
	"define": true, "redefine": true, "undefine": true,
}

// commands are nft's command verbs; a statement without one is an add.
var commands = map[string]bool{
	"add": true, "create": true, "insert": true, "replace": true, "delete": true, "destroy": true,
	"flush": true, "list": true, "reset": true, "rename": true, "get": true, "describe": true,
	"export": true, "import": true, "monitor": true,
}

// RuleLocations lists, for every chain the bundle declares or adds rules to,
// the source location of each rule in the order nft creates them in the
// kernel: rules of chain blocks in order, `add rule` appended, `insert rule`
// prepended (`index N` is honoured; `handle`/`position` placement is not
// known without the kernel, so such rules are appended or prepended).
// Flushing or deleting chains, tables and the ruleset is followed;
// `delete rule` and `replace rule` are not. For `add rule F T C STMTS` the
// Location's Text is STMTS and its Line the line of the command.
func (b *Bundle) RuleLocations() (map[ChainKey][]Location, error) {
	fs := memFS{}
	for _, f := range b.Files {
		fs[f.Path] = f
	}
	l := &loader{fs: fs, dir: filepath.Dir(b.Main), opts: Options{MaxBytes: 1<<63 - 1}, seen: map[string]int{}, keep: true, sites: b.sites}
	var flat strings.Builder
	if err := l.load(b.Main, nil, &flat); err != nil {
		return nil, fmt.Errorf("rule locations of %s: %w", b.Main, err)
	}
	p := &ruleParser{toks: l.toks, out: map[ChainKey][]Location{}}
	if err := p.top(); err != nil {
		return nil, fmt.Errorf("rule locations of %s: %w", b.Main, err)
	}
	return p.out, nil
}

type ruleParser struct {
	toks []token
	pos  int
	out  map[ChainKey][]Location
}

func isSep(t token) bool { return t.kind == tNewline || t.kind == tSemi }

// stmtEnd returns the index of the separator or closing brace that ends the
// statement starting at i; braces inside the statement are skipped whole.
func (p *ruleParser) stmtEnd(i int) (int, error) {
	depth := 0
	for ; i < len(p.toks); i++ {
		t := p.toks[i]
		switch {
		case t.kind == tLBrace:
			depth++
		case t.kind == tRBrace:
			if depth == 0 {
				return i, nil
			}
			depth--
		case isSep(t) && depth == 0:
			return i, nil
		}
	}
	if depth > 0 {
		return i, p.toks[len(p.toks)-1].errorf("a { is not closed; add the missing }")
	}
	return i, nil
}

// name returns the unquoted text of a word or string token at i.
func (p *ruleParser) name(i int) (string, bool) {
	if i >= len(p.toks) {
		return "", false
	}
	switch t := p.toks[i]; t.kind {
	case tWord:
		return t.text, true
	case tString:
		return strings.Trim(t.text, `"`), true
	}
	return "", false
}

// names returns the words and strings from i up to the first other token.
func (p *ruleParser) names(i int) []string {
	var out []string
	for {
		n, ok := p.name(i)
		if !ok {
			return out
		}
		out = append(out, n)
		i++
	}
}

func (p *ruleParser) top() error {
	for p.pos < len(p.toks) {
		t := p.toks[p.pos]
		if isSep(t) {
			p.pos++
			continue
		}
		if t.kind == tRBrace {
			return t.errorf("unexpected }")
		}
		if err := p.command(); err != nil {
			return err
		}
	}
	return nil
}

// command handles one top-level statement starting at p.pos.
func (p *ruleParser) command() error {
	start := p.pos
	words := p.names(start)
	verb, obj, rest := "add", "", 0
	switch {
	case len(words) == 0:
	case commands[words[0]] && len(words) > 1:
		verb, obj, rest = words[0], words[1], 2
	default:
		obj, rest = words[0], 1
	}
	spec := words[rest:]
	switch {
	case obj == "table" && (verb == "add" || verb == "create"):
		fam, table, n := tableSpec(spec)
		if brace := start + rest + n; n > 0 && brace < len(p.toks) && p.toks[brace].kind == tLBrace {
			p.pos = brace + 1
			if err := p.tableBlock(fam, table); err != nil {
				return err
			}
		}
	case obj == "chain" && (verb == "add" || verb == "create"):
		key, n := chainSpec(spec)
		if n > 0 {
			p.declare(key)
		}
		if brace := start + rest + n; n > 0 && brace < len(p.toks) && p.toks[brace].kind == tLBrace {
			p.pos = brace + 1
			if err := p.chainBlock(key); err != nil {
				return err
			}
		}
	case obj == "rule" && (verb == "add" || verb == "insert"):
		return p.ruleCommand(verb, start, start+rest)
	case (verb == "flush" || verb == "delete" || verb == "destroy") && obj == "ruleset":
		p.drop(func(k ChainKey) bool { return len(spec) == 0 || k.Family == spec[0] })
	case (verb == "flush" || verb == "delete" || verb == "destroy") && obj == "table":
		fam, table, _ := tableSpec(spec)
		match := func(k ChainKey) bool { return k.Family == fam && k.Table == table }
		if verb == "flush" {
			p.empty(match)
		} else {
			p.drop(match)
		}
	case (verb == "flush" || verb == "delete" || verb == "destroy") && obj == "chain":
		key, _ := chainSpec(spec)
		if verb == "flush" {
			p.empty(func(k ChainKey) bool { return k == key })
		} else {
			p.drop(func(k ChainKey) bool { return k == key })
		}
	}
	end, err := p.stmtEnd(p.pos)
	if err != nil {
		return err
	}
	if end < len(p.toks) && p.toks[end].kind == tRBrace {
		return p.toks[end].errorf("unexpected }")
	}
	p.pos = end
	return nil
}

func (p *ruleParser) declare(k ChainKey) {
	if _, ok := p.out[k]; !ok {
		p.out[k] = []Location{}
	}
}

func (p *ruleParser) empty(match func(ChainKey) bool) {
	for k := range p.out {
		if match(k) {
			p.out[k] = []Location{}
		}
	}
}

func (p *ruleParser) drop(match func(ChainKey) bool) {
	for k := range p.out {
		if match(k) {
			delete(p.out, k)
		}
	}
}

// tableSpec parses [family] name, returning how many words it used.
func tableSpec(w []string) (family, table string, n int) {
	switch {
	case len(w) >= 2 && families[w[0]]:
		return w[0], w[1], 2
	case len(w) >= 1:
		return "ip", w[0], 1
	}
	return "", "", 0
}

// chainSpec parses [family] table chain, returning how many words it used.
func chainSpec(w []string) (ChainKey, int) {
	switch {
	case len(w) >= 3 && families[w[0]]:
		return ChainKey{w[0], w[1], w[2]}, 3
	case len(w) >= 2 && !families[w[0]]:
		return ChainKey{"ip", w[0], w[1]}, 2
	}
	return ChainKey{}, 0
}

// ruleCommand handles `add rule` and `insert rule`; i is the first token after "rule".
func (p *ruleParser) ruleCommand(verb string, start, i int) error {
	spec := p.names(i)
	key, n := chainSpec(spec)
	if n == 0 {
		return p.toks[start].errorf("%s rule needs [family] table chain", verb)
	}
	i += n
	index := -1
	if w, ok := p.name(i); ok && (w == "index" || w == "position" || w == "handle") {
		if v, ok := p.name(i + 1); ok {
			if w == "index" {
				if x, err := strconv.Atoi(v); err == nil {
					index = x
				}
			}
			i += 2
		}
	}
	end, err := p.stmtEnd(i)
	if err != nil {
		return err
	}
	loc := Location{File: p.toks[start].file, Line: p.toks[start].line, Text: p.text(i, end)}
	rules := p.out[key]
	switch {
	case verb == "add" && index >= 0 && index < len(rules):
		rules = slices.Insert(rules, index+1, loc)
	case verb == "insert" && index >= 0 && index < len(rules):
		rules = slices.Insert(rules, index, loc)
	case verb == "add":
		rules = append(rules, loc)
	default:
		rules = slices.Insert(rules, 0, loc)
	}
	p.out[key] = rules
	if end < len(p.toks) && p.toks[end].kind == tRBrace {
		return p.toks[end].errorf("unexpected }")
	}
	p.pos = end
	return nil
}

// tableBlock parses a table block from just after its {, through its }.
func (p *ruleParser) tableBlock(family, table string) error {
	return p.block(fmt.Sprintf("table %s %s", family, table), func(t token) error {
		if t.kind == tWord && t.text == "chain" {
			if name, ok := p.name(p.pos + 1); ok && p.pos+2 < len(p.toks) && p.toks[p.pos+2].kind == tLBrace {
				key := ChainKey{family, table, name}
				p.declare(key)
				p.pos += 3
				return p.chainBlock(key)
			}
		}
		end, err := p.stmtEnd(p.pos)
		if err != nil {
			return err
		}
		p.pos = end
		return nil
	})
}

// chainBlock parses a chain block from just after its {, through its }.
func (p *ruleParser) chainBlock(key ChainKey) error {
	return p.block("chain "+key.Chain, func(t token) error {
		end, err := p.stmtEnd(p.pos)
		if err != nil {
			return err
		}
		if !(t.kind == tWord && chainStatements[t.text]) {
			p.out[key] = append(p.out[key], Location{File: t.file, Line: t.line, Text: p.text(p.pos, end)})
		}
		p.pos = end
		return nil
	})
}

// block runs stmt for each statement of a block, from just after its {
// through its }; stmt starts at p.pos, on token t, and moves p.pos past
// what it read. what names the block in the error for a missing }.
func (p *ruleParser) block(what string, stmt func(t token) error) error {
	for p.pos < len(p.toks) {
		t := p.toks[p.pos]
		switch {
		case isSep(t):
			p.pos++
			continue
		case t.kind == tRBrace:
			p.pos++
			return nil
		}
		if err := stmt(t); err != nil {
			return err
		}
	}
	return p.toks[len(p.toks)-1].errorf("%s: { is not closed; add the missing }", what)
}

// text joins tokens [i, j) as written, one space wherever the source had
// whitespace, a comment or a line break.
func (p *ruleParser) text(i, j int) string {
	var b strings.Builder
	for k := i; k < j; k++ {
		t := p.toks[k]
		if t.kind == tNewline {
			continue
		}
		if b.Len() > 0 && (t.space || p.toks[k-1].kind == tNewline) {
			b.WriteByte(' ')
		}
		b.WriteString(strings.ReplaceAll(t.text, "\n", " ")) // a string may span lines
	}
	return b.String()
}
