package history

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"unsafe"

	bolt "go.etcd.io/bbolt"
)

// Streams: from schema 3 on, a version's flattened source, each of its
// files and its compiled form are each stored as a list of chunks
// (chunk.go) kept as blobs (blob.go). The sources and compiled buckets
// then hold manifests, marked valueManifest:
//
//	sources/n   valueManifest + JSON {"source": stream, "files": [{"path", "stream"}]}
//	compiled/n  valueManifest + JSON stream
//
// Values marked valueFormat (schema 2) and unmarked ones (schema 1) stay
// as they are and are read as before: a migration never rewrites a
// version, so it cannot lose one.
const valueManifest byte = 2

// stream is one stored byte stream: its length and its chunks in order.
type stream struct {
	Size   int64   `json:"size"`
	Chunks []chunk `json:"chunks"`
}

// chunk is one chunk of a stream: its blob and its length.
type chunk struct {
	Key  string `json:"k"`
	Size int64  `json:"n"`
}

// fileStream is one original file of a version in a source manifest.
type fileStream struct {
	Path   string `json:"path"`
	Stream stream `json:"stream"`
}

// sourceManifest is a version's source document as schema 3 stores it,
// with the canonical form of its source when it has one.
type sourceManifest struct {
	Source stream       `json:"source"`
	Files  []fileStream `json:"files"`
	Canon  *stream      `json:"canon,omitempty"`
}

func parseKey(s string) (blobKey, error) {
	var k blobKey
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(k) {
		return k, fmt.Errorf("manifest names blob %.16q, not a sha256", s)
	}
	copy(k[:], b)
	return k, nil
}

// putStream stores data as chunks, taking a reference to each. prev, when
// not nil, is the same stream of the version before: each new chunk is
// offered the chunks at about the same relative place in it as delta
// bases.
func putStream(b *blobs, data []byte, prev *stream) (stream, error) {
	s := stream{Size: int64(len(data)), Chunks: []chunk{}}
	off := int64(0)
	for _, c := range chunks(data) {
		var bases []blobKey
		var at int64
		if k := blobKey(sha256.Sum256(c)); b.count(k) == 0 && prev != nil && prev.Size > 0 {
			lo := off * prev.Size / max(1, s.Size)
			hi := (off + int64(len(c))) * prev.Size / max(1, s.Size)
			bases, at = prev.around(b, lo, hi)
		}
		got, err := b.put(c, bases, at)
		if err != nil {
			return s, err
		}
		s.Chunks = append(s.Chunks, chunk{Key: hex.EncodeToString(got[:]), Size: int64(len(c))})
		off += int64(len(c))
	}
	return s, nil
}

// around returns the whole blobs that hold the bytes [lo, hi) of the
// stream and the chunk on either side (cuts move when content changes
// near them), at most maxBases, in stream order, and where lo falls in
// their joined contents.
func (s *stream) around(b *blobs, lo, hi int64) ([]blobKey, int64) {
	first, last := -1, -1
	pos := int64(0)
	for i, c := range s.Chunks {
		if pos+c.Size > lo && first < 0 {
			first = i
		}
		if pos < hi {
			last = i
		}
		pos += c.Size
	}
	if first < 0 {
		first = len(s.Chunks) - 1
	}
	hold := first
	first, last = max(0, first-1), min(len(s.Chunks)-1, max(last, first)+1)
	var out []blobKey
	seen := map[blobKey]bool{}
	at := int64(-1)
	joined := int64(0)
	for i := first; i <= last && len(out) < maxBases; i++ {
		k, err := parseKey(s.Chunks[i].Key)
		if err != nil {
			return nil, 0
		}
		whole := b.wholeOf(k)
		if len(whole) == 1 && whole[0] == k {
			if i == hold {
				at = joined + lo - s.offset(i)
			}
			joined += s.Chunks[i].Size
		} else if i == hold {
			at = joined // a delta's bases: no offset known, start at them
		}
		for _, w := range whole {
			if !seen[w] && len(out) < maxBases {
				seen[w] = true
				out = append(out, w)
			}
		}
	}
	return out, max(0, at)
}

// offset returns where chunk i starts.
func (s *stream) offset(i int) int64 {
	pos := int64(0)
	for _, c := range s.Chunks[:i] {
		pos += c.Size
	}
	return pos
}

