package rulediff

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/fwslot/fwslot/internal/linediff"
)

// TestCountLinesMatchesLines: linediff.Count gives the counts of the edit
// script lineDiff builds, on random texts small enough for both to be exact.
func TestCountLinesMatchesLines(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	words := func(n, alphabet int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprint(r.IntN(alphabet))
		}
		return out
	}
	for i := range 500 {
		a, b := words(r.IntN(60), 1+i%8), words(r.IntN(60), 1+i%8)
		wa, wr := countOps(lineDiff(a, b))
		ga, gr := linediff.Count(a, b)
		if ga != wa || gr != wr {
			t.Fatalf("linediff.Count(%q, %q) = +%d -%d, Lines gives +%d -%d", a, b, ga, gr, wa, wr)
		}
	}
}

// allocated returns the bytes fn allocates.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestLineCountsBoundedMemory: two unrelated 150 KB versions (5,000 lines
// each) cost lineDiff a few tens of MB and linediff.Count under 2 MB, where a
// trace of full frontiers took a gigabyte.
func TestLineCountsBoundedMemory(t *testing.T) {
	a, b := make([]string, 5000), make([]string, 5000)
	for i := range a {
		a[i] = fmt.Sprintf("\t\tip saddr 10.%d.%d.0/24 tcp dport 22 accept", i/256, i%256)
		b[i] = fmt.Sprintf("\t\tip saddr 172.%d.%d.0/24 tcp dport 80 drop", i/256, i%256)
	}
	var add, rm int
	n := allocated(func() { add, rm = linediff.Count(a, b) })
	t.Logf("linediff.Count allocated %d bytes", n)
	if n > 2<<20 {
		t.Errorf("linediff.Count allocated %d bytes, want under 2 MiB", n)
	}
	if add != 5000 || rm != 5000 {
		t.Errorf("linediff.Count = +%d -%d, want +5000 -5000", add, rm)
	}
	var ops []Op
	n = allocated(func() { ops = lineDiff(a, b) })
	t.Logf("Lines allocated %d bytes", n)
	if n > 64<<20 {
		t.Errorf("Lines allocated %d bytes, want under 64 MiB", n)
	}
	if add, rm := countOps(ops); add != 5000 || rm != 5000 {
		t.Errorf("Lines = +%d -%d, want +5000 -5000", add, rm)
	}
}
