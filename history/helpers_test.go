package history

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// addActivation records a under target in a transaction of its own.
func (s *Store) addActivation(target string, a Activation) (Activation, error) {
	return inTx(s, func(tx *Tx) (Activation, error) { return tx.AddActivation(target, a) })
}

// setKernel records the kernel state of target in a transaction of its own.
func (s *Store) setKernel(target string, k Kernel) error {
	_, err := inTx(s, func(tx *Tx) (struct{}, error) { return struct{}{}, tx.SetKernel(target, k) })
	return err
}

// readBack returns version n of target with its compiled form, failing t
// on an error.
func readBack(t *testing.T, s *Store, target string, n uint64) (Version, []byte) {
	t.Helper()
	v, err := s.Get(target, n)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Compiled(target, n)
	if err != nil {
		t.Fatal(err)
	}
	return v, c
}

// addBigSets stores count versions of an n-element set under "host",
// version i with the 1% of its elements changes(n, true, i) picks
// changed, and with the files files returns for its source (nil: none),
// checking the store after each; it returns their sources.
func addBigSets(t *testing.T, s *Store, n, count int, files func(src string) []File) []string {
	t.Helper()
	var srcs []string
	for i := range count {
		ch := changes(n, true, uint64(i+1))
		src := bigSetSource(n, ch)
		srcs = append(srcs, src)
		v := Version{Source: src}
		if files != nil {
			v.Files = files(src)
		}
		if _, err := s.AddVersion("host", v, bigCompiled(n, ch)); err != nil {
			t.Fatal(err)
		}
		checkStore(t, s)
	}
	return srcs
}

// damageBase builds a history file with fill, closes it and returns its
// directory and bytes: the intact file that damaged copies start from.
func damageBase(t *testing.T, fill func(*Store)) (string, []byte) {
	t.Helper()
	dir := t.TempDir()
	real := filepath.Join(dir, "real.db")
	s, err := Open(real, Options{})
	if err != nil {
		t.Fatal(err)
	}
	fill(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(real)
	if err != nil {
		t.Fatal(err)
	}
	return dir, data
}

// writeCopy writes data as a history file named after a test case in dir.
func writeCopy(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkRefused checks err, what opening or reading the damaged file path
// gave: ErrDamaged, saying to move the file aside and each of wants; and
// the refused file must not stay locked.
func checkRefused(t *testing.T, path string, err error, wants ...string) {
	t.Helper()
	if !errors.Is(err, ErrDamaged) {
		t.Errorf("error is not ErrDamaged: %v", err)
	}
	for _, want := range append([]string{"move it aside"}, wants...) {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	t.Log(err)
	if _, err := Open(path, Options{Timeout: -1}); errors.Is(err, ErrBusy) {
		t.Fatalf("the refused file stayed locked: %v", err)
	}
}
