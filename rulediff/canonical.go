package rulediff

import (
	"errors"
	"fmt"
	"strings"
)

// canonicalText prints a canonical form for history to keep: String's
// layout, one element a line.
func canonicalText(rs *Ruleset) string { return rs.String() }

// ParseCanonical reads text printed by CanonicalSource (or String) back,
// in time linear in its size: lines are sliced out of text, not copied.
func ParseCanonical(text string) (*Ruleset, error) {
	rs := &Ruleset{}
	var tab *table
	var obj *object
	n := 0
	for len(text) > 0 {
		n++
		line := text
		if i := strings.IndexByte(text, '\n'); i >= 0 {
			line, text = text[:i], text[i+1:]
		} else {
			text = ""
		}
		switch {
		case strings.HasPrefix(line, "\t\t"):
			if obj == nil {
				return nil, fmt.Errorf("canonical form line %d: a statement outside an object", n)
			}
			obj.Lines = append(obj.Lines, line[2:])
		case line == "\t}":
			if obj == nil {
				return nil, fmt.Errorf("canonical form line %d: } outside an object", n)
			}
			obj = nil
		case strings.HasPrefix(line, "\t"):
			if tab == nil || obj != nil {
				return nil, fmt.Errorf("canonical form line %d: %q out of place", n, line)
			}
			body := line[1:]
			if head, ok := strings.CutSuffix(body, " {"); ok {
				i := strings.LastIndexByte(head, ' ')
				if i < 0 {
					return nil, fmt.Errorf("canonical form line %d: object without a name", n)
				}
				obj = &object{Kind: head[:i], Name: head[i+1:]}
				tab.Objects = append(tab.Objects, obj)
				continue
			}
			tab.Attrs = append(tab.Attrs, body)
		case line == "}":
			if tab == nil || obj != nil {
				return nil, fmt.Errorf("canonical form line %d: } out of place", n)
			}
			tab = nil
		case strings.HasPrefix(line, "table ") && strings.HasSuffix(line, " {"):
			f := strings.Fields(line)
			if len(f) != 4 || tab != nil {
				return nil, fmt.Errorf("canonical form line %d: %q", n, line)
			}
			tab = &table{Family: f[1], Name: f[2]}
			rs.tables = append(rs.tables, tab)
		case line == "":
		default:
			return nil, fmt.Errorf("canonical form line %d: %q", n, line)
		}
	}
	if tab != nil || obj != nil {
		return nil, errors.New("canonical form ends inside a block")
	}
	return rs, nil
}

// CanonicalSource is the canonical form of a flattened source as rulediff
// reads it without nft; history stores it beside each version
// (history.Options.Canonical) so that diff never runs nft on stored versions.
func CanonicalSource(src string) (string, error) {
	rs, err := FromSource(src)
	if err != nil {
		return "", err
	}
	return canonicalText(rs), nil
}
