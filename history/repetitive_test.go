package history

import (
	"strings"
	"testing"

	"github.com/fwslot/fwslot/internal/gen"
)

// withCounters gives every step-th rule of src that ends in accept a
// counter, as the scale benchmark's 1% change does (bench/scale.go
// changeRules).
func withCounters(src string, step int) string {
	lines := strings.Split(src, "\n")
	k := 0
	for i, l := range lines {
		if strings.HasPrefix(l, "\t\t") && strings.HasSuffix(l, " accept") && !strings.Contains(l, "policy") && !strings.Contains(l, "counter") {
			if k%step == 0 {
				lines[i] = strings.TrimSuffix(l, " accept") + " counter accept"
			}
			k++
		}
	}
	return strings.Join(lines, "\n")
}

// TestRepetitiveDelta: a second version of a generated 100k-rule
// ruleset (its rules are lines of a few shapes, as its compiled form is
// records of a few shapes) with 1% or 0.1% of the rules changed adds at
// most 0.5% of the source, and both versions read back byte-identical. Before a delta's window was anchored near its guessed
// place, a stretch of the chunk was found in the first line of the bases
// with the same bytes, often far from the chunk's own, and the window
// missed most of the chunk: 1% changed cost 1.38% of the source here
// (now 0.27%), and 14% of the source in the real compiled form.
func TestRepetitiveDelta(t *testing.T) {
	src1 := gen.Ruleset(gen.Options{Rules: 100_000, Seed: 9000})
	for _, tt := range []struct {
		name string
		step int
	}{{"1% of the rules", 100}, {"0.1% of the rules", 1000}} {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openTemp(t)
			src2 := withCounters(src1, tt.step)
			// The source stands in for the compiled form too (the
			// same chunks, stored once).
			if _, err := s.AddVersion("host", Version{Source: src1}, []byte(src1)); err != nil {
				t.Fatal(err)
			}
			checkStore(t, s)
			first, _ := blobBytes(t, s)
			if _, err := s.AddVersion("host", Version{Source: src2}, []byte(src2)); err != nil {
				t.Fatal(err)
			}
			checkStore(t, s)
			second, _ := blobBytes(t, s)
			growth := second - first
			t.Logf("source %d bytes: first version %d bytes stored, second +%d (%.2f%% of the source)", len(src1), first, growth, 100*float64(growth)/float64(len(src1)))
			if growth > int64(len(src1))/200 {
				t.Errorf("second version adds %d bytes, more than 0.5%% of the %d-byte source", growth, len(src1))
			}
			for i, want := range []string{src1, src2} {
				v, err := s.Get("host", uint64(i+1))
				if err != nil {
					t.Fatal(err)
				}
				c, err := s.Compiled("host", uint64(i+1))
				if err != nil {
					t.Fatal(err)
				}
				if v.Source != want || string(c) != want {
					t.Fatalf("version %d does not read back as stored", i+1)
				}
			}
		})
	}
}
