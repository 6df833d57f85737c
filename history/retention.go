package history

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// DefaultKeep is how many versions that never went live retention keeps.
const DefaultKeep = 100

// Policy says which versions Prune keeps: every version an activation
// names (it was live once), the versions of the recorded kernel state
// (SetKernel), every version Protect accepts (say, the ones in the
// kernel's slots), and the newest Keep of the others.
type Policy struct {
	// Keep is the number of never-live versions to keep, newest first;
	// negative means DefaultKeep.
	Keep int
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
	if err := validTarget(target); err != nil {
		return Pruned{}, err
	}
	keep := p.Keep
	if keep < 0 {
		keep = DefaultKeep
	}
	res := Pruned{Removed: []uint64{}}
	err := s.update(func(tx *bolt.Tx) error {
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
				if err := json.Unmarshal(data, &k); err != nil {
					return fmt.Errorf("recorded kernel state: %w", err)
				}
				live[k.Production], live[k.Staging] = true, true
			}
		}
		// Walk newest first: the first `keep` never-live versions stay.
		var drop []uint64
		staged := 0
		c := vb.Cursor()
		for k, _ := c.Last(); k != nil; k, _ = c.Prev() {
			n := binary.BigEndian.Uint64(k)
			switch {
			case live[n], p.Protect != nil && p.Protect(n):
				res.Kept++
			case staged < keep:
				staged++
				res.Kept++
			default:
				drop = append(drop, n)
			}
		}
		if len(drop) == 0 {
			return nil
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
	})
	if err != nil {
		return Pruned{}, fmt.Errorf("prune %s history in %s: %w", target, s.path, err)
	}
	return res, nil
}

// Size returns the size in bytes of the history file's data, the
// high-water mark of bbolt's pages.
func (s *Store) Size() (int64, error) {
	var n int64
	err := s.view(func(tx *bolt.Tx) error {
		n = tx.Size()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("size of history %s: %w", s.path, err)
	}
	return n, nil
}
