package source

import (
	"bytes"
	"slices"
	"strings"
)

// ElementList is the `elements = { ... }` statement of a set or map
// declared in a `table FAMILY NAME { set NAME { ... } }` block. Big sets
// are staged from it directly (slots.CompileBundle), so their elements do
// not travel through a compile namespace and back.
type ElementList struct {
	Family, Table, Set string
	Map                bool
	// Type is the words of the set's type statement: "ipv4_addr",
	// "ipv4_addr . inet_service", "inet_service : verdict".
	Type []string
	// Flags are the set's flags (commas removed); Other names the
	// first word of every other statement of the set block (auto-merge,
	// timeout, counter, size, policy, comment...).
	Flags, Other []string
	// Words are the words of the elements, separating commas removed;
	// a quoted string keeps its quotes. Element i is
	// Words[Ends[i-1]:Ends[i]] (Elem).
	Words []string
	Ends  []int32
	File  string
	Line  int

	file       int // index in Bundle.Files
	start, end int // byte span of the statement in the file
}

// Len returns the number of elements.
func (l *ElementList) Len() int { return len(l.Ends) }

// Elem returns the words of element i.
func (l *ElementList) Elem(i int) []string {
	start := int32(0)
	if i > 0 {
		start = l.Ends[i-1]
	}
	return l.Words[start:l.Ends[i]]
}

// ElementLists returns the element lists of at least min elements that
// can be staged without compiling them: each set declared once with
// elements, in a table block written in one file, with elements that are
// plain words and strings, in a bundle that has no command that could
// change them afterwards (flush, delete or destroy of sets, elements,
// tables or the ruleset, other than a `flush ruleset` it starts with).
// It returns nothing when the bundle does not qualify; a list it returns
// may still be refused by the caller, which then compiles it.
func (b *Bundle) ElementLists(min int) []ElementList {
	if !b.elementsStay() {
		return nil
	}
	var out []ElementList
	count := map[[3]string]int{}
	for i, f := range b.Files {
		if !hasBigList(f.Content, min) {
			continue
		}
		toks, err := lexWith(f.Path, f.Content, true, false)
		if err != nil {
			return nil
		}
		for _, l := range scanElementLists(toks) {
			l.file = i
			count[[3]string{l.Family, l.Table, l.Set}]++
			if l.Len() >= min {
				out = append(out, l)
			}
		}
	}
	kept := out[:0]
	for _, l := range out {
		if count[[3]string{l.Family, l.Table, l.Set}] == 1 {
			kept = append(kept, l)
		}
	}
	return kept
}

// hasBigList reports whether data may hold an element list of min or
// more elements: some "elements" followed by min-1 commas before the next
// closing brace. It spares lexing a big ruleset that has none.
func hasBigList(data []byte, min int) bool {
	for rest := data; ; {
		i := bytes.Index(rest, []byte("elements"))
		if i < 0 {
			return false
		}
		rest = rest[i+len("elements"):]
		end := bytes.IndexByte(rest, '}')
		if end < 0 {
			end = len(rest)
		}
		if bytes.Count(rest[:end], []byte(",")) >= min-1 {
			return true
		}
	}
}

// elementsStay reports whether nothing in the flattened text can remove
// or replace elements a set block declares.
func (b *Bundle) elementsStay() bool {
	if !strings.Contains(b.Flat, "flush") && !strings.Contains(b.Flat, "delete") && !strings.Contains(b.Flat, "destroy") {
		return true // no need to lex a big text for words it lacks
	}
	toks, err := lexWith(b.Main, []byte(b.Flat), true, false)
	if err != nil {
		return false
	}
	first := true
	for i := 0; i+1 < len(toks); i++ {
		t := toks[i]
		if t.kind != tWord {
			if t.kind != tNewline && t.kind != tSemi {
				first = false
			}
			continue
		}
		next := toks[i+1].text
		switch t.text {
		case "flush":
			if next == "ruleset" && first {
				break
			}
			if next == "set" || next == "map" || next == "table" || next == "ruleset" {
				return false
			}
		case "delete", "destroy":
			switch next {
			case "element", "set", "map", "table", "ruleset":
				return false
			}
		}
		first = false
	}
	return true
}

