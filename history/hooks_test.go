package history

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

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

// CopyFixture copies the history file fixture to a private file and
// returns its path and bytes.
func CopyFixture(t *testing.T, fixture string) (string, []byte) {
	t.Helper()
	data, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "fwslot.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, data
}

// MigrationStep is one step of the tests of histories written by an
// older schema: open the file (read-only or not), write one version or
// not, close it; Same says whether its bytes must be unchanged after.
type MigrationStep struct {
	Name            string
	ReadOnly, Write bool
	Same            bool
}

// RunMigrationStep runs st on the history at path, which held orig
// before the test: check runs once the file is open and again after
// the write (wrote true), which must migrate and write in one commit
// and read back compiled.
func RunMigrationStep(t *testing.T, path string, orig []byte, st MigrationStep, v Version, compiled []byte, check func(s *Store, wrote bool)) {
	t.Helper()
	s, err := Open(path, Options{ReadOnly: st.ReadOnly})
	if err != nil {
		t.Fatalf("%s: %v", st.Name, err)
	}
	check(s, false)
	if st.Write {
		before := s.Commits()
		got, err := s.AddVersion("host", v, compiled)
		if err != nil {
			t.Fatalf("%s: %v", st.Name, err)
		}
		if s.Commits()-before != 1 {
			t.Errorf("%s: migration and write took %d commits, want 1", st.Name, s.Commits()-before)
		}
		if blob, err := s.Compiled("host", got.Number); err != nil || !bytes.Equal(blob, compiled) {
			t.Fatalf("%s: new version's compiled form %x: %v", st.Name, blob, err)
		}
		check(s, true)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	now, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(now, orig) != st.Same {
		t.Errorf("%s: file unchanged = %v, want %v", st.Name, !st.Same, st.Same)
	}
}
