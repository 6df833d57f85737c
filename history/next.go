package history

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Next returns the number the next AddVersion of target will assign, for
// a caller that must name the version (say, tag a batch) before writing
// it. The number is only a forecast: AddVersion assigns numbers inside the
// transaction that writes the version (bbolt's bucket sequence), and a
// caller that relies on the forecast checks it in that same transaction
// (Update), rolling the version back when another writer took the number.
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
