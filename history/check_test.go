package history

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"testing"
)

// TestConsistencyCheckOnOpen: damage that bbolt reads without complaint
// is found when the file is opened for writing: keys out of order in the
// hash index (lookups silently miss) by the guarded walk, a page both in
// use and on the free list (the next write would overwrite it) by bbolt's
// consistency check. Both are reported as ErrDamaged naming the file and
// the way back (an export); the file is left as it was.
func TestConsistencyCheckOnOpen(t *testing.T) {
	var hashes []string
	dir, realData := damageBase(t, func(s *Store) {
		for i := range 40 { // enough for the hash index to get pages of its own
			v, err := s.AddVersion("host", Version{Source: fmt.Sprint(i)}, []byte{byte(i)})
			if err != nil {
				t.Fatal(err)
			}
			hashes = append(hashes, v.Hash)
		}
		// Free pages, for the free list to hold some.
		for n := uint64(2); n <= 10; n++ {
			if err := s.DeleteVersion("host", n); err != nil {
				t.Fatal(err)
			}
		}
	})
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
	if found == 0 { // the live index page, and stale copies in free pages
		t.Fatal("found no index key to change")
	}
	tests := []struct {
		name  string
		data  []byte
		wants []string // in the error; none: the file opens
	}{
		{"intact", realData, nil},
		{"keys out of order in the hash index", outOfOrder, []string{"out of order"}},
		{"a page in use on the free list", freeRoot(t, realData), []string{"consistency check", "reachable freed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeCopy(t, dir, tt.name, tt.data)
			s, err := Open(path, Options{})
			if tt.wants == nil {
				if err != nil {
					t.Fatal(err)
				}
				if vs, err := s.Versions("host"); err != nil || len(vs) != 31 {
					t.Fatalf("%d versions, %v", len(vs), err)
				}
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				_ = s.Close()
				t.Fatal("Open accepted the damaged file")
			}
			if now, rerr := os.ReadFile(path); rerr != nil || !bytes.Equal(now, tt.data) {
				t.Errorf("the refused file changed (%v)", rerr)
			}
			checkRefused(t, path, err, append([]string{path, "fwslot import"}, tt.wants...)...)
		})
	}
}

// freeRoot returns a copy of a bbolt file whose free list names the
// root page of its root bucket: a page in use that the next write would
// reuse. Nothing bbolt checksums changes (the meta pages stay as they are).
func freeRoot(t *testing.T, data []byte) []byte {
	t.Helper()
	out := bytes.Clone(data)
	le := binary.LittleEndian
	// Meta pages 0 and 1: after the 16-byte page header, magic, version,
	// page size, flags (4 bytes each), the root bucket (root page, then
	// sequence), the free list page, the high-water mark, the txid.
	meta := func(i int) (pageSize, root, freelist, txid uint64) {
		m := out[i*4096+16:]
		pageSize = uint64(le.Uint32(m[8:]))
		return pageSize, le.Uint64(m[16:]), le.Uint64(m[32:]), le.Uint64(m[48:])
	}
	ps, root, fl, tx0 := meta(0)
	if _, r1, f1, tx1 := meta(1); tx1 > tx0 {
		root, fl = r1, f1
	}
	page := out[fl*ps:]
	if count := le.Uint16(page[10:]); count == 0 || count == 0xffff {
		t.Fatalf("free list page %d holds %d ids", fl, count)
	}
	le.PutUint64(page[16:], root) // the first free id
	return out
}
