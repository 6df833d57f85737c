package history

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConsistencyCheckOnOpen: damage that bbolt reads without complaint
// (keys out of order in the hash index: lookups silently miss) is found
// by bbolt's consistency check when the file is opened for writing, and
// reported as ErrDamaged naming the file and the way back (an export);
// the file is left as it was.
func TestConsistencyCheckOnOpen(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real.db")
	s, err := Open(real, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var hashes []string
	for i := range 40 { // enough for the hash index to get pages of its own
		v, err := s.AddVersion("host", Version{Source: fmt.Sprint(i)}, []byte{byte(i)})
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, v.Hash)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	realData, err := os.ReadFile(real)
	if err != nil {
		t.Fatal(err)
	}
	// The smallest hash, as a key of the index (not inside a version's
	// JSON), made to sort last.
	smallest := hashes[0]
	for _, h := range hashes {
		smallest = min(smallest, h)
	}
	outOfOrder := bytes.Clone(realData)
	found := 0
	for off := 0; ; {
		i := bytes.Index(outOfOrder[off:], []byte(smallest))
		if i < 0 {
			break
		}
		at := off + i
		if !bytes.HasSuffix(outOfOrder[:at], []byte(`"hash":"`)) {
			outOfOrder[at] = 'z'
			found++
		}
		off = at + 1
	}
	if found != 1 {
		t.Fatalf("found the index key %d times, want once", found)
	}
	tests := []struct {
		name    string
		data    []byte
		damaged bool
	}{
		{"intact", realData, false},
		{"keys out of order in the hash index", outOfOrder, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".db")
			if err := os.WriteFile(path, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := Open(path, Options{})
			if !tt.damaged {
				if err != nil {
					t.Fatal(err)
				}
				if vs, err := s.Versions("host"); err != nil || len(vs) != 40 {
					t.Fatalf("%d versions, %v", len(vs), err)
				}
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				_ = s.Close()
				t.Fatal("Open accepted a file whose keys are out of order")
			}
			for _, want := range []string{path, "consistency check", "out of order", "fwslot import", "move it aside"} {
				if !strings.Contains(err.Error(), want) && !(want == "out of order" && strings.Contains(err.Error(), "needs to be")) {
					t.Errorf("error lacks %q: %v", want, err)
				}
			}
			t.Log(err)
			if !errors.Is(err, ErrDamaged) {
				t.Errorf("error is not ErrDamaged: %v", err)
			}
			if now, rerr := os.ReadFile(path); rerr != nil || !bytes.Equal(now, tt.data) {
				t.Errorf("the refused file changed (%v)", rerr)
			}
			if _, err := Open(path, Options{Timeout: -1}); errors.Is(err, ErrBusy) {
				t.Fatalf("the refused file stayed locked: %v", err)
			}
		})
	}
}
