package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/slots"
)

func TestPrintable(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text, ünïcode", "plain text, ünïcode"},
		{"a\nb", `a\nb`},
		{"\x1b[2Jroot", `\x1b[2Jroot`},
		{"tab\there", `tab\there`},
		{"cr\rlf", `cr\rlf`},
		{"bidi \u202eevil", `bidi \u202eevil`},
		{"bad \xff byte", `bad \xff byte`},
		{"", ""},
	}
	for _, tt := range tests {
		if got := printable(tt.in); got != tt.want {
			t.Errorf("printable(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestHistoryShowsNoControlCharacters: a message with a newline (given to
// load -m; import refuses them) cannot add a row to `fwslot history`.
func TestHistoryShowsNoControlCharacters(t *testing.T) {
	_, g := newTarget(t)
	forged := "ok\n99  2026-01-01 00:00:00  root  000000000000  +0 -0  1  production  approved"
	if out, code := run(t, append(g, "load", writeFile(t, "r.nft", good), "-m", forged)...); code != 0 {
		t.Fatalf("load: %s", out)
	}
	out, code := run(t, append(g, "history")...)
	if code != 0 {
		t.Fatalf("history: %s", out)
	}
	if strings.Contains(out, "\n99 ") || !strings.Contains(out, `ok\n99`) {
		t.Errorf("the message forged a row:\n%s", out)
	}
	if n := strings.Count(out, "\n"); n != 2 {
		t.Errorf("history printed %d lines, want 2 (header and one version):\n%s", n, out)
	}
}

// TestExitCodesOfRefusals: the refusals this hardening added are bad input
// or a bad setup the operator must fix (exit 2), not failed operations.
func TestExitCodesOfRefusals(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{"too many rules", fmt.Errorf("r.nft: %w", &slots.LimitError{Kind: "rules", Count: 2_000_000, Limit: 1_000_000})},
		{"shared history directory", fmt.Errorf("open: %w", history.ErrInsecure)},
		{"untrusted import", usageError{fmt.Errorf("import x.tar: %w", history.ErrUntrusted)}},
	}
	for _, tt := range tests {
		if got := exitCode(tt.err); got != exitUsage {
			t.Errorf("%s: exit %d, want %d", tt.name, got, exitUsage)
		}
	}
}
