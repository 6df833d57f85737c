package history

import "math/bits"

// Content-defined chunking. A large source or compiled form is cut into
// chunks where the content says so (a rolling hash of the last bytes
// meets a mask), not at fixed offsets, so an insertion or a deletion
// moves only the cuts next to it: the chunks before and after it are the
// same bytes as in the version before, and are stored once.
//
// The cut rule is FastCDC's (Xia et al., 2016): a gear hash, a stricter
// mask below the average size and a looser one above it, so chunk sizes
// gather around the average.
const (
	chunkMin = 64 << 10
	chunkAvg = 256 << 10
	// chunkMax bounds a chunk, and so a blob and the dictionary of a
	// delta (blob.go).
	chunkMax = 1 << 20
)

var (
	maskStrict = spreadMask(bits.Len(chunkAvg) + 1) // 2 bits more than the average's
	maskLoose  = spreadMask(bits.Len(chunkAvg) - 3)
)

// spreadMask returns a mask of n one bits spread over the upper 48 bits
// of a 64-bit word, where the gear hash has seen the most bytes.
func spreadMask(n int) uint64 {
	var m uint64
	for i := 0; i < n; i++ {
		m |= 1 << (63 - i*48/n)
	}
	return m
}

// gear is a table of 256 pseudo-random words (splitmix64 of the byte), fixed
// forever: changing it would change every cut and defeat deduplication
// against what older fwslots stored.
var gear = func() (g [256]uint64) {
	x := uint64(0x6a09e667f3bcc908)
	for i := range g {
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		g[i] = z ^ (z >> 31)
	}
	return g
}()

// chunks cuts data into content-defined chunks: slices of data, in order,
// that together are data. Data no larger than chunkMin is one chunk.
func chunks(data []byte) [][]byte {
	var out [][]byte
	for len(data) > 0 {
		n := cut(data)
		out = append(out, data[:n])
		data = data[n:]
	}
	return out
}

// cut returns the length of the first chunk of data.
func cut(data []byte) int {
	n := len(data)
	if n <= chunkMin {
		return n
	}
	n = min(n, chunkMax)
	normal := min(n, chunkAvg)
	var h uint64
	i := chunkMin
	for ; i < normal; i++ {
		h = h<<1 + gear[data[i]]
		if h&maskStrict == 0 {
			return i + 1
		}
	}
	for ; i < n; i++ {
		h = h<<1 + gear[data[i]]
		if h&maskLoose == 0 {
			return i + 1
		}
	}
	return n
}