// read returns the stream's bytes.
func (s *stream) read(b *blobs) ([]byte, error) { return s.assemble(b.get) }

// assemble joins the chunks get returns for the stream's keys, refusing
// chunks that add up to more or less than its size.
func (s *stream) assemble(get func(blobKey) ([]byte, error)) ([]byte, error) {
	out := make([]byte, 0, s.Size)
	err := s.eachKey(func(k blobKey) error {
		data, err := get(k)
		if err != nil {
			return err
		}
		if int64(len(out)+len(data)) > s.Size {
			return fmt.Errorf("chunks longer than their stream's %d bytes", s.Size)
		}
		out = append(out, data...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if int64(len(out)) != s.Size {
		return nil, fmt.Errorf("stream is %d bytes, its manifest says %d", len(out), s.Size)
	}
	return out, nil
}

// eachKey calls fn with the blob key of each of the stream's chunks.
func (s *stream) eachKey(fn func(blobKey) error) error {
	for _, c := range s.Chunks {
		k, err := parseKey(c.Key)
		if err != nil {
			return err
		}
		if err := fn(k); err != nil {
			return err
		}
	}
	return nil
}

// release drops the stream's reference to each of its chunks.
func (s *stream) release(b *blobs) error { return s.eachKey(b.release) }

// keys counts the stream's references into want.
func (s *stream) keys(want map[blobKey]uint64) error {
	return s.eachKey(func(k blobKey) error { want[k]++; return nil })
}

// streams returns every stream a source manifest holds.
func (m *sourceManifest) streams() []*stream {
	out := []*stream{&m.Source}
	for i := range m.Files {
		out = append(out, &m.Files[i].Stream)
	}
	if m.Canon != nil {
		out = append(out, m.Canon)
	}
	return out
}

// storedStreams returns the streams version key of tb holds in the schema
// 3 form (none for versions stored before it, whose values hold their
// content).
func storedStreams(tb *bolt.Bucket, key []byte) (*sourceManifest, *stream, error) {
	var src *sourceManifest
	if data := sub(tb, bucketSources).Get(key); len(data) > 0 && data[0] == valueManifest {
		src = &sourceManifest{}
		if err := json.Unmarshal(data[1:], src); err != nil {
			return nil, nil, fmt.Errorf("source manifest: %w", err)
		}
	}
	var comp *stream
	if data := sub(tb, bucketCompiled).Get(key); len(data) > 0 && data[0] == valueManifest {
		comp = &stream{}
		if err := json.Unmarshal(data[1:], comp); err != nil {
			return nil, nil, fmt.Errorf("compiled manifest: %w", err)
		}
	}
	return src, comp, nil
}

// putContent stores a version's source document, compiled form and
// canonical form (canon returns it, nil when none; called last) as
// streams, offering the streams of the version stored as prevKey (if
// any, and stored as streams) as delta bases, and returns the two
// manifest values.
func putContent(b *blobs, tb *bolt.Bucket, prevKey []byte, doc sourceDoc, compiled []byte, canon func() *string) (src, comp []byte, err error) {
	var prevSrc *sourceManifest
	var prevComp *stream
	if prevKey != nil {
		if prevSrc, prevComp, err = storedStreams(tb, prevKey); err != nil {
			return nil, nil, fmt.Errorf("version before: %w", err)
		}
	}
	m := sourceManifest{Files: []fileStream{}}
	var prev *stream
	if prevSrc != nil {
		prev = &prevSrc.Source
	}
	if m.Source, err = putStream(b, []byte(doc.Source), prev); err != nil {
		return nil, nil, err
	}
	for _, f := range doc.Files {
		if string(f.Content) == doc.Source {
			// A main file without includes is its flattened source:
			// the same chunks, one more reference each.
			st := stream{Size: m.Source.Size, Chunks: slices.Clone(m.Source.Chunks)}
			for _, c := range st.Chunks {
				k, err := parseKey(c.Key)
				if err != nil {
					return nil, nil, err
				}
				if err := b.ref(k); err != nil {
					return nil, nil, err
				}
			}
			m.Files = append(m.Files, fileStream{Path: f.Path, Stream: st})
			continue
		}
		prev = nil
		if prevSrc != nil {
			for i := range prevSrc.Files {
				if prevSrc.Files[i].Path == f.Path {
					prev = &prevSrc.Files[i].Stream
					break
				}
			}
		}
		st, err := putStream(b, f.Content, prev)
		if err != nil {
			return nil, nil, err
		}
		m.Files = append(m.Files, fileStream{Path: f.Path, Stream: st})
	}
	cs, err := putStream(b, compiled, prevComp)
	if err != nil {
		return nil, nil, err
	}
	if text := canon(); text != nil {
		prev = nil
		if prevSrc != nil {
			prev = prevSrc.Canon
		}
		st, err := putCanon(b, []byte(*text), prev, &m.Source, []byte(doc.Source))
		if err != nil {
			return nil, nil, err
		}
		m.Canon = &st
	}
	if src, err = json.Marshal(m); err != nil {
		return nil, nil, err
	}
	if comp, err = json.Marshal(cs); err != nil {
		return nil, nil, err
	}
	return append([]byte{valueManifest}, src...), append([]byte{valueManifest}, comp...), nil
}

// releaseContent drops the references version key holds on blobs.
func releaseContent(b *blobs, tb *bolt.Bucket, key []byte) error {
	return eachStream(tb, key, func(s *stream) error { return s.release(b) })
}

// eachStream calls fn with every stream version key of tb holds: those of
// its source manifest, then its compiled form (none for versions stored
// before schema 3).
func eachStream(tb *bolt.Bucket, key []byte, fn func(*stream) error) error {
	src, comp, err := storedStreams(tb, key)
	if err != nil {
		return err
	}
	var all []*stream
	if src != nil {
		all = src.streams()
	}
	if comp != nil {
		all = append(all, comp)
	}
	for _, s := range all {
		if err := fn(s); err != nil {
			return err
		}
	}
	return nil
}

// readSource returns the source document of version key, in whichever
// form it was stored.
func readSource(b *blobs, tb *bolt.Bucket, key []byte) (sourceDoc, error) {
	var doc sourceDoc
	data := sub(tb, bucketSources).Get(key)
	switch {
	case data == nil:
		return doc, nil
	case len(data) > 0 && data[0] == valueManifest:
		var m sourceManifest
		if err := json.Unmarshal(data[1:], &m); err != nil {
			return doc, fmt.Errorf("source manifest: %w", err)
		}
		src, err := m.Source.read(b)
		if err != nil {
			return doc, fmt.Errorf("flattened source: %w", err)
		}
		doc.Source = string(src)
		for _, f := range m.Files {
			content, err := f.Stream.read(b)
			if err != nil {
				return doc, fmt.Errorf("file %s: %w", f.Path, err)
			}
			doc.Files = append(doc.Files, File{Path: f.Path, Content: content})
		}
		return doc, nil
	}
	err := decodeJSON(data, &doc)
	return doc, err
}

// readFlat returns the flattened source of version key without its
// files (a main file without includes is the same bytes again): what
// storing the next version needs to count the lines it changed.
func readFlat(b *blobs, tb *bolt.Bucket, key []byte) (string, error) {
	data := sub(tb, bucketSources).Get(key)
	if len(data) == 0 || data[0] != valueManifest {
		doc, err := readSource(b, tb, key)
		return doc.Source, err
	}
	var m sourceManifest
	if err := json.Unmarshal(data[1:], &m); err != nil {
		return "", fmt.Errorf("source manifest: %w", err)
	}
	src, err := m.Source.read(b)
	if err != nil {
		return "", fmt.Errorf("flattened source: %w", err)
	}
	// src was allocated by read, outside the mmap.
	return unsafe.String(unsafe.SliceData(src), len(src)), nil
}

// readCompiled returns the compiled form stored in value data, in
// whichever form it was stored.
func readCompiled(tx *bolt.Tx, b *blobs, data []byte) ([]byte, error) {
	if schemaOf(tx) > schemaUnmarked && len(data) > 0 && data[0] == valueManifest {
		var s stream
		if err := json.Unmarshal(data[1:], &s); err != nil {
			return nil, fmt.Errorf("compiled manifest: %w", err)
		}
		return s.read(b)
	}
	return decodeCompiled(tx, data)
}

// manifestRefs counts every blob reference the manifests of every target
// hold, for checkBlobs.
func manifestRefs(tx *bolt.Tx) (map[blobKey]uint64, error) {
	want := map[blobKey]uint64{}
	tb := tx.Bucket(bucketTargets)
	if tb == nil {
		return want, nil
	}
	err := tb.ForEach(func(name, _ []byte) error {
		t := tb.Bucket(name)
		vb := sub(t, bucketVersions)
		if vb == nil {
			return nil
		}
		return vb.ForEach(func(k, _ []byte) error {
			return eachStream(t, k, func(s *stream) error { return s.keys(want) })
		})
	})
	return want, err
}

// CheckBlobs verifies, in one read transaction, that every blob is
// referenced exactly as often as its count says and that every chunk a
// manifest names is stored: deduplicated storage must neither leak blobs
// nor lose them. Tests run it after every operation.
func (s *Store) CheckBlobs() error {
	err := s.view(func(tx *bolt.Tx) error {
		want, err := manifestRefs(tx)
		if err != nil {
			return err
		}
		return checkBlobs(tx, want)
	})
	if err != nil {
		return fmt.Errorf("check blobs of %s: %w", s.path, err)
	}
	return nil
}

// Canonical returns the canonical form kept with version n of target
// (Options.Canonical); false when it has none (stored before schema 3,
// by a Store without Options.Canonical, or from a source that has none).
func (s *Store) Canonical(target string, n uint64) (string, bool, error) {
	var out string
	found := false
	err := s.view(func(tx *bolt.Tx) error {
		tb := targetBucket(tx, target)
		if sub(tb, bucketVersions).Get(u64(n)) == nil {
			return notFound(n)
		}
		src, _, err := storedStreams(tb, u64(n))
		if err != nil || src == nil || src.Canon == nil {
			return err
		}
		b, err := openBlobs(tx, &s.codec, false)
		if err != nil {
			return err
		}
		data, err := src.Canon.read(b)
		if err != nil {
			return fmt.Errorf("canonical form: %w", err)
		}
		// data was allocated by read, outside the mmap: a string of
		// it without a copy (canonical forms of big sets are 20 MB).
		out, found = unsafe.String(unsafe.SliceData(data), len(data)), true
		return nil
	})
	if err != nil {
		return "", false, fmt.Errorf("canonical form of %s version %d in %s: %w", target, n, s.path, err)
	}
	return out, found, nil
}

// BlobStats counts the blobs of a history file: what its versions' content
// takes once compressed and deduplicated.
type BlobStats struct {
	Blobs int   `json:"blobs"`
	Bytes int64 `json:"bytes"`
}

// BlobStats returns the number and stored bytes of the file's blobs.
func (s *Store) BlobStats() (BlobStats, error) {
	var st BlobStats
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketBlobs)
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			st.Blobs++
			st.Bytes += int64(len(v))
			return nil
		})
	})
	if err != nil {
		return BlobStats{}, fmt.Errorf("blob stats of %s: %w", s.path, err)
	}
	return st, nil
}