// scanElementLists finds the element lists of set and map blocks inside
// table blocks of one file.
func scanElementLists(toks []token) []ElementList {
	var out []ElementList
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		if t.kind != tWord || t.text != "table" || (i > 0 && !isSep(toks[i-1]) && toks[i-1].kind != tRBrace) {
			continue
		}
		words, j := wordsUntilBrace(toks, i+1)
		if j < 0 {
			return out
		}
		family, table := "ip", ""
		switch len(words) {
		case 1:
			table = words[0]
		case 2:
			family, table = words[0], words[1]
		default:
			continue
		}
		if !families[family] || strings.HasPrefix(table, "$") {
			continue
		}
		end := matchBrace(toks, j)
		if end < 0 {
			return out
		}
		out = append(out, scanTableBlock(toks[j+1:end], family, table)...)
		i = end
	}
	return out
}

// scanTableBlock finds set and map blocks directly inside a table block.
func scanTableBlock(toks []token, family, table string) []ElementList {
	var out []ElementList
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		if t.kind == tLBrace {
			i = matchBrace(toks, i)
			if i < 0 {
				return out
			}
			continue
		}
		if t.kind != tWord || (t.text != "set" && t.text != "map") || (i > 0 && !isSep(toks[i-1]) && toks[i-1].kind != tRBrace && toks[i-1].kind != tLBrace) {
			continue
		}
		if i+2 >= len(toks) || toks[i+1].kind != tWord || toks[i+2].kind != tLBrace || strings.HasPrefix(toks[i+1].text, "$") {
			continue
		}
		end := matchBrace(toks, i+2)
		if end < 0 {
			return out
		}
		if l, ok := scanSetBlock(toks[i+3 : end]); ok {
			l.Family, l.Table, l.Set, l.Map = family, table, toks[i+1].text, t.text == "map"
			out = append(out, l)
		}
		i = end
	}
	return out
}

// scanSetBlock reads the statements of a set block; ok is false when it
// has no plain element list.
func scanSetBlock(toks []token) (ElementList, bool) {
	var l ElementList
	found := false
	for i := 0; i < len(toks); {
		if isSep(toks[i]) {
			i++
			continue
		}
		t := toks[i]
		if t.kind != tWord {
			return l, false
		}
		if t.text == "elements" {
			if found || i+2 >= len(toks) || toks[i+1].text != "=" || toks[i+2].kind != tElems {
				return l, false
			}
			var ok bool
			if l.Words, l.Ends, ok = splitElements(toks[i+2].text); !ok {
				return l, false
			}
			l.File, l.Line, l.start, l.end, found = t.file, t.line, t.off, toks[i+2].end, true
			i += 3
			continue
		}
		j := i
		for j < len(toks) && !isSep(toks[j]) {
			if toks[j].kind == tLBrace || toks[j].kind == tRBrace {
				return l, false
			}
			j++
		}
		var words []string
		for _, w := range toks[i+1 : j] {
			words = append(words, strings.Split(strings.Trim(w.text, ","), ",")...)
		}
		switch t.text {
		case "type":
			l.Type = words
		case "flags":
			l.Flags = append(l.Flags, words...)
		default:
			l.Other = append(l.Other, t.text)
		}
		i = j
	}
	return l, found && len(l.Type) > 0
}

