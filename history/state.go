package history

import (
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

var (
	bucketState = []byte("state")
	keyKernel   = []byte("kernel")
)

// Kernel is what fwslot last left in a target's kernel: the versions in
// the live and the other slot, and the ruleset generation right after its
// last change. Boot restore rebuilds the slots from it, and a changed
// generation tells drift detection that someone else committed since.
type Kernel struct {
	Production uint64 `json:"production"`
	Staging    uint64 `json:"staging"`
	Gen        uint32 `json:"gen"`
}

// Kernel returns the recorded kernel state of target; false when none.
func (s *Store) Kernel(target string) (Kernel, bool, error) {
	var k Kernel
	found := false
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		k, found, err = readKernel(tx, target)
		return err
	})
	if err != nil {
		return Kernel{}, false, fmt.Errorf("read kernel state of %s in %s: %w", target, s.path, err)
	}
	return k, found, nil
}

// SetResult records how a pending activation ended ("confirmed",
// "reverted") with a note.
func (s *Store) SetResult(target string, seq uint64, result, note string) error {
	if err := s.Update(func(tx *Tx) error { return tx.SetResult(target, seq, result, note) }); err != nil {
		return fmt.Errorf("record result of activation %d of %s: %w", seq, target, err)
	}
	return nil
}

// Pending returns the activation of target that waits for confirmation,
// if any.
func (s *Store) Pending(target string) (Activation, bool, error) {
	a, ok, err := s.LastActivation(target)
	if err != nil || !ok || a.Result != "pending" {
		return Activation{}, false, err
	}
	return a, true, nil
}

// LastConfirmed returns the version that was last live by a plain or a
// confirmed activation: what boot restore brings back. A swap that was
// pending, reverted, rolled back or superseded never counts, whatever the
// kernel did meanwhile: an unconfirmed version may lock the operator out.
// 0 when none.
func (s *Store) LastConfirmed(target string) (uint64, error) {
	acts, err := s.Activations(target)
	if err != nil {
		return 0, err
	}
	for i := len(acts) - 1; i >= 0; i-- {
		if r := acts[i].Result; r == "" || r == "confirmed" {
			return acts[i].To, nil
		}
	}
	return 0, nil
}

// ErrInUse means a version cannot be deleted because history refers to it.
var ErrInUse = errors.New("version is referred to by an activation")

// DeleteVersion removes a version that never went live, such as one whose
// staging the kernel refused.
func (s *Store) DeleteVersion(target string, n uint64) error {
	err := s.update(func(tx *bolt.Tx) error {
		tb := targetBucket(tx, target)
		vb := sub(tb, bucketVersions)
		if vb == nil || vb.Get(u64(n)) == nil {
			return notFound(n)
		}
		if err := sub(tb, bucketActivations).ForEach(func(_, data []byte) error {
			a, err := decodeActivation(data)
			if err == nil && (a.To == n || a.From == n) {
				return ErrInUse
			}
			return err
		}); err != nil {
			return err
		}
		v, err := decodeVersion(vb.Get(u64(n)))
		if err != nil {
			return err
		}
		hb := tb.Bucket(bucketHashes)
		if got := hb.Get([]byte(v.Hash)); got != nil && string(got) == string(u64(n)) {
			if err := hb.Delete([]byte(v.Hash)); err != nil {
				return err
			}
		}
		blobs, err := openBlobs(tx, &s.codec, true)
		if err != nil {
			return err
		}
		if err := releaseContent(blobs, tb, u64(n)); err != nil {
			return err
		}
		for _, b := range [][]byte{bucketVersions, bucketSources, bucketCompiled} {
			if err := tb.Bucket(b).Delete(u64(n)); err != nil {
				return err
			}
		}
		// Give the number back when it was the newest, so numbers stay
		// dense after a refused load.
		if vb.Sequence() == n {
			return vb.SetSequence(n - 1)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete version %d of %s: %w", n, target, err)
	}
	return nil
}

// Meta returns a version's metadata without its source and files: what
// cross-checks with the kernel need, at a cost that does not grow with the
// ruleset.
func (s *Store) Meta(target string, n uint64) (Version, error) {
	var v Version
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		v, err = metaOf(tx, target, n)
		return err
	})
	if err != nil {
		return Version{}, fmt.Errorf("get %s version %d from %s: %w", target, n, s.path, err)
	}
	return v, nil
}
