package history

import bolt "go.etcd.io/bbolt"

// SchemaForTest returns the schema of the file s holds, for the tests of
// package history_test.
func SchemaForTest(s *Store) (uint64, error) {
	var n uint64
	err := s.view(func(tx *bolt.Tx) error { n = schemaOf(tx); return nil })
	return n, err
}

// SchemaVersionForTest is the schema this package writes, for the tests of
// package history_test.
const SchemaVersionForTest = schemaVersion