// CompiledDigest returns a digest of the compiled form stored with version
// n of target, from its manifest (no chunk is read): equal digests mean
// equal compiled forms. False for versions stored before schema 3.
func (s *Store) CompiledDigest(target string, n uint64) (string, bool, error) {
	var out string
	err := s.view(func(tx *bolt.Tx) error {
		tb := targetBucket(tx, target)
		if sub(tb, bucketVersions).Get(u64(n)) == nil {
			return notFound(n)
		}
		_, comp, err := storedStreams(tb, u64(n))
		if err != nil || comp == nil {
			return err
		}
		out = comp.digest()
		return nil
	})
	if err != nil {
		return "", false, fmt.Errorf("compiled digest of %s version %d in %s: %w", target, n, s.path, err)
	}
	return out, out != "", nil
}

// DigestOf returns the digest CompiledDigest gives for a compiled form of
// these bytes.
func DigestOf(compiled []byte) string {
	s := stream{Size: int64(len(compiled))}
	for _, c := range chunks(compiled) {
		k := sha256.Sum256(c)
		s.Chunks = append(s.Chunks, chunk{Key: hex.EncodeToString(k[:]), Size: int64(len(c))})
	}
	return s.digest()
}

// digest hashes the stream's chunk keys: chunks are cut by content, so
// equal bytes give equal keys.
func (s *stream) digest() string {
	h := sha256.New()
	fmt.Fprintf(h, "%d", s.Size)
	for _, c := range s.Chunks {
		h.Write([]byte(c.Key))
	}
	return hex.EncodeToString(h.Sum(nil))
}
