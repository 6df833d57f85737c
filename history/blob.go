package history

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"
	bolt "go.etcd.io/bbolt"
)

// Blobs: the content of sources, files and compiled forms from schema 3
// on, stored once per content however many versions, files or targets
// hold it.
//
//	blobs     n (uint64, in the order stored) -> blob value
//	blobrefs  sha256 of the content -> n, then the uint64 reference count
//
// Values are keyed by the order they were stored (within one write,
// largest first: settle.go), not by their hash, so that a version's new
// chunks are appended after the others: with random
// keys, every insert would rewrite the leaf page it lands in, big values
// and all, and a version that adds 0.4 MB of chunks would move the whole
// file's content (measured: +2.4 MB for a 1M-element set, 1% changed).
//
// A blob value begins with its format byte:
//
//	blobZstd   the content, one zstd frame
//	blobDelta  a count n (one byte), the sha256 of n base blobs, the
//	           offset and length (uvarints) of a window of the bases'
//	           contents joined in that order, then one zstd frame of the
//	           ops that build the content from that window (delta.go): a
//	           chunk that changed a little since the version before costs
//	           about its changes, even when its cuts moved (the bases are
//	           the chunks of the version before around the same place)
//
// A delta's bases are always blobZstd blobs, so a read decompresses at
// most n+1 frames. References count the manifests (stream.go) naming a
// blob and the deltas based on it; a blob whose count reaches zero is
// deleted in the same transaction, and a delta's deletion releases its
// bases. Blobs and counts are checked against each other by checkBlobs.
var (
	bucketBlobs    = []byte("blobs")
	bucketBlobRefs = []byte("blobrefs")
)

const (
	blobZstd  byte = 1
	blobDelta byte = 2
)

// blobKey is the sha256 of a blob's content.
type blobKey [sha256.Size]byte

// deltaWorth is how much smaller than its content a delta must be to be
// kept instead of the chunk compressed on its own: deltas cost a second
// frame to read, so they must save.
const deltaWorth = 8

// codec holds the zstd encoder and decoder a Store shares between its
// transactions (both are safe for concurrent use), and what else storing
// a version needs from the Store's options.
type codec struct {
	once sync.Once
	enc  *zstd.Encoder
	dec  *zstd.Decoder
	err  error
	// canonical is Options.Canonical.
	canonical func(string) (string, error)
	// deltas counts the deltas built (kept or not): tests check that
	// new content does not pay for them.
	deltas atomic.Int64
}

func (c *codec) init() error {
	c.once.Do(func() {
		// A window of 2 chunks holds any blob (chunkMax) or delta's ops
		// whole; the default (8 MB) kept a 16 MB history buffer live.
		if c.enc, c.err = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(2*chunkMax)); c.err != nil {
			return
		}
		c.dec, c.err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(4*chunkMax))
	})
	return c.err
}

// blobs is a view of the blob buckets inside one transaction.
type blobs struct {
	c     *codec
	data  *bolt.Bucket
	refs  *bolt.Bucket
	cache map[blobKey][]byte
	// rec, when set, records what put and ref would write instead of
	// writing it (prepare.go): blobs is then a read transaction's.
	rec *recorder
}

// openBlobs returns the blob buckets of tx, creating them when write is
// set; nil buckets when a read finds none.
func openBlobs(tx *bolt.Tx, c *codec, write bool) (*blobs, error) {
	if err := c.init(); err != nil {
		return nil, fmt.Errorf("zstd: %w", err)
	}
	b := &blobs{c: c, data: tx.Bucket(bucketBlobs), refs: tx.Bucket(bucketBlobRefs), cache: map[blobKey][]byte{}}
	if write && (b.data == nil || b.refs == nil) {
		var err error
		if b.data, err = tx.CreateBucketIfNotExists(bucketBlobs); err != nil {
			return nil, err
		}
		if b.refs, err = tx.CreateBucketIfNotExists(bucketBlobRefs); err != nil {
			return nil, err
		}
	}
	if write {
		// Values are appended in key order (seq): pages split full
		// rather than half full (bbolt's default, meant for random
		// inserts), or a version's small deltas cost twice their size
		// in pages.
		b.data.FillPercent = 1
	}
	return b, nil
}

