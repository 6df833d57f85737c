package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fwslot/fwslot/history"
)

// FuzzReadExport feeds archives to the import reader and the import
// checks: any input ends in records or an error, never a panic, and what
// passes both holds no number past history.MaxNumber, no repeated version
// and no compiled form taken from the archive.
func FuzzReadExport(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join(hostileDir, "import", "*.tar"))
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range seeds {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	// A valid archive of two versions and an activation.
	src := "table inet t { chain c { accept; } }\n"
	rec := func(n uint64, s string) history.Record {
		return history.Record{Version: history.Version{Number: n, Hash: history.HashSource(s), User: "root", Message: "m", Origin: "file",
			Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}, Source: s, Compiled: []byte("compiled")}
	}
	f.Add(hostileArchive(f, []history.Record{rec(1, src), rec(2, strings.Replace(src, "accept", "drop", 1))},
		[]history.Activation{{Seq: 1, To: 1, How: "swap", User: "root"}}, 2, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, recs, acts, err := history.ReadArchive(bytes.NewReader(data))
		if err != nil {
			return
		}
		if err := history.CheckImport(recs, acts, m.Sequence); err != nil {
			return
		}
		seen := map[uint64]bool{}
		for _, r := range recs {
			if r.Number == 0 || r.Number > history.MaxNumber || seen[r.Number] {
				t.Fatalf("version %d passed the checks (seen before: %v)", r.Number, seen[r.Number])
			}
			seen[r.Number] = true
			if r.Compiled != nil {
				t.Fatalf("version %d keeps the archive's compiled form", r.Number)
			}
		}
		if m.Sequence > history.MaxNumber {
			t.Fatalf("sequence %d passed the checks", m.Sequence)
		}
	})
}
