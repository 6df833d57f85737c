package source

import (
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestIncludeExpansionBounded: includes that repeat at every level
// multiply; a 36 KB ruleset of three files expanding a million times took
// 20 s and 2.4 GB. Past MaxIncludes inclusions in all (repeats counted)
// the load stops with file:line of the include that went over; ordinary
// repetition loads.
func TestIncludeExpansionBounded(t *testing.T) {
	tests := []struct {
		name       string
		main, a, b string
		want       string // "" when the load must succeed
	}{
		{"a million expansions", strings.Repeat("include \"./a.nft\"\n", 1000), strings.Repeat("include \"./b.nft\"\n", 1000), "x\n",
			"a.nft:23:9: the ruleset includes files more than 1024 times in all; include each file once"},
		{"three levels", strings.Repeat("include \"./a.nft\"\n", 30), strings.Repeat("include \"./b.nft\"\n", 30), strings.Repeat("include \"./c.nft\"\n", 30),
			"the ruleset includes files more than 1024 times in all"},
		{"a defs file in 100 files", strings.Repeat("include \"./a.nft\"\n", 100), "include \"./b.nft\"\n", "define X = 1\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeTree(t, map[string]string{"main.nft": tt.main, "a.nft": tt.a, "b.nft": tt.b, "c.nft": "y\n"})
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err := Load(filepath.Join(dir, "main.nft"), Options{})
			runtime.ReadMemStats(&after)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 64<<20 {
				t.Errorf("Load allocated %d MB before refusing, want under 64", n>>20)
			}
		})
	}
}
