package history

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// Settling a write's blobs: bbolt keeps at least two values in a leaf,
// and the next write appends its blobs to the last leaf, so it rewrites
// that leaf, big values and all. When a version's last blobs were whole
// compressed chunks (a first version: about 50 KB each), the next version
// rewrote about 160 KB that it did not change, more than a version with
// 1% of 100k rules changed adds in blobs (0.1 MB). So at the end of each
// write the values it stored are given its own keys again, largest first:
// the last leaf then holds its smallest values, and the next write
// rewrites only those.

// blobSeq returns the blob sequence before a write (0 without blobs).
func blobSeq(tx *bolt.Tx) uint64 {
	if b := tx.Bucket(bucketBlobs); b != nil {
		return b.Sequence()
	}
	return 0
}

// settleBlobs reorders the values stored after sequence start (in this
// transaction) by size, largest first, keeping their set of keys.
func settleBlobs(tx *bolt.Tx, start uint64) error {
	data, refs := tx.Bucket(bucketBlobs), tx.Bucket(bucketBlobRefs)
	if data == nil || refs == nil || data.Sequence() <= start+1 {
		return nil
	}
	type item struct {
		k     []byte
		seq   uint64
		count uint64
		val   []byte
	}
	var items []item
	err := refs.ForEach(func(k, v []byte) error {
		if len(v) != 16 {
			return nil // checkBlobs reports it
		}
		if seq := binary.BigEndian.Uint64(v); seq > start {
			items = append(items, item{k: slices.Clone(k), seq: seq, count: binary.BigEndian.Uint64(v[8:])})
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(items) < 3 {
		return nil
	}
	seqs := make([]uint64, 0, len(items))
	for i := range items {
		val := data.Get(u64(items[i].seq))
		if val == nil {
			return fmt.Errorf("blob %x has a count but no content", items[i].k[:8])
		}
		items[i].val = slices.Clone(val)
		seqs = append(seqs, items[i].seq)
	}
	slices.Sort(seqs)
	slices.SortStableFunc(items, func(a, b item) int {
		return cmp.Or(cmp.Compare(len(b.val), len(a.val)), cmp.Compare(a.seq, b.seq))
	})
	for i, it := range items {
		if err := data.Put(u64(seqs[i]), it.val); err != nil {
			return err
		}
		if err := refs.Put(it.k, binary.BigEndian.AppendUint64(u64(seqs[i]), it.count)); err != nil {
			return err
		}
	}
	return nil
}