// entry returns where blob k's value is and its reference count (0, 0
// when it is not stored).
func (b *blobs) entry(k blobKey) (seq, refs uint64) {
	if b.refs == nil {
		return 0, 0
	}
	v := b.refs.Get(k[:])
	if len(v) != 16 {
		return 0, 0
	}
	return binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:])
}

func (b *blobs) count(k blobKey) uint64 {
	if b.rec != nil {
		if _, ok := b.rec.pending[k]; ok {
			return 1
		}
	}
	_, n := b.entry(k)
	return n
}

// setCount records blob k's count.
func (b *blobs) setCount(k blobKey, seq, n uint64) error {
	return b.refs.Put(k[:], binary.BigEndian.AppendUint64(u64(seq), n))
}

// value returns blob k's stored value (nil when it is not stored).
func (b *blobs) value(k blobKey) []byte {
	seq, n := b.entry(k)
	if n == 0 || b.data == nil {
		return nil
	}
	return b.data.Get(u64(seq))
}

// maxBases bounds the bases of a delta, and so the dictionary a read
// builds (maxBases * chunkMax).
const maxBases = 4

// put stores content (unless a blob with its hash exists) and takes one
// reference to it. bases, when not empty, are whole blobs with content
// like this one's (the same part of the version before), where it starts
// at about offset off of their joined contents: the blob is stored as a
// delta against them when that is much smaller.
func (b *blobs) put(content []byte, bases []blobKey, off int64) (blobKey, error) {
	return b.putBest(content, []deltaCand{{bases: bases, off: off}})
}

// deltaCand is one choice of delta bases for a blob: whole blobs and
// where the content starts in their joined contents, or, with all set,
// bases whose whole joined content is the dictionary (content drawn from
// all over them, such as a canonical form's lines from its source).
type deltaCand struct {
	bases []blobKey
	off   int64
	all   bool
}

// putBest is put with several choices of bases: the smallest delta wins.
func (b *blobs) putBest(content []byte, cands []deltaCand) (blobKey, error) {
	k := blobKey(sha256.Sum256(content))
	if b.count(k) > 0 && b.rec != nil {
		b.rec.ops = append(b.rec.ops, recOp{k: k, content: content})
		return k, nil
	}
	if seq, n := b.entry(k); n > 0 {
		return k, b.setCount(k, seq, n+1)
	}
	var val []byte
	var used []blobKey
	for _, c := range cands {
		v, u, err := b.encode(content, c)
		if err != nil {
			return k, err
		}
		if v != nil && (val == nil || len(v) < len(val)) {
			val, used = v, u
		}
	}
	if val == nil {
		val = b.c.enc.EncodeAll(content, []byte{blobZstd})
	}
	if b.rec != nil {
		b.rec.pending[k] = struct{}{}
		b.rec.ops = append(b.rec.ops, recOp{k: k, content: content, val: val, bases: used})
		return k, nil
	}
	for _, bk := range used {
		if err := b.ref(bk); err != nil {
			return k, err
		}
	}
	seq, err := b.data.NextSequence()
	if err != nil {
		return k, err
	}
	if err := b.data.Put(u64(seq), val); err != nil {
		return k, err
	}
	return k, b.setCount(k, seq, 1)
}

