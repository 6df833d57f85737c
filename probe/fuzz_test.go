package probe

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse feeds probe files to Parse: any input ends in probes or in at
// most maxParseErrors+1 errors, never a panic, and every probe parsed has
// a verdict and the line it came from.
func FuzzParse(f *testing.F) {
	seeds, err := filepath.Glob("testdata/*.probes")
	if err != nil {
		f.Fatal(err)
	}
	seeds = append(seeds, "../testdata/hostile/broken.probes")
	for _, p := range seeds {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		probes, err := Parse("f.probes", bytes.NewReader(data))
		if err != nil {
			var joined interface{ Unwrap() []error }
			if errors.As(err, &joined) && len(joined.Unwrap()) > maxParseErrors+1 {
				t.Fatalf("%d errors, want at most %d", len(joined.Unwrap()), maxParseErrors+1)
			}
			return
		}
		for _, p := range probes {
			if p.Text == "" || strings.Contains(p.Text, "\n") {
				t.Fatalf("probe %+v: text %q", p, p.Text)
			}
		}
	})
}
