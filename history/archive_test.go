package history

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestArchiveRoundTrip: what WriteArchive writes, ReadArchive reads back
// (without the compiled forms) and Import takes into an empty history
// with the same numbers, hashes, sources, activations and sequence.
func TestArchiveRoundTrip(t *testing.T) {
	s, _ := openTemp(t)
	for i := 1; i <= 3; i++ {
		if _, err := s.AddVersion("netns:lab", Version{Source: fmt.Sprintf("v%d", i), Message: "m"}, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteVersion("netns:lab", 2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddActivation("netns:lab", Activation{To: 3, How: "swap"}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := s.WriteArchive(&buf, "netns:lab"); err != nil {
		t.Fatal(err)
	}
	m, recs, acts, err := ReadArchive(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if m.Target != "netns:lab" || m.Sequence != 3 || len(recs) != 2 || len(acts) != 1 || m.Format != ArchiveFormat || m.Schema != ArchiveSchema {
		t.Fatalf("manifest %+v, %d records, %d activations", m, len(recs), len(acts))
	}
	for i := range recs {
		if recs[i].Compiled != nil {
			t.Errorf("version %d kept the archive's compiled form", recs[i].Number)
		}
		recs[i].Compiled = []byte("rebuilt")
	}
	d, err := Open(filepath.Join(t.TempDir(), "new.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	res, err := d.Import("netns:lab", recs, acts, m.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(res.Versions) != "[1 3]" || fmt.Sprint(res.Activations) != "[1]" {
		t.Fatalf("imported %+v", res)
	}
	if v, err := d.Get("netns:lab", 3); err != nil || v.Source != "v3" {
		t.Fatalf("version 3: %+v %v", v, err)
	}
	if n, err := d.Next("netns:lab"); err != nil || n != 4 {
		t.Fatalf("next %d %v, want 4", n, err)
	}
	// A newer layout is refused, not misread.
	newer := strings.Replace(buf.String(), `"schema": 1`, `"schema": 9`, 1)
	if _, _, _, err := ReadArchive(strings.NewReader(newer)); err == nil || !strings.Contains(err.Error(), "use a newer fwslot") {
		t.Fatalf("newer archive: %v", err)
	}
}