// encode returns the stored value of content as a delta on cand and the
// bases it names; nil when no delta is worth it (putBest then stores the
// content whole, compressed once). The dictionary is the window of the
// bases' joined contents from off, as long as content and a margin, so
// that building it costs about the chunk, not the bases.
func (b *blobs) encode(content []byte, cand deltaCand) ([]byte, []blobKey, error) {
	bases, off := cand.bases, cand.off
	if len(bases) > 0 && len(bases) <= maxBases {
		var joined []byte
		for _, bk := range bases {
			part, err := b.get(bk)
			if err != nil {
				return nil, nil, err
			}
			joined = append(joined, part...)
		}
		var found bool
		if cand.all {
			// Any of the probes will do: the dictionary is all of
			// joined.
			_, found = anchor(joined, content, 0)
			off = 0
		} else {
			off, found = anchor(joined, content, off)
		}
		if !found {
			// None of the probes is in the bases: the content is new
			// (a set refilled, not edited), and a delta would cost
			// building its ops only to be thrown away.
			return nil, nil, nil
		}
		margin := int64(len(content))/4 + 64<<10
		lo := min(max(0, off-margin), int64(len(joined)))
		hi := min(int64(len(joined)), off+int64(len(content))+margin)
		lo = min(lo, hi)
		if cand.all {
			lo, hi = 0, int64(len(joined))
		}
		val := []byte{blobDelta, byte(len(bases))}
		for _, bk := range bases {
			val = append(val, bk[:]...)
		}
		val = binary.AppendUvarint(val, uint64(lo))
		val = binary.AppendUvarint(val, uint64(hi-lo))
		frame, err := b.deltaFrame(content, joined[lo:hi])
		if err != nil {
			return nil, nil, err
		}
		if val = append(val, frame...); len(val) <= len(content)/deltaWorth {
			return val, bases, nil
		}
	}
	return nil, nil, nil
}

// anchor returns where content starts in joined, found by searching for
// a few stretches of content: guessed places drift when the version
// before had content moved (sorted elements that changed go elsewhere).
// Near the guess, the occurrence closest to it wins: in repetitive
// content (a compiled form is records of one shape) a stretch is found
// in many records, and the first one in the bases is usually another
// record far from this chunk's, which left the delta a window that
// missed most of the chunk (measured: 1% of 100k rules changed cost
// 0.79 MB of compiled form instead of 0.08 MB). Only when no stretch is
// near the guess is the first occurrence anywhere taken. False, with
// guess, when none is found.
func anchor(joined, content []byte, guess int64) (int64, bool) {
	const probe = 48
	probes := []int{0, len(content) / 4, len(content) / 2, 3 * len(content) / 4}
	// Near: as far from the guess as encode's margin reaches.
	reach := int64(len(content))/4 + 64<<10
	lo := max(0, min(int64(len(joined)), guess-reach))
	hi := max(lo, min(int64(len(joined)), guess+int64(len(content))+reach))
	best, found := int64(0), false
	for _, at := range probes {
		if at+probe > len(content) {
			continue
		}
		p := content[at : at+probe]
		for from := lo; from < hi; {
			i := bytes.Index(joined[from:hi], p)
			if i < 0 {
				break
			}
			start := max(0, from+int64(i)-int64(at))
			if !found || absDiff(start, guess) < absDiff(best, guess) {
				best, found = start, true
			}
			from += int64(i) + 1
		}
	}
	if found {
		return best, true
	}
	for _, at := range probes {
		if at+probe > len(content) {
			continue
		}
		if i := bytes.Index(joined, content[at:at+probe]); i >= 0 {
			return max(0, int64(i-at)), true
		}
	}
	return guess, false
}

func absDiff(a, b int64) int64 {
	if a > b {
		return a - b
	}
	return b - a
}

// deltaFrame returns the delta payload of content against dict: its ops
// (delta.go), zstd-compressed.
func (b *blobs) deltaFrame(content, dict []byte) ([]byte, error) {
	b.c.deltas.Add(1)
	return b.c.enc.EncodeAll(deltaOps(content, dict), nil), nil
}

// ref takes one more reference to a stored blob.
func (b *blobs) ref(k blobKey) error {
	if b.rec != nil {
		if b.count(k) == 0 {
			return fmt.Errorf("blob %x is not stored", k[:8])
		}
		b.rec.ops = append(b.rec.ops, recOp{k: k})
		return nil
	}
	seq, n := b.entry(k)
	if n == 0 {
		return fmt.Errorf("blob %x is not stored", k[:8])
	}
	return b.setCount(k, seq, n+1)
}

