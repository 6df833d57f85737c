package rulediff

import (
	"fmt"
	"strings"
)

// canonTok is one token of a source: a word, a quoted string, or one of
// { } ; , and "\n".
type canonTok struct {
	text string
	line int
}

func (t canonTok) sep() bool { return t.text == ";" || t.text == "\n" }

// lexCanon splits src into tokens, dropping comments and line
// continuations.
func lexCanon(src string) ([]canonTok, error) {
	out := make([]canonTok, 0, len(src)/6)
	line := 1
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '\\' && i+1 < len(src) && src[i+1] == '\n':
			i += 2
			line++
		case c == '\n':
			out = append(out, canonTok{"\n", line})
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '{' || c == '}' || c == ';' || c == ',':
			out = append(out, canonTok{src[i : i+1], line})
			i++
		case c == '"':
			j := i + 1
			for j < len(src) && src[j] != '"' && src[j] != '\n' {
				j++
			}
			if j >= len(src) || src[j] != '"' {
				return nil, fmt.Errorf("line %d: unterminated string", line)
			}
			out = append(out, canonTok{src[i : j+1], line})
			i = j + 1
		default:
			j := i
			for j < len(src) && !wordEnd[src[j]] {
				j++
			}
			if j < len(src) && src[j] == '"' { // a word with a quoted part: ifname"*"
				k := strings.IndexByte(src[j+1:], '"')
				if k < 0 {
					return nil, fmt.Errorf("line %d: unterminated string", line)
				}
				j += k + 2
				for j < len(src) && !strings.ContainsRune(" \t\r\n{};,#", rune(src[j])) {
					j++
				}
			}
			out = append(out, canonTok{src[i:j], line})
			i = j
		}
	}
	return out, nil
}

// wordEnd marks the bytes that end a word.
var wordEnd = func() (t [256]bool) {
	for _, c := range []byte(" \t\r\n{};,#\"") {
		t[c] = true
	}
	return t
}()
