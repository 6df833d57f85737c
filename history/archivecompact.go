package history

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/klauspost/compress/zstd"
	bolt "go.etcd.io/bbolt"
)

// The compact archive (format 2). Each version entry holds its metadata
// and a "content" manifest (the streams of its flattened source and its
// files, as stream.go stores them) instead of the text; the chunks are
// entries of their own, blobs/<sha256 of the content>, each written once
// per archive however many versions hold it, as history stores it (a
// zstd frame, or a delta against chunks written before it). The compiled
// forms are left out: import rebuilds them from the sources anyway.
// Format 1 archives (content inline, compiled forms included) still read.

// blobEntryPrefix names the chunk entries of an archive.
const blobEntryPrefix = "blobs/"

// archiveEntry is a version entry of a compact archive.
type archiveEntry struct {
	Record
	Content *sourceManifest `json:"content,omitempty"`
}

// compactWriter collects what a compact archive needs: the entries of the
// chunks not written yet, in an order where a delta follows its bases.
type compactWriter struct {
	s       *Store
	written map[blobKey]bool
	put     func(name string, data []byte) error
}

// version writes the chunks of version n of target that the archive
// lacks and returns its entry.
func (w *compactWriter) version(target string, v Version) (archiveEntry, error) {
	e := archiveEntry{Record: Record{Version: v}}
	e.Version.Summary = nil
	err := w.s.view(func(tx *bolt.Tx) error {
		tb := targetBucket(tx, target)
		b, err := openBlobs(tx, &w.s.codec, false)
		if err != nil {
			return err
		}
		m, _, err := storedStreams(tb, u64(v.Number))
		if err != nil {
			return err
		}
		if m == nil { // stored before schema 3: chunk it now
			doc, err := readSource(b, tb, u64(v.Number))
			if err != nil {
				return err
			}
			m = &sourceManifest{Files: []fileStream{}}
			if m.Source, err = w.chunked([]byte(doc.Source)); err != nil {
				return err
			}
			for _, f := range doc.Files {
				st, err := w.chunked(f.Content)
				if err != nil {
					return err
				}
				m.Files = append(m.Files, fileStream{Path: f.Path, Stream: st})
			}
		} else {
			m.Canon = nil // import computes its own
			for _, st := range m.streams() {
				for _, c := range st.Chunks {
					k, err := parseKey(c.Key)
					if err != nil {
						return err
					}
					if err := w.blob(b, k); err != nil {
						return err
					}
				}
			}
		}
		e.Content = m
		return nil
	})
	return e, err
}

// blob writes stored blob k, after its delta bases, unless written.
func (w *compactWriter) blob(b *blobs, k blobKey) error {
	if w.written[k] {
		return nil
	}
	val := b.value(k)
	if len(val) == 0 {
		return fmt.Errorf("blob %x is missing", k[:8])
	}
	bases, _, _, err := parseDelta(val)
	if err != nil {
		return err
	}
	for _, bk := range bases {
		if err := w.blob(b, bk); err != nil {
			return err
		}
	}
	w.written[k] = true
	return w.put(blobEntryPrefix+hex.EncodeToString(k[:]), val)
}

// chunked cuts data into chunks, writes those not written as whole blobs
// and returns its stream.
func (w *compactWriter) chunked(data []byte) (stream, error) {
	if err := w.s.codec.init(); err != nil {
		return stream{}, err
	}
	st := stream{Size: int64(len(data)), Chunks: []chunk{}}
	for _, c := range chunks(data) {
		k := blobKey(sha256.Sum256(c))
		if !w.written[k] {
			w.written[k] = true
			if err := w.put(blobEntryPrefix+hex.EncodeToString(k[:]), w.s.codec.enc.EncodeAll(c, []byte{blobZstd})); err != nil {
				return st, err
			}
		}
		st.Chunks = append(st.Chunks, chunk{Key: hex.EncodeToString(k[:]), Size: int64(len(c))})
	}
	return st, nil
}

// archiveBlobs reads the chunks of a compact archive.
type archiveBlobs struct {
	vals map[blobKey][]byte
	dec  *zstd.Decoder
	// budget is what the content of the versions may still expand to.
	budget int64
}

// addEntry keeps a blobs/ entry.
func (a *archiveBlobs) addEntry(name string, data []byte) error {
	h, err := parseKey(strings.TrimPrefix(name, blobEntryPrefix))
	if err != nil {
		return fmt.Errorf("archive entry %q: %w", name, err)
	}
	if _, dup := a.vals[h]; dup {
		return fmt.Errorf("the archive holds %q twice", name)
	}
	a.vals[h] = data
	return nil
}

// get returns the checked content of chunk k.
func (a *archiveBlobs) get(k blobKey) ([]byte, error) {
	val := a.vals[k]
	if len(val) == 0 {
		return nil, fmt.Errorf("the archive lacks chunk %x", k[:8])
	}
	return decodeBlob(a.dec, "chunk", k, val, a.get, func(bk blobKey) []byte { return a.vals[bk] })
}

// read returns the bytes of a stream of the archive, within the budget.
func (a *archiveBlobs) read(st stream) ([]byte, error) {
	if st.Size < 0 || st.Size > maxEntryBytes || st.Size > a.budget {
		return nil, fmt.Errorf("a stream of %d bytes is more than an archive may expand to", st.Size)
	}
	a.budget -= st.Size
	return st.assemble(a.get)
}

// decodeEntry reads a version entry of either format into a Record.
func (a *archiveBlobs) decodeEntry(name string, data []byte) (Record, error) {
	var e archiveEntry
	if err := json.Unmarshal(data, &e); err != nil {
		return Record{}, fmt.Errorf("%q: %w", name, err)
	}
	rec := e.Record
	rec.Version.Summary = nil
	if e.Content == nil {
		return rec, nil
	}
	src, err := a.read(e.Content.Source)
	if err != nil {
		return Record{}, fmt.Errorf("%q: source: %w", name, err)
	}
	rec.Source, rec.Files = string(src), nil
	for _, f := range e.Content.Files {
		content, err := a.read(f.Stream)
		if err != nil {
			return Record{}, fmt.Errorf("%q: file %s: %w", name, f.Path, err)
		}
		rec.Files = append(rec.Files, File{Path: f.Path, Content: content})
	}
	return rec, nil
}
