package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/rulediff"
)

// TestDiffStoredVersionsFromHistory: diff of two stored versions compares
// the canonical forms history kept when it stored them: it gives the
// changed rule and the changed elements of a big set, with no kernel, no
// namespace and no nft (the compiled forms stored here cannot be decoded,
// so any rendering would fail), and equal compiled forms mean no
// differences whatever the sources' spelling.
func TestDiffStoredVersionsFromHistory(t *testing.T) {
	set := func(changed int) string {
		var b strings.Builder
		for i := range 20000 {
			a := 10<<24 + i
			if i%100 == changed {
				a = 172<<24 + i
			}
			fmt.Fprintf(&b, "%d.%d.%d.%d, ", a>>24, a>>16&255, a>>8&255, a&255)
		}
		return strings.TrimSuffix(b.String(), ", ")
	}
	src := func(port, changed int) string {
		return fmt.Sprintf("table inet filter {\n\tset big { type ipv4_addr; elements = { %s } }\n\tchain input {\n\t\ttype filter hook input priority 0; policy drop;\n\t\ttcp dport %d accept\n\t}\n}\n", set(changed), port)
	}
	db := filepath.Join(t.TempDir(), "h.db")
	s, err := history.Open(db, history.Options{Canonical: rulediff.CanonicalSource})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range []struct {
		src      string
		compiled string
	}{
		{src(22, -1), "not a compiled form 1"},
		{src(2222, 7), "not a compiled form 2"},
		{strings.Replace(src(22, -1), "priority 0", "priority filter", 1), "not a compiled form 1"},
	} {
		if _, err := s.AddVersion("netns:nowhere", history.Version{Source: v.src, Message: fmt.Sprint(i)}, []byte(v.compiled)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	g := []string{"--netns", "nowhere", "--db", db}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"rule and elements", []string{"diff", "1", "2"}, []string{"--- version 1\n+++ version 2\n", "- tcp dport 22 accept", "+ tcp dport 2222 accept",
			"- element 10.0.0.7", "+ element 172.0.0.7", "2 objects differ (+201 -201 lines)"}},
		{"same compiled form", []string{"diff", "1", "3"}, []string{"no differences in the rulesets"}},
	}
	for _, tt := range tests {
		out, code := run(t, append(append([]string{}, g...), tt.args...)...)
		if code != 0 {
			t.Fatalf("%s: exit %d\n%s", tt.name, code, out)
		}
		for _, w := range tt.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: output lacks %q:\n%s", tt.name, w, out)
			}
		}
	}
}
