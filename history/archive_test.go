package history

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
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
	if _, err := s.addActivation("netns:lab", Activation{To: 3, How: "swap"}); err != nil {
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

// TestArchiveCompact: an export carries the compact form: versions of a
// big set that differ by 1% take a small fraction of their sources, each
// chunk once; versions stored before schema 3 are chunked on the way
// out; what ReadArchive returns is byte-identical to what was stored; a
// chunk that does not match its name, or a missing one, is refused.
func TestArchiveCompact(t *testing.T) {
	const n = 100_000
	s, _ := openTemp(t)
	srcs := addBigSets(t, s, n, 3, func(src string) []File {
		return []File{{Path: "/m.nft", Content: []byte(src)}, {Path: "/inc.nft", Content: []byte("define unchanged = 1\n")}}
	})
	var buf bytes.Buffer
	if err := s.WriteArchive(&buf, "host"); err != nil {
		t.Fatal(err)
	}
	t.Logf("3 versions of %d-byte sources (and as many in files and compiled forms): archive %d bytes", len(srcs[0]), buf.Len())
	if buf.Len() > len(srcs[0])/2 {
		t.Errorf("the archive of 3 versions is %d bytes, more than half of one %d-byte source", buf.Len(), len(srcs[0]))
	}
	m, recs, _, err := ReadArchive(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if m.FormatVer != archiveFormatVersion || len(recs) != 3 {
		t.Fatalf("manifest %+v, %d records", m, len(recs))
	}
	for i, r := range recs {
		if r.Source != srcs[i] || len(r.Files) != 2 || string(r.Files[0].Content) != srcs[i] || string(r.Files[1].Content) != "define unchanged = 1\n" || r.Compiled != nil {
			t.Fatalf("version %d does not read back as stored", r.Number)
		}
	}
	// Damage: a chunk's bytes replaced by another chunk's, a chunk left out.
	tests := []struct {
		name string
		edit func(entries map[string][]byte, names []string)
		want string
	}{
		{"swapped chunk", func(e map[string][]byte, names []string) {
			var blobs []string
			for _, n := range names {
				if strings.HasPrefix(n, blobEntryPrefix) {
					blobs = append(blobs, n)
				}
			}
			e[blobs[0]], e[blobs[1]] = e[blobs[1]], e[blobs[0]]
		}, "does not match"},
		{"missing chunk", func(e map[string][]byte, names []string) {
			for _, n := range names {
				if strings.HasPrefix(n, blobEntryPrefix) {
					delete(e, n)
					return
				}
			}
		}, "lacks chunk"},
	}
	for _, tt := range tests {
		entries, names := untar(t, buf.Bytes())
		tt.edit(entries, names)
		if _, _, _, err := ReadArchive(bytes.NewReader(retar(t, entries, names))); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
}

func untar(t *testing.T, data []byte) (map[string][]byte, []string) {
	t.Helper()
	out := map[string][]byte{}
	var names []string
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out, names
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[hdr.Name] = b
		names = append(names, hdr.Name)
	}
}

func retar(t *testing.T, entries map[string][]byte, names []string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		data, ok := entries[n]
		if !ok {
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o600, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