// release drops one reference to k, deleting the blob (and releasing its
// delta bases) when it was the last.
func (b *blobs) release(k blobKey) error {
	seq, n := b.entry(k)
	if n == 0 {
		return fmt.Errorf("blob %x has no references to release", k[:8])
	}
	if n > 1 {
		return b.setCount(k, seq, n-1)
	}
	bases, _, _, err := parseDelta(b.data.Get(u64(seq)))
	if err != nil {
		return fmt.Errorf("blob %x: %w", k[:8], err)
	}
	if err := b.data.Delete(u64(seq)); err != nil {
		return err
	}
	if err := b.refs.Delete(k[:]); err != nil {
		return err
	}
	for _, bk := range bases {
		if err := b.release(bk); err != nil {
			return err
		}
	}
	return nil
}

// parseDelta returns the bases, the dictionary window (offset, length)
// and the frame of a delta blob value; no bases for a whole one.
func parseDelta(val []byte) ([]blobKey, [2]uint64, []byte, error) {
	var win [2]uint64
	if len(val) == 0 || val[0] != blobDelta {
		return nil, win, nil, nil
	}
	if len(val) < 2 || val[1] == 0 || val[1] > maxBases || len(val) < 2+int(val[1])*sha256.Size {
		return nil, win, nil, errors.New("delta with a damaged list of bases")
	}
	bases := make([]blobKey, val[1])
	for i := range bases {
		copy(bases[i][:], val[2+i*sha256.Size:])
	}
	rest := val[2+len(bases)*sha256.Size:]
	for i := range win {
		v, n := binary.Uvarint(rest)
		if n <= 0 || v > maxBases*chunkMax {
			return nil, win, nil, errors.New("delta with a damaged dictionary window")
		}
		win[i], rest = v, rest[n:]
	}
	return bases, win, rest, nil
}

// dictOf returns the window win of the joined contents of bases,
// copying only what the window covers.
func dictOf(get func(blobKey) ([]byte, error), bases []blobKey, win [2]uint64, isWhole func(blobKey) bool) ([]byte, error) {
	dict := make([]byte, 0, win[1])
	lo, hi := win[0], win[0]+win[1]
	pos := uint64(0)
	for _, bk := range bases {
		if !isWhole(bk) {
			return nil, fmt.Errorf("its base %x is missing or not whole", bk[:8])
		}
		part, err := get(bk)
		if err != nil {
			return nil, err
		}
		end := pos + uint64(len(part))
		if end > lo && pos < hi {
			dict = append(dict, part[max(lo, pos)-pos:min(hi, end)-pos]...)
		}
		pos = end
	}
	if uint64(len(dict)) != win[1] {
		return nil, fmt.Errorf("dictionary window %d+%d past its bases' %d bytes", win[0], win[1], pos)
	}
	return dict, nil
}

// wholeOf returns the whole blobs k stands for as a delta base: its
// bases for a delta, itself for a whole blob.
func (b *blobs) wholeOf(k blobKey) []blobKey {
	val := b.value(k)
	if len(val) == 0 {
		return nil
	}
	if bases, _, _, err := parseDelta(val); err == nil && len(bases) > 0 {
		return bases
	}
	return []blobKey{k}
}

// get returns the content of blob k, checked against its hash. Whole
// blobs read recently are kept (a few), since the deltas of one stream
// share bases.
func (b *blobs) get(k blobKey) ([]byte, error) {
	if data, ok := b.cache[k]; ok {
		return data, nil
	}
	val := b.value(k)
	if len(val) == 0 {
		return nil, fmt.Errorf("blob %x is missing", k[:8])
	}
	out, err := decodeBlob(b.c.dec, "blob", k, val, b.get, b.value)
	if err != nil {
		return nil, err
	}
	if val[0] == blobZstd {
		if len(b.cache) >= cachedBlobs {
			clear(b.cache)
		}
		b.cache[k] = out
	}
	return out, nil
}

