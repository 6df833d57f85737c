package history

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Next returns the number the next AddVersion of target will assign. The
// caller holds the file (Open locks it), so the number is stable until it
// adds the version.
func (s *Store) Next(target string) (uint64, error) {
	if err := validTarget(target); err != nil {
		return 0, err
	}
	var n uint64
	err := s.view(func(tx *bolt.Tx) error {
		if vb := sub(targetBucket(tx, target), bucketVersions); vb != nil {
			n = vb.Sequence()
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("next version of %s in %s: %w", target, s.path, err)
	}
	return n + 1, nil
}
