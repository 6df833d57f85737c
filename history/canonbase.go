package history

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"hash/maphash"
	"slices"
	"sort"
)

// A canonical form holds the lines of its source in another order
// (chains sorted by name), so a new version's canonical form, which the
// canonical form of the version before does not resemble, is stored as
// deltas against the chunks of its own source its lines come from:
// about 15 KB instead of 0.77 MB for 100k new rules. Each new chunk is
// offered both: the version before's canonical form around the same
// place (what a small change resembles most) and the source chunks that
// hold most of its lines (found by hashing lines), and the smaller delta
// is kept.

// canonMinLine is the shortest line worth finding in the source: short
// lines ("}", "\t}") are everywhere and say nothing about where.
const canonMinLine = 24

// putCanon stores text, a canonical form, as a stream. prev is the
// canonical form of the version before (nil: none), src the stream of
// this version's source, stored already, and data its bytes.
func putCanon(b *blobs, text []byte, prev, src *stream, data []byte) (stream, error) {
	seed := maphash.MakeSeed()
	where := map[uint64]int{}
	forLines(data, func(off int, line []byte) {
		if len(line) >= canonMinLine {
			h := maphash.Bytes(seed, line)
			if _, ok := where[h]; !ok {
				where[h] = off
			}
		}
	})
	starts := make([]int, len(src.Chunks))
	pos := 0
	for i, c := range src.Chunks {
		starts[i] = pos
		pos += int(c.Size)
	}
	s := stream{Size: int64(len(text)), Chunks: []chunk{}}
	off := int64(0)
	for _, c := range chunks(text) {
		var cands []deltaCand
		if k := blobKey(sha256.Sum256(c)); b.count(k) == 0 {
			if prev != nil && prev.Size > 0 {
				lo := off * prev.Size / max(1, s.Size)
				hi := (off + int64(len(c))) * prev.Size / max(1, s.Size)
				bases, at := prev.around(b, lo, hi)
				cands = append(cands, deltaCand{bases: bases, off: at})
				// When the version before's chunks were deltas
				// (on its source), around returns the bases of
				// the chunks next to this place too, and offsets
				// into the canonical form mean nothing there:
				// the bases of the one chunk at this place are
				// offered whole.
				if k, ok := prev.at((lo + hi) / 2); ok {
					if w := b.wholeOf(k); len(w) > 0 && w[0] != k {
						cands = append(cands, deltaCand{bases: w, all: true})
					}
				}
			}
			if bases := sourceBases(b, c, src, starts, seed, where); len(bases) > 0 {
				cands = append(cands, deltaCand{bases: bases, all: true})
			}
		}
		got, err := b.putBest(c, cands)
		if err != nil {
			return s, err
		}
		s.Chunks = append(s.Chunks, chunk{Key: hex.EncodeToString(got[:]), Size: int64(len(c))})
		off += int64(len(c))
	}
	return s, nil
}

// sourceBases returns the whole blobs of src that hold the most bytes of
// c's lines, or their bases where they are deltas (at most maxBases):
// none when its lines are not in the source.
func sourceBases(b *blobs, c []byte, src *stream, starts []int, seed maphash.Seed, where map[uint64]int) []blobKey {
	votes := map[int]int{}
	forLines(c, func(_ int, line []byte) {
		if len(line) < canonMinLine {
			return
		}
		if at, ok := where[maphash.Bytes(seed, line)]; ok {
			votes[sort.SearchInts(starts, at+1)-1] += len(line)
		}
	})
	// A delta's bases stand for it (the source of the version before,
	// mostly the same lines), sharing its votes.
	byKey := map[blobKey]int{}
	var order []blobKey
	for i, v := range votes {
		k, err := parseKey(src.Chunks[i].Key)
		if err != nil {
			return nil
		}
		for _, w := range b.wholeOf(k) {
			if _, ok := byKey[w]; !ok {
				order = append(order, w)
			}
			byKey[w] += v
		}
	}
	slices.SortFunc(order, func(x, y blobKey) int {
		return cmp.Or(cmp.Compare(byKey[y], byKey[x]), bytes.Compare(x[:], y[:]))
	})
	return order[:min(len(order), maxBases)]
}

// forLines calls fn with each line of data (without its newline) and
// where it starts.
func forLines(data []byte, fn func(off int, line []byte)) {
	for off := 0; off < len(data); {
		n := bytes.IndexByte(data[off:], '\n')
		if n < 0 {
			n = len(data) - off
		}
		fn(off, data[off:off+n])
		off += n + 1
	}
}

// at returns the key of the chunk that holds byte off of the stream.
func (s *stream) at(off int64) (blobKey, bool) {
	pos := int64(0)
	for _, c := range s.Chunks {
		if off < pos+c.Size {
			k, err := parseKey(c.Key)
			return k, err == nil
		}
		pos += c.Size
	}
	return blobKey{}, false
}
