package main

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/fwslot/fwslot/internal/slots"
)

// slotLine formats one slot of a status.
func slotLine(v any) string {
	info, _ := v.(*slots.SlotInfo)
	if info == nil {
		return "(empty)"
	}
	parts := []string{fmt.Sprintf("version %d", info.Version), "slot " + string(info.Slot), short(info.Hash)}
	if info.Time != "" {
		parts = append(parts, info.Time)
	}
	if info.User != "" {
		parts = append(parts, printable(info.User))
	}
	if info.Message != "" {
		parts = append(parts, fmt.Sprintf("%q", info.Message))
	}
	return strings.Join(parts, "  ")
}

// printable returns s with control characters, invisible formatting
// characters (bidirectional overrides...) and invalid UTF-8 written as Go
// escapes, so that a stored user name or message cannot forge or hide rows
// of a table printed on a terminal. Import refuses such text; versions
// written before that, or user names from the environment, may hold it.
func printable(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError:
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				fmt.Fprintf(&b, "\\x%02x", s[i])
				continue
			}
			b.WriteRune(r)
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
