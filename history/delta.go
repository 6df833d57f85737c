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
	// An open-addressing table of dictionary positions by the hash of
	// the deltaMinMatch bytes there (a map costs 5x more here).
	size, shift := 1, 64
	for size < 2*(len(dict)/deltaStep+1) {
		size <<= 1
		shift--
	}
	table := make([]int32, size)
	for i := range table {
		table[i] = -1
	}
	mask := uint64(size - 1)
	// The top bits of the product depend on every input bit.
	hash := func(b []byte) uint64 {
		return (binary.LittleEndian.Uint64(b) ^ binary.LittleEndian.Uint64(b[8:])*0x9e3779b97f4a7c15) * 0xff51afd7ed558ccd
	}
	for p := 0; p+deltaMinMatch <= len(dict); p += deltaStep {
		for h := hash(dict[p:]) >> shift & mask; ; h = (h + 1) & mask {
			if table[h] < 0 {
				table[h] = int32(p)
				break
			}
			if string(dict[table[h]:int(table[h])+deltaMinMatch]) == string(dict[p:p+deltaMinMatch]) {
				break // the first position with these bytes is kept
			}
		}
	}
	lookup := func(b []byte) int {
		for h := hash(b) >> shift & mask; table[h] >= 0; h = (h + 1) & mask {
			if p := int(table[h]); string(dict[p:p+deltaMinMatch]) == string(b[:deltaMinMatch]) {
				return p
			}
		}
		return -1
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
	// extend returns where a match of content[i:] at dict[p:] ends in
	// content (i when there is none of deltaMinMatch bytes).
	extend := func(i, p int) int {
		if p < 0 || p+deltaMinMatch > len(dict) || string(dict[p:p+deltaMinMatch]) != string(content[i:i+deltaMinMatch]) {
			return i
		}
		e, f := i+deltaMinMatch, p+deltaMinMatch
		for e < len(content) && f < len(dict) && content[e] == dict[f] {
			e++
			f++
		}
		return e
	}
	for i := 0; i+deltaMinMatch <= len(content); {
		// Candidates: where the last copy left off, shifted by what
		// was inserted since (bytes replaced in place) or not (bytes
		// inserted), and the first place the hash table knows. The
		// table alone is not enough: in repetitive content (a
		// compiled form is records with a common shape) the first
		// place with the same 16 bytes is often another record, its
		// copy stops at the next field that differs, and every
		// record then costs an op with a far offset (measured: a 1%
		// change of 100k rules cost 81% of a whole compressed chunk).
		p, e := -1, i
		for _, c := range [3]int{last + (i - pending), last, lookup(content[i:])} {
			if ce := extend(i, c); ce > e {
				p, e = c, ce
			}
		}
		if p < 0 {
			i++
			continue
		}
		// Extend backwards over what is not emitted.
		s, d := i, p
		for s > pending && d > 0 && content[s-1] == dict[d-1] {
			s--
			d--
		}
		f := p + (e - i)
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
