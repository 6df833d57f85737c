package source

import (
	"bytes"
	"fmt"
	"unicode/utf8"
)

// Error is a problem at a place in a source file. Line and Col are 1-based;
// Col counts bytes, as nft does.
type Error struct {
	File string
	Line int
	Col  int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
}

type tokKind int

const (
	tWord    tokKind = iota // anything that is not one of the others
	tString                 // "..." (text keeps the quotes)
	tLBrace                 // {
	tRBrace                 // }
	tSemi                   // ;
	tNewline                // end of line
	tElems                  // the body of `elements = { ... }` (lexLists only; text without the braces)
)

// token is a lexical token of nft syntax, enough of it to find includes,
// blocks and statements. off and end are byte offsets in the file.
type token struct {
	kind      tokKind
	text      string
	file      string
	line, col int
	off, end  int
	space     bool // whitespace, a comment or a line continuation precedes it
}

func (t token) errorf(format string, args ...any) *Error {
	return &Error{File: t.file, Line: t.line, Col: t.col, Msg: fmt.Sprintf(format, args...)}
}

// checkText rejects content that is not UTF-8 text without NUL bytes.
func checkText(file string, data []byte) error {
	line, col := 1, 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == 0 || (r == utf8.RuneError && size <= 1) {
			what := "a NUL byte"
			if r != 0 {
				what = fmt.Sprintf("invalid UTF-8 (byte 0x%02x)", data[i])
			}
			return &Error{File: file, Line: line, Col: col, Msg: fmt.Sprintf("not a text file: %s; give the path of an nft ruleset", what)}
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col += size
		}
		i += size
	}
	return nil
}

// lexWith splits data into tokens the way nft's scanner delimits them:
// comments run from # to the end of the line, strings from " to the next "
// (nft has no escapes in strings), and a backslash before a newline
// continues the line. With lists set, the body of an `elements = { ... }`
// without nested braces becomes one tElems token, so a big element list
// costs one token rather than one per element. With discard set it only
// checks the text (the errors it returns) and returns no tokens: a file
// without includes needs no more.
func lexWith(file string, data []byte, lists, discard bool) ([]token, error) {
	var toks []token
	line, lineStart := 1, 0
	space := false
	emit := func(kind tokKind, start, end int) {
		if discard {
			space = false
			return
		}
		toks = append(toks, token{kind: kind, text: string(data[start:end]), file: file,
			line: line, col: start - lineStart + 1, off: start, end: end, space: space})
		space = false
	}
	isDelim := func(c byte) bool {
		switch c {
		case ' ', '\t', '\r', '\n', '{', '}', ';', '"', '#':
			return true
		}
		return false
	}
	continuation := func(i int) int { // length of a backslash-newline at i, or 0
		if data[i] != '\\' {
			return 0
		}
		if i+1 < len(data) && data[i+1] == '\n' {
			return 2
		}
		if i+2 < len(data) && data[i+1] == '\r' && data[i+2] == '\n' {
			return 3
		}
		return 0
	}
	for i := 0; i < len(data); {
		c := data[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r':
			space = true
			i++
		case c == '\n':
			emit(tNewline, i, i+1)
			i++
			line, lineStart = line+1, i
			space = false
		case continuation(i) > 0:
			i += continuation(i)
			line, lineStart = line+1, i
			space = true
		case c == '#':
			start := i
			for i < len(data) && data[i] != '\n' {
				i++
			}
			if i == len(data) {
				return nil, &Error{File: file, Line: line, Col: start - lineStart + 1,
					Msg: "nft rejects a comment at the very end of a file; add a newline after it"}
			}
			space = true
		case c == '{' && lists && len(toks) >= 2 && toks[len(toks)-1].text == "=" && toks[len(toks)-2].text == "elements" && elemsEnd(data, i) > 0:
			end := elemsEnd(data, i)
			toks = append(toks, token{kind: tElems, text: string(data[i+1 : end]), file: file,
				line: line, col: i - lineStart + 1, off: i, end: end + 1, space: space})
			space = false
			for k := i; k < end; k++ {
				if data[k] == '\n' {
					line, lineStart = line+1, k+1
				}
			}
			i = end + 1
		case c == '{':
			emit(tLBrace, i, i+1)
			i++
		case c == '}':
			emit(tRBrace, i, i+1)
			i++
		case c == ';':
			emit(tSemi, i, i+1)
			i++
		case c == '"':
			start, startLine, startCol := i, line, i-lineStart+1
			i++
			for i < len(data) && data[i] != '"' {
				if data[i] == '\n' {
					line, lineStart = line+1, i+1
				}
				i++
			}
			if i == len(data) {
				return nil, &Error{File: file, Line: startLine, Col: startCol, Msg: "string is not closed; add the missing \""}
			}
			i++
			if discard {
				space = false
				continue
			}
			toks = append(toks, token{kind: tString, text: string(data[start:i]), file: file,
				line: startLine, col: startCol, off: start, end: i, space: space})
			space = false
		default:
			start := i
			for i < len(data) && !isDelim(data[i]) && continuation(i) == 0 {
				i++
			}
			emit(tWord, start, i)
		}
	}
	return toks, nil
}

// elemsEnd returns the index of the } that closes the { at i when no { or
// ; comes first (outside strings and comments), else -1.
func elemsEnd(data []byte, i int) int {
	for k := i + 1; k < len(data); k++ {
		switch data[k] {
		case '}':
			return k
		case '{', ';':
			return -1
		case '"':
			n := bytes.IndexByte(data[k+1:], '"')
			if n < 0 {
				return -1
			}
			k += n + 1
		case '#':
			n := bytes.IndexByte(data[k:], '\n')
			if n < 0 {
				return -1
			}
			k += n
		}
	}
	return -1
}
