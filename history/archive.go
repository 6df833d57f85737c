package history

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
)

// The export archive: a tar of manifest.json, then one versions/N.json
// per version, then activations.json, written by WriteArchive (fwslot
// export) and read by ReadArchive (fwslot import). From format 2 a
// version entry names its chunks, which are entries of their own, each
// once (archivecompact.go); format 1 entries hold the whole Record.

// ArchiveFormat names the archive layout, in the manifest's format field.
const ArchiveFormat = "fwslot-history"

// archiveFormatVersion is the version of the archive layout written:
// 2 is the compact archive (archivecompact.go); 1 still reads.
const archiveFormatVersion = 2

// ArchiveSchema is the layout of the records in an archive. It is not the
// history file's schema (schemaVersion): schema 2 of the file added format
// bytes to stored values, which archives never held.
const ArchiveSchema = 1

// Limits of an archive. An archive is read whole before anything is
// written, so a small archive that declares huge entries (a tar header
// may claim any size; a sparse entry expands holes) must be refused from
// its headers, before its bytes are read.
const (
	// maxEntryBytes bounds one entry: a version with its flattened
	// source, its original files and its compiled form.
	maxEntryBytes = 256 << 20
	// maxArchiveBytes bounds the sum of all entries.
	maxArchiveBytes = 2 << 30
)

// Manifest is the first entry of an archive.
type Manifest struct {
	Format      string         `json:"format"`
	FormatVer   int            `json:"format_version"`
	Schema      int            `json:"schema"`
	Target      string         `json:"target"`
	HistoryID   string         `json:"history_id,omitempty"`
	Exported    time.Time      `json:"exported"`
	Sequence    uint64         `json:"sequence"`
	Versions    []ManifestItem `json:"versions"`
	Activations int            `json:"activations"`
}

// ManifestItem lists one version of an archive and the entry holding it.
type ManifestItem struct {
	Version uint64 `json:"version"`
	Hash    string `json:"hash"`
	Entry   string `json:"entry"`
}

// VersionEntry is the name of version n's entry in an archive.
func VersionEntry(n uint64) string { return fmt.Sprintf("versions/%08d.json", n) }