// splitElements splits the body of an element list into words and
// elements (commas); comments and line continuations are blanks. A word
// that is a variable, a set reference or an include, or a ; refuses the
// list.
func splitElements(body string) (words []string, ends []int32, ok bool) {
	words = make([]string, 0, len(body)/12)
	ends = make([]int32, 0, len(body)/14)
	cur := 0 // words of the element being read
	endElem := func() bool {
		if cur == 0 {
			return false
		}
		ends = append(ends, int32(len(words)))
		cur = 0
		return true
	}
	for i := 0; i < len(body); {
		c := body[i]
		switch c {
		case ' ', '\t', '\r', '\n', '\\':
			if c == '\\' && !(i+1 < len(body) && (body[i+1] == '\n' || body[i+1] == '\r')) {
				return nil, nil, false
			}
			i++
		case '#':
			n := strings.IndexByte(body[i:], '\n')
			if n < 0 {
				return nil, nil, false
			}
			i += n
		case ',':
			if !endElem() {
				return nil, nil, false
			}
			i++
		case ';', '{', '}':
			return nil, nil, false
		case '"':
			n := strings.IndexByte(body[i+1:], '"')
			if n < 0 {
				return nil, nil, false
			}
			words = append(words, body[i:i+n+2])
			cur++
			i += n + 2
		default:
			j := i
			for j < len(body) && !strings.ContainsRune(" \t\r\n,#\";{}\\", rune(body[j])) {
				j++
			}
			w := body[i:j]
			if w[0] == '$' || w[0] == '@' || w == "include" {
				return nil, nil, false
			}
			words = append(words, w)
			cur++
			i = j
		}
	}
	if cur > 0 {
		endElem()
	}
	return words, ends, true
}

// wordsUntilBrace returns the words from i up to a {, and the brace's
// index; -1 when a separator or another token comes first.
func wordsUntilBrace(toks []token, i int) ([]string, int) {
	var words []string
	for ; i < len(toks); i++ {
		switch toks[i].kind {
		case tLBrace:
			return words, i
		case tWord:
			words = append(words, toks[i].text)
		default:
			return nil, -1
		}
	}
	return nil, -1
}

// matchBrace returns the index of the } that closes the { at i, or -1.
func matchBrace(toks []token, i int) int {
	depth := 0
	for ; i < len(toks); i++ {
		switch toks[i].kind {
		case tLBrace:
			depth++
		case tRBrace:
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// WithoutElements returns a copy of b whose files lack the given element
// lists: each list statement is replaced by its newlines only, so line
// numbers stay (nft scans a run of blanks so slowly that 14 MB of spaces
// take it 14 s; newlines cost nothing). Include statements after a list
// move with the text. Main, Flat and Hash stay those of b: the copy is only
// ever compiled.
func (b *Bundle) WithoutElements(lists []ElementList) *Bundle {
	out := *b
	out.Files = append([]File(nil), b.Files...)
	byFile := map[int][]ElementList{}
	for _, l := range lists {
		byFile[l.file] = append(byFile[l.file], l)
	}
	if b.sites != nil {
		out.sites = make(map[siteKey]includeSite, len(b.sites))
		for k, v := range b.sites {
			out.sites[k] = v
		}
	}
	for i, ls := range byFile {
		slices.SortFunc(ls, func(a, b ElementList) int { return a.start - b.start })
		src := b.Files[i].Content
		c := make([]byte, 0, len(src))
		copied := 0
		// shift maps an offset in src to one in c.
		type cut struct{ at, removed int }
		var cuts []cut
		removed := 0
		for _, l := range ls {
			c = append(c, src[copied:l.start]...)
			nl := strings.Count(string(src[l.start:l.end]), "\n")
			c = append(c, strings.Repeat("\n", nl)...)
			removed += l.end - l.start - nl
			cuts = append(cuts, cut{l.end, removed})
			copied = l.end
		}
		c = append(c, src[copied:]...)
		out.Files[i].Content = c
		shift := func(off int) int {
			d := 0
			for _, ct := range cuts {
				if off >= ct.at {
					d = ct.removed
				}
			}
			return off - d
		}
		path := b.Files[i].Path
		for k, v := range b.sites {
			if k.file != path {
				continue
			}
			delete(out.sites, k)
			v.start = shift(v.start)
			out.sites[siteKey{file: k.file, off: shift(k.off)}] = v
		}
	}
	return &out
}
