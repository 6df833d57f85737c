package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestScaleChanges: the scale section's "1% changed" files change what
// they say: changeSet every 100th of n elements, changeRules exactly
// count rules, nothing else.
func TestScaleChanges(t *testing.T) {
	dir := t.TempDir()
	orig, _, _, err := writeBigSet(dir, 1000, 1, "x")
	if err != nil {
		t.Fatal(err)
	}
	changed, err := changeSet(dir, 1000, 1)
	if err != nil {
		t.Fatal(err)
	}
	a, b := elems(t, orig), elems(t, changed)
	if len(a) != 1000 || len(b) != 1000 {
		t.Fatalf("%d and %d elements, want 1000", len(a), len(b))
	}
	diff := 0
	for i := range a {
		if a[i] != b[i] {
			diff++
		}
	}
	if diff != 10 {
		t.Fatalf("%d of 1000 elements changed, want 10", diff)
	}

	f, err := WriteRuleset(dir, 2000, 1)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "changed.nft")
	if err := changeRules(f.Plain, dst, 20); err != nil {
		t.Fatal(err)
	}
	x, y := lines(t, f.Plain), lines(t, dst)
	if len(x) != len(y) {
		t.Fatalf("%d lines became %d", len(x), len(y))
	}
	diff = 0
	for i := range x {
		if x[i] != y[i] {
			if y[i] != strings.TrimSuffix(x[i], " accept")+" counter accept" {
				t.Fatalf("line %d changed otherwise: %q -> %q", i+1, x[i], y[i])
			}
			diff++
		}
	}
	if diff != 20 {
		t.Fatalf("%d rules changed, want 20", diff)
	}
}

func elems(t *testing.T, p string) []string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	s = s[strings.Index(s, "elements = {")+len("elements = {"):]
	s = s[:strings.Index(s, "}")]
	var out []string
	for _, e := range strings.Split(s, ",") {
		out = append(out, strings.TrimSpace(e))
	}
	return out
}

func lines(t *testing.T, p string) []string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(string(b), "\n")
}