// WriteArchive writes the whole history of target (every version with its
// source, files and compiled form, every activation, the version sequence
// and the history's identity) to w as an archive. Versions are read one
// at a time, so a large history is never all in memory.
func (s *Store) WriteArchive(w io.Writer, target string) error {
	vs, err := s.Versions(target)
	if err != nil {
		return err
	}
	acts, err := s.Activations(target)
	if err != nil {
		return err
	}
	seq, err := s.sequence(target)
	if err != nil {
		return err
	}
	id, err := s.ID()
	if err != nil {
		return err
	}
	m := Manifest{Format: ArchiveFormat, FormatVer: archiveFormatVersion, Schema: ArchiveSchema, Target: target, HistoryID: id,
		Exported: time.Now().UTC(), Sequence: seq, Activations: len(acts), Versions: []ManifestItem{}}
	for _, v := range vs {
		m.Versions = append(m.Versions, ManifestItem{Version: v.Number, Hash: v.Hash, Entry: VersionEntry(v.Number)})
	}
	tw := tar.NewWriter(w)
	putRaw := func(name string, data []byte) error {
		hdr := &tar.Header{Name: name, Mode: 0o600, Size: int64(len(data)), ModTime: m.Exported, Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	put := func(name string, v any) error {
		data, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		return putRaw(name, data)
	}
	if err := put("manifest.json", m); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	cw := &compactWriter{s: s, written: map[blobKey]bool{}, put: putRaw}
	for _, v := range vs {
		e, err := cw.version(target, v)
		if err != nil {
			return fmt.Errorf("export version %d of %s: %w", v.Number, target, err)
		}
		if err := put(VersionEntry(v.Number), e); err != nil {
			return fmt.Errorf("export: %w", err)
		}
	}
	if acts == nil {
		acts = []Activation{}
	}
	if err := put("activations.json", acts); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

// ReadArchive reads an archive written by WriteArchive, refusing entries
// that are not plain files, are larger than maxEntryBytes or bring the
// total past maxArchiveBytes, manifests that repeat a version or
// disagree with the entries, and archives of a newer layout. The records'
// compiled forms are dropped: the caller must rebuild them from the
// sources (see Import). What it returns still needs CheckImport.
func ReadArchive(r io.Reader) (Manifest, []Record, []Activation, error) {
	var m Manifest
	var acts []Activation
	entries := map[string][]byte{}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(4*chunkMax))
	if err != nil {
		return m, nil, nil, fmt.Errorf("read archive: zstd: %w", err)
	}
	defer dec.Close()
	ab := &archiveBlobs{vals: map[blobKey][]byte{}, dec: dec, budget: maxArchiveBytes}
	tr := tar.NewReader(r)
	seenManifest := false
	var total int64
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return m, nil, nil, fmt.Errorf("read archive: %w", err)
		}
		if err := checkEntry(hdr, &total); err != nil {
			return m, nil, nil, err
		}
		data, err := io.ReadAll(io.LimitReader(tr, hdr.Size))
		if err != nil {
			return m, nil, nil, fmt.Errorf("read archive entry %q: %w", hdr.Name, err)
		}
		switch {
		case hdr.Name == "manifest.json":
			if seenManifest {
				return m, nil, nil, errors.New("the archive holds manifest.json twice")
			}
			if err := json.Unmarshal(data, &m); err != nil {
				return m, nil, nil, fmt.Errorf("manifest.json: %w", err)
			}
			seenManifest = true
		case hdr.Name == "activations.json":
			if acts != nil {
				return m, nil, nil, errors.New("the archive holds activations.json twice")
			}
			if err := json.Unmarshal(data, &acts); err != nil {
				return m, nil, nil, fmt.Errorf("activations.json: %w", err)
			}
			if acts == nil {
				acts = []Activation{}
			}
		case strings.HasPrefix(hdr.Name, "versions/"):
			if _, dup := entries[hdr.Name]; dup {
				return m, nil, nil, fmt.Errorf("the archive holds %q twice", hdr.Name)
			}
			entries[hdr.Name] = data
		case strings.HasPrefix(hdr.Name, blobEntryPrefix):
			if err := ab.addEntry(hdr.Name, data); err != nil {
				return m, nil, nil, err
			}
		}
	}
	if !seenManifest || m.Format != ArchiveFormat {
		return m, nil, nil, errors.New("not an fwslot history export (no manifest.json of format " + ArchiveFormat + ")")
	}
	if err := checkText("the manifest's target", m.Target); err != nil {
		return m, nil, nil, err
	}
	if m.HistoryID != "" && !validID(m.HistoryID) {
		return m, nil, nil, fmt.Errorf("manifest.json: history_id %q is not an fwslot history identity", m.HistoryID)
	}
	if m.FormatVer > archiveFormatVersion || m.Schema > ArchiveSchema {
		return m, nil, nil, fmt.Errorf("the archive was written by a newer fwslot (format %d, schema %d); use a newer fwslot", m.FormatVer, m.Schema)
	}
	out := make([]Record, 0, len(m.Versions))
	seen := map[uint64]bool{}
	for _, it := range m.Versions {
		if seen[it.Version] {
			return m, nil, nil, fmt.Errorf("the manifest lists version %d twice", it.Version)
		}
		seen[it.Version] = true
		data, ok := entries[it.Entry]
		if !ok {
			return m, nil, nil, fmt.Errorf("the archive lacks %q (version %d)", it.Entry, it.Version)
		}
		rec, err := ab.decodeEntry(it.Entry, data)
		if err != nil {
			return m, nil, nil, err
		}
		// The compiled form is rebuilt from the source by the caller:
		// never keep what the archive says it is.
		rec.Compiled = nil
		if rec.Number != it.Version || !strings.EqualFold(rec.Hash, it.Hash) {
			return m, nil, nil, fmt.Errorf("%q holds version %d hash %q, the manifest says version %d hash %q", it.Entry, rec.Number, shortHash(rec.Hash), it.Version, shortHash(it.Hash))
		}
		out = append(out, rec)
	}
	if len(acts) != m.Activations {
		return m, nil, nil, fmt.Errorf("the archive holds %d activations, the manifest says %d", len(acts), m.Activations)
	}
	return m, out, acts, nil
}

// checkEntry refuses a tar entry that is not a plain file, is sparse, or
// is larger than the limits allow (total counts the entries so far).
func checkEntry(hdr *tar.Header, total *int64) error {
	if hdr.Typeflag != tar.TypeReg {
		return fmt.Errorf("archive entry %q is of tar type %q; an export holds plain files only", hdr.Name, hdr.Typeflag)
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return fmt.Errorf("archive entry %q is a sparse file; an export holds plain files only", hdr.Name)
		}
	}
	if hdr.Size < 0 || hdr.Size > maxEntryBytes {
		return fmt.Errorf("archive entry %q declares %d bytes, more than the %d an entry may hold", hdr.Name, hdr.Size, maxEntryBytes)
	}
	if *total += hdr.Size; *total > maxArchiveBytes {
		return fmt.Errorf("archive entries reach %d bytes at %q, more than the %d an archive may hold", *total, hdr.Name, int64(maxArchiveBytes))
	}
	return nil
}

// shortHash returns the first 12 characters of a hash, for messages.
func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
