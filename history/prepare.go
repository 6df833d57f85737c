package history

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/fwslot/fwslot/internal/linediff"
	bolt "go.etcd.io/bbolt"
)

// Preparing a version: what storing it costs in CPU (cutting chunks,
// hashing, compressing, building deltas against the version before,
// counting the lines it changed) runs in a read transaction, so the
// write transaction that stores it holds the file's lock only to write.
// The writes stay in that one transaction: if the file changed in
// between (another version stored, a base pruned), the write redoes
// what no longer holds.

// recorder holds what a version's content would write, in order.
type recorder struct {
	ops     []recOp
	pending map[blobKey]struct{} // new blobs recorded
}

// recOp is one reference to blob k: a new blob (val, a delta on bases
// when bases are set) or one more reference to a blob stored before or
// recorded earlier. content, when set, lets the write store the blob
// whole if it is gone by then.
type recOp struct {
	k       blobKey
	content []byte
	val     []byte
	bases   []blobKey
}

// Prepared is a version ready to store: its content compressed and
// chunked against the version that was newest when it was prepared.
type Prepared struct {
	target   string
	v        Version
	doc      sourceDoc
	compiled []byte
	prevKey  []byte
	sum      *Summary
	rec      *recorder
	src      []byte // manifests
	comp     []byte
}

// Prepare does the work of storing v under target (see Tx.addVersion with later:
// without its canonical form) in a read transaction; Tx.AddPrepared then
// stores it. v's hash is checked and its time set here.
func (s *Store) Prepare(target string, v Version, compiled []byte) (*Prepared, error) {
	doc, err := prepareVersion(target, &v)
	if err != nil {
		return nil, err
	}
	doc.later = true
	p := &Prepared{target: target, v: v, doc: doc, compiled: compiled, rec: &recorder{pending: map[blobKey]struct{}{}}}
	err = s.view(func(tx *bolt.Tx) error {
		b, err := openBlobs(tx, &s.codec, false)
		if err != nil {
			return err
		}
		b.rec = p.rec
		tb := targetBucket(tx, target)
		if vb := sub(tb, bucketVersions); vb != nil {
			if k, _ := vb.Cursor().Last(); k != nil {
				p.prevKey = append([]byte(nil), k...)
			}
		}
		if p.sum, err = summarize(b, tb, p.prevKey, doc, compiled); err != nil {
			return err
		}
		p.src, p.comp, err = putContent(b, tb, p.prevKey, doc, compiled, func() *string { return nil })
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("prepare a version of %s in %s: %w", target, s.path, err)
	}
	return p, nil
}

// AddPrepared stores p with the next version number of its target and
// returns the version as stored. When the target's newest version is no
// longer the one p was prepared against, p is stored from scratch here.
func (t *Tx) AddPrepared(p *Prepared) (Version, error) {
	v := p.v
	tb, err := createTarget(t.tx, p.target)
	if err != nil {
		return Version{}, fmt.Errorf("add version to %s: %w", p.target, err)
	}
	vb := tb.Bucket(bucketVersions)
	if last, _ := vb.Cursor().Last(); !bytes.Equal(last, p.prevKey) {
		if err := putVersion(t.tx, t.c, p.target, &v, p.doc, p.compiled); err != nil {
			return Version{}, fmt.Errorf("add version to %s: %w", p.target, err)
		}
		v.Source, v.Files = "", nil
		return v, nil
	}
	n, err := vb.NextSequence()
	if err != nil {
		return Version{}, err
	}
	v.Number = n
	if err := writePrepared(t.tx, t.c, tb, v, p); err != nil {
		return Version{}, fmt.Errorf("add version %d to %s: %w", n, p.target, err)
	}
	v.Source, v.Files = "", nil
	return v, nil
}

// writePrepared writes p's blobs and records as version v.
func writePrepared(tx *bolt.Tx, c *codec, tb *bolt.Bucket, v Version, p *Prepared) error {
	b, err := openBlobs(tx, c, true)
	if err != nil {
		return err
	}
	for _, op := range p.rec.ops {
		if err := b.replay(op); err != nil {
			return err
		}
	}
	meta, err := encodeJSON(storedVersion{Version: v, Summary: p.sum})
	if err != nil {
		return fmt.Errorf("encode version: %w", err)
	}
	key := u64(v.Number)
	if tb.Bucket(bucketVersions).Get(key) != nil {
		return fmt.Errorf("version %d is stored already", v.Number)
	}
	if err := tb.Bucket(bucketVersions).Put(key, meta); err != nil {
		return err
	}
	if err := tb.Bucket(bucketSources).Put(key, p.src); err != nil {
		return err
	}
	if err := tb.Bucket(bucketCompiled).Put(key, p.comp); err != nil {
		return err
	}
	return tb.Bucket(bucketHashes).Put([]byte(v.Hash), key)
}

// replay writes one recorded reference: one more reference to a blob
// stored now; else the recorded value when its bases are still stored
// whole; else the content compressed alone.
func (b *blobs) replay(op recOp) error {
	if seq, n := b.entry(op.k); n > 0 {
		return b.setCount(op.k, seq, n+1)
	}
	val, bases := op.val, op.bases
	for _, bk := range bases {
		if bv := b.value(bk); len(bv) == 0 || bv[0] != blobZstd {
			val, bases = nil, nil
			break
		}
	}
	if val == nil {
		if op.content == nil {
			return fmt.Errorf("blob %x is not stored", op.k[:8])
		}
		val = b.c.enc.EncodeAll(op.content, []byte{blobZstd})
	}
	for _, bk := range bases {
		if err := b.ref(bk); err != nil {
			return err
		}
	}
	seq, err := b.data.NextSequence()
	if err != nil {
		return err
	}
	if err := b.data.Put(u64(seq), val); err != nil {
		return err
	}
	return b.setCount(op.k, seq, 1)
}

// summarize computes what `fwslot history` shows of a version stored
// after version prevKey (nil: none).
func summarize(b *blobs, tb *bolt.Bucket, prevKey []byte, doc sourceDoc, compiled []byte) (*Summary, error) {
	sum := &Summary{Bytes: int64(len(doc.Source) + len(compiled))}
	for _, f := range doc.Files {
		sum.Bytes += int64(len(f.Content))
	}
	cur := linediff.Split(doc.Source)
	sum.Lines = len(cur)
	var prevLines []string
	if prevKey != nil {
		prev, err := readFlat(b, tb, prevKey)
		if err != nil {
			return nil, fmt.Errorf("read version %d to count the lines changed: %w", binary.BigEndian.Uint64(prevKey), err)
		}
		sum.Against, prevLines = binary.BigEndian.Uint64(prevKey), linediff.Split(prev)
	}
	sum.Added, sum.Removed = linediff.CountWithin(prevLines, cur, linediff.MaxCountEdits, storeCountWork)
	return sum, nil
}

// storeCountWork bounds the search when a version is stored, where the
// count must not cost seconds (a 1M-element set with 1% changed gives
// 10,000 changed lines): about 40 ms, then lines are matched by content,
// which counts the same unless lines moved.
const storeCountWork = 1 << 22