// decodeBlob decodes val, the stored value of blob k (what names it in
// errors: "blob", "chunk"): a whole blob, or a delta against whole bases
// that get decodes and value finds. The content must hash to k.
func decodeBlob(dec *zstd.Decoder, what string, k blobKey, val []byte, get func(blobKey) ([]byte, error), value func(blobKey) []byte) ([]byte, error) {
	var out []byte
	var err error
	switch val[0] {
	case blobZstd:
		out, err = dec.DecodeAll(val[1:], nil)
	case blobDelta:
		bases, win, frame, perr := parseDelta(val)
		if perr != nil {
			return nil, fmt.Errorf("%s %x: %w", what, k[:8], perr)
		}
		dict, derr := dictOf(get, bases, win, func(bk blobKey) bool {
			bv := value(bk)
			return len(bv) > 0 && bv[0] == blobZstd
		})
		if derr != nil {
			return nil, fmt.Errorf("%s %x: %w", what, k[:8], derr)
		}
		out, err = decodeDelta(dec, frame, dict)
	default:
		return nil, fmt.Errorf("%s %x has format %d, this fwslot reads up to %d; use a newer fwslot", what, k[:8], val[0], blobDelta)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %x: %w", what, k[:8], err)
	}
	if blobKey(sha256.Sum256(out)) != k {
		return nil, fmt.Errorf("%s %x: content does not match its hash", what, k[:8])
	}
	return out, nil
}

// cachedBlobs is how many whole blobs a transaction keeps decoded.
const cachedBlobs = 2 * maxBases

// decodeDelta builds a chunk from a delta payload and its dictionary.
func decodeDelta(dec *zstd.Decoder, frame, dict []byte) ([]byte, error) {
	ops, err := dec.DecodeAll(frame, nil)
	if err != nil {
		return nil, err
	}
	return applyDelta(ops, dict, chunkMax)
}

// checkBlobs verifies that every blob's reference count is the number of
// references the manifests and deltas hold (want), and that every blob
// referenced exists: what a test runs after every operation.
func checkBlobs(tx *bolt.Tx, want map[blobKey]uint64) error {
	var errs []error
	data, refs := tx.Bucket(bucketBlobs), tx.Bucket(bucketBlobRefs)
	got := map[blobKey]uint64{}
	owner := map[uint64]blobKey{}
	if refs != nil {
		_ = refs.ForEach(func(k, v []byte) error {
			var bk blobKey
			copy(bk[:], k)
			if len(v) != 16 {
				errs = append(errs, fmt.Errorf("blob %x: index entry of %d bytes", k[:8], len(v)))
				return nil
			}
			seq := binary.BigEndian.Uint64(v)
			got[bk] = binary.BigEndian.Uint64(v[8:])
			if other, dup := owner[seq]; dup {
				errs = append(errs, fmt.Errorf("blobs %x and %x share value %d", k[:8], other[:8], seq))
			}
			owner[seq] = bk
			val := []byte(nil)
			if data != nil {
				val = data.Get(u64(seq))
			}
			if val == nil {
				errs = append(errs, fmt.Errorf("blob %x has a count but no content", k[:8]))
				return nil
			}
			bases, _, _, err := parseDelta(val)
			if err != nil {
				errs = append(errs, fmt.Errorf("blob %x: %w", k[:8], err))
			}
			for _, b := range bases {
				want[b]++
			}
			return nil
		})
	}
	if data != nil {
		_ = data.ForEach(func(k, _ []byte) error {
			if _, ok := owner[binary.BigEndian.Uint64(k)]; len(k) != 8 || !ok {
				errs = append(errs, fmt.Errorf("blob value %x belongs to no blob", k))
			}
			return nil
		})
	}
	for k, n := range want {
		if got[k] != n {
			errs = append(errs, fmt.Errorf("blob %x: count %d, referenced %d times", k[:8], got[k], n))
		}
	}
	for k, n := range got {
		if _, ok := want[k]; !ok {
			errs = append(errs, fmt.Errorf("blob %x: count %d, referenced by nothing", k[:8], n))
		}
	}
	return errors.Join(errs...)
}

// sha256Of returns the sha256 of data.
func sha256Of(data []byte) [sha256.Size]byte { return sha256.Sum256(data) }
