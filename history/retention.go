package history

import (
	"encoding/binary"
	"fmt"
	"math"

	bolt "go.etcd.io/bbolt"
)

// DefaultKeep is how many versions that never went live retention keeps.
const DefaultKeep = 100

// DefaultKeepBytes is how many bytes of versions that never went live
// retention keeps (their metadata, sources, files and compiled forms):
// with DefaultKeep alone, 100 versions of 30 MiB would keep 12 GB.
const DefaultKeepBytes = 1 << 30

// Policy says which versions Prune keeps: every version an activation
// names (it was live once), the versions of the recorded kernel state
// (SetKernel), every version Protect accepts (say, the ones in the
// kernel's slots), and the newest of the others up to Keep versions and
// KeepBytes bytes, whichever comes first.
type Policy struct {
	// Keep is the number of never-live versions to keep, newest first;
	// negative means DefaultKeep.
	Keep int
	// KeepBytes bounds the stored bytes of the never-live versions kept,
	// newest first: the first version that would pass it goes, and every
	// older never-live version with it. Zero means DefaultKeepBytes;
	// negative means no bound.
	KeepBytes int64
	// Protect, when set, keeps any version it returns true for.
	Protect func(n uint64) bool
}

// Protect returns a Policy.Protect that keeps the given versions (zeros
// are ignored), for example what the production and staging slots hold.
func Protect(versions ...uint64) func(uint64) bool {
	set := map[uint64]bool{}
	for _, v := range versions {
		if v != 0 {
			set[v] = true
		}
	}
	return func(n uint64) bool { return set[n] }
}

// Pruned says what Prune did.
type Pruned struct {
	// Removed lists the deleted version numbers, ascending.
	Removed []uint64 `json:"removed"`
	// Kept is the number of versions left.
	Kept int `json:"kept"`
}

// Prune deletes the versions of target that p does not keep, in one
// transaction. Numbers are never reused: the next version still gets the
// next number. bbolt reuses the freed pages for later versions, so with
// regular pruning the file stops growing once it holds what is kept.
func (s *Store) Prune(target string, p Policy) (Pruned, error) {
	return inTx(s, func(tx *Tx) (Pruned, error) { return tx.Prune(target, p) })
}

// Prune deletes the versions of target that p does not keep (see
// Store.Prune). On an error the caller must roll the transaction back:
// part of the versions may be deleted.
func (t *Tx) Prune(target string, p Policy) (Pruned, error) {
	if err := validTarget(target); err != nil {
		return Pruned{}, err
	}
	keep := p.Keep
	if keep < 0 {
		keep = DefaultKeep
	}
	keepBytes := p.KeepBytes
	switch {
	case keepBytes == 0:
		keepBytes = DefaultKeepBytes
	case keepBytes < 0:
		keepBytes = math.MaxInt64
	}
	res := Pruned{Removed: []uint64{}}
	err := func(tx *bolt.Tx) error {
		tb := targetBucket(tx, target)
		vb := sub(tb, bucketVersions)
		if vb == nil {
			return nil
		}
		live := map[uint64]bool{}
		if ab := tb.Bucket(bucketActivations); ab != nil {
			if err := ab.ForEach(func(_, data []byte) error {
				a, err := decodeActivation(data)
				live[a.From], live[a.To] = true, true
				return err
			}); err != nil {
				return err
			}
		}
		// What fwslot last left in the kernel's slots (boot restore
		// rebuilds it) stays too.
		if sb := tb.Bucket(bucketState); sb != nil {
			if data := sb.Get(keyKernel); data != nil {
				var k Kernel
				if err := decodeJSON(data, &k); err != nil {
					return fmt.Errorf("recorded kernel state: %w", err)
				}
				live[k.Production], live[k.Staging] = true, true
			}
		}
		// Walk newest first: the first `keep` never-live versions stay,
		// as long as their bytes stay within keepBytes.
		var drop []uint64
		staged, full := 0, false
		var bytes int64
		c := vb.Cursor()
		for k, meta := c.Last(); k != nil; k, meta = c.Prev() {
			n := binary.BigEndian.Uint64(k)
			switch {
			case live[n], p.Protect != nil && p.Protect(n):
				res.Kept++
				continue
			case staged >= keep || full:
				drop = append(drop, n)
				continue
			}
			size := int64(len(meta))
			if v, err := decodeVersion(meta); err == nil && v.Summary != nil {
				// Stored as chunks: count what the version holds
				// before deduplication, which does not depend on
				// what other versions share.
				size += v.Summary.Bytes
			} else {
				for _, name := range [][]byte{bucketSources, bucketCompiled} {
					if b := tb.Bucket(name); b != nil {
						size += int64(len(b.Get(k)))
					}
				}
			}
			if bytes+size > keepBytes {
				full = true
				drop = append(drop, n)
				continue
			}
			bytes += size
			staged++
			res.Kept++
		}
		if len(drop) == 0 {
			return nil
		}
		blobs, err := openBlobs(tx, t.c, true)
		if err != nil {
			return err
		}
		hashes := map[string]bool{} // hashes whose index entry pointed at a dropped version
		hb := tb.Bucket(bucketHashes)
		for i := len(drop) - 1; i >= 0; i-- {
			n := drop[i]
			key := u64(n)
			v, err := decodeVersion(vb.Get(key))
			if err != nil {
				return fmt.Errorf("version %d: %w", n, err)
			}
			if hb != nil {
				if got := hb.Get([]byte(v.Hash)); got != nil && binary.BigEndian.Uint64(got) == n {
					if err := hb.Delete([]byte(v.Hash)); err != nil {
						return err
					}
					hashes[v.Hash] = true
				}
			}
			if err := releaseContent(blobs, tb, key); err != nil {
				return fmt.Errorf("version %d: %w", n, err)
			}
			for _, name := range [][]byte{bucketVersions, bucketSources, bucketCompiled} {
				if b := tb.Bucket(name); b != nil {
					if err := b.Delete(key); err != nil {
						return err
					}
				}
			}
			res.Removed = append(res.Removed, n)
		}
		// A kept older version with the same content takes over the hash.
		if len(hashes) > 0 && hb != nil {
			return vb.ForEach(func(k, data []byte) error {
				v, err := decodeVersion(data)
				if err != nil || !hashes[v.Hash] {
					return err
				}
				return hb.Put([]byte(v.Hash), k)
			})
		}
		return nil
	}(t.tx)
	if err != nil {
		return Pruned{}, fmt.Errorf("prune %s history: %w", target, err)
	}
	return res, nil
}
