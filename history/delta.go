package history

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// A delta's payload: how to build a chunk from a dictionary (a window of
// chunks of the version before), as copies from the dictionary and
// inserted bytes, then compressed with zstd.
//
// zstd's own dictionary matching was tried first: it compresses a chunk
// that changed in place well (3% of a big set's source for 1% of its
// elements changed), but on the compiled form of a set, whose elements
// are sorted records with a common header, its hash tables find the
// short self-matches one record back instead of the long matches in the
// dictionary, and a chunk with 1% of its records gone cost as much as
// the chunk compressed alone. Copies found by exact matching cost a few
// bytes per change on both.
//
// The ops, before compression, are a uvarint n each: n odd copies n>>1
// bytes of the dictionary, from where the previous copy ended plus the
// signed varint that follows; n even inserts the n>>1 bytes that follow.

// deltaMinMatch is the shortest copy worth an op.
const deltaMinMatch = 16

// deltaStep is how often a dictionary position is indexed: a match of at
// least deltaMinMatch+deltaStep bytes is always found.
const deltaStep = 8

// deltaOps returns the ops that build content from dict.
func deltaOps(content, dict []byte) []byte {
	index := make(map[uint64]int32, len(dict)/deltaStep+1)
	for p := 0; p+deltaMinMatch <= len(dict); p += deltaStep {
		k := binary.LittleEndian.Uint64(dict[p:]) ^ binary.LittleEndian.Uint64(dict[p+8:])*0x9e3779b97f4a7c15
		if _, ok := index[k]; !ok {
			index[k] = int32(p)
		}
	}
	var ops []byte
	last := 0    // where the last copy ended in dict
	pending := 0 // start of bytes not yet emitted
	emitInsert := func(end int) {
		if end > pending {
			ops = binary.AppendUvarint(ops, uint64(end-pending)<<1)
			ops = append(ops, content[pending:end]...)
		}
	}
	for i := 0; i+deltaMinMatch <= len(content); {
		k := binary.LittleEndian.Uint64(content[i:]) ^ binary.LittleEndian.Uint64(content[i+8:])*0x9e3779b97f4a7c15
		p, ok := index[k]
		if !ok || string(dict[p:int(p)+deltaMinMatch]) != string(content[i:i+deltaMinMatch]) {
			i++
			continue
		}
		// Extend backwards over what is not emitted, then forwards.
		s, d := i, int(p)
		for s > pending && d > 0 && content[s-1] == dict[d-1] {
			s--
			d--
		}
		e, f := i+deltaMinMatch, int(p)+deltaMinMatch
		for e < len(content) && f < len(dict) && content[e] == dict[f] {
			e++
			f++
		}
		emitInsert(s)
		ops = binary.AppendUvarint(ops, uint64(e-s)<<1|1)
		ops = binary.AppendVarint(ops, int64(d-last))
		last, pending, i = f, e, e
	}
	emitInsert(len(content))
	return ops
}

// applyDelta builds a chunk of at most limit bytes from ops and dict.
func applyDelta(ops, dict []byte, limit int) ([]byte, error) {
	var out []byte
	last := 0
	for len(ops) > 0 {
		n, k := binary.Uvarint(ops)
		if k <= 0 {
			return nil, errors.New("delta: damaged op")
		}
		ops = ops[k:]
		size := int(n >> 1)
		if n>>1 > uint64(limit) || len(out)+size > limit {
			return nil, fmt.Errorf("delta: builds more than %d bytes", limit)
		}
		if n&1 == 0 {
			if size > len(ops) {
				return nil, errors.New("delta: insert past its end")
			}
			out = append(out, ops[:size]...)
			ops = ops[size:]
			continue
		}
		rel, k := binary.Varint(ops)
		if k <= 0 {
			return nil, errors.New("delta: damaged copy")
		}
		ops = ops[k:]
		from := int64(last) + rel
		if from < 0 || from+int64(size) > int64(len(dict)) {
			return nil, errors.New("delta: copy outside its dictionary")
		}
		out = append(out, dict[from:from+int64(size)]...)
		last = int(from) + size
	}
	return out, nil
}
