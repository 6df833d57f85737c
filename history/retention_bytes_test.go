package history

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestPruneKeepBytes: never-live versions are kept newest first up to
// KeepBytes as well as Keep; live and protected versions stay whatever
// their size.
func TestPruneKeepBytes(t *testing.T) {
	const mib = 1 << 20
	cases := []struct {
		name      string
		sizes     []int // compiled bytes of versions 1..n
		live      []uint64
		keep      int
		keepBytes int64
		want      []uint64
	}{
		{"bytes bound before count", []int{mib, mib, mib, mib, mib, mib}, nil, 100, 3*mib + mib/2, []uint64{4, 5, 6}},
		{"count bound before bytes", []int{mib, mib, mib, mib}, nil, 2, 100 * mib, []uint64{3, 4}},
		{"a big version stops the walk", []int{1000, 1000, 5 * mib, 1000}, nil, 100, 2 * mib, []uint64{4}},
		{"live versions stay past the bound", []int{4 * mib, mib, mib, 4 * mib, mib}, []uint64{1, 4}, 100, mib + mib/2, []uint64{1, 4, 5}},
		{"negative: no byte bound", []int{mib, mib, mib}, nil, 100, -1, []uint64{1, 2, 3}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, _ := openTemp(t)
			for i, size := range c.sizes {
				if _, err := s.AddVersion("host", Version{Source: fmt.Sprintf("# %d\n", i)}, bytes.Repeat([]byte{'x'}, size)); err != nil {
					t.Fatal(err)
				}
			}
			var prev uint64
			for _, n := range c.live {
				if _, err := s.addActivation("host", Activation{From: prev, To: n, How: "swap"}); err != nil {
					t.Fatal(err)
				}
				prev = n
			}
			if _, err := s.Prune("host", Policy{Keep: c.keep, KeepBytes: c.keepBytes}); err != nil {
				t.Fatal(err)
			}
			if got := numbers(t, s, "host"); !slices.Equal(got, c.want) {
				t.Errorf("kept %v, want %v", got, c.want)
			}
		})
	}
}

// TestKeepBytesBoundsTheFile: 40 loads of 4 MiB versions, pruned after
// each with KeepBytes 16 MiB as load does, leave a file that stays near
// what is kept instead of growing to 160 MiB.
func TestKeepBytesBoundsTheFile(t *testing.T) {
	s, _ := openTemp(t)
	blob := bytes.Repeat([]byte{'y'}, 4<<20)
	for i := range 40 {
		v, err := s.AddVersion("host", Version{Source: fmt.Sprintf("# %d\n", i)}, blob)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Prune("host", Policy{Keep: 100, KeepBytes: 16 << 20, Protect: Protect(v.Number)}); err != nil {
			t.Fatal(err)
		}
	}
	size, err := s.size()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("file %d bytes after 40 versions of 4 MiB", size)
	if size > 48<<20 {
		t.Errorf("history file is %d bytes, want under 48 MiB", size)
	}
	if n := len(numbers(t, s, "host")); n > 5 {
		t.Errorf("%d versions kept, want at most 5 (4 within 16 MiB and the protected one)", n)
	}
}

// size returns the size in bytes of the history file's data, the
// high-water mark of bbolt's pages.
func (s *Store) size() (int64, error) {
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
