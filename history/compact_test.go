package history

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/fwslot/fwslot/internal/bigset"
	bolt "go.etcd.io/bbolt"
)

// bigSetSource returns a set of n IPv4 addresses written as the scale
// benchmark writes it (16 a line), with the addresses changed[i] replaced.
func bigSetSource(n int, changed map[int]bool) string {
	return bigset.Source(n, func(i int) uint32 { return bigAddr(i, changed) }, "")
}

// bigAddr is element i of bigSetSource and bigCompiled.
func bigAddr(i int, changed map[int]bool) uint32 {
	if changed[i] {
		return uint32(172)<<24 + uint32(i)
	}
	return uint32(10)<<24 + uint32(i)
}

// bigCompiled stands in for the compiled form of bigSetSource: per
// element, the netlink attributes of its key (12 bytes).
func bigCompiled(n int, changed map[int]bool) []byte {
	out := make([]byte, 0, n*13)
	for i := range n {
		a := bigAddr(i, changed)
		out = append(out, 12, 12, 0, 0x81, 8, 0, 1, 0, byte(a>>24), byte(a>>16), byte(a>>8), byte(a))
	}
	return out
}

// changes picks 1% of n elements: scattered at random, or one run.
func changes(n int, scattered bool, seed uint64) map[int]bool {
	out := map[int]bool{}
	rng := rand.New(rand.NewPCG(seed, seed))
	for len(out) < n/100 {
		if scattered {
			out[rng.IntN(n)] = true
		} else {
			out[n/3+len(out)] = true
		}
	}
	return out
}

// checkStore runs bbolt's consistency check and the blob reference check.
func checkStore(t *testing.T, s *Store) {
	t.Helper()
	err := s.view(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatalf("bbolt check: %v", err)
	}
	if err := s.CheckBlobs(); err != nil {
		t.Fatal(err)
	}
}

// blobBytes returns the stored bytes of all blobs.
func blobBytes(t *testing.T, s *Store) (n int64, count int) {
	t.Helper()
	err := s.view(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketBlobs); b != nil {
			return b.ForEach(func(_, v []byte) error { n += int64(len(v)); count++; return nil })
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n, count
}

// sortedRecords returns the 12-byte records of a compiled form in byte
// order, as slots encodes a hash set: changed elements move elsewhere.
func sortedRecords(comp []byte) []byte {
	var recs [][]byte
	for i := 0; i < len(comp); i += 12 {
		recs = append(recs, comp[i:i+12])
	}
	slices.SortFunc(recs, bytes.Compare)
	return bytes.Join(recs, nil)
}

// TestCompactStorage: a version of a big set is stored in much less than
// its source; a second version with 1% of the elements changed (spread at
// random, in one run, or spread with the compiled form sorted so that the
// changed elements move) adds at most 5% of the source; every version
// reads back byte-identical; the file stays consistent after each step.
func TestCompactStorage(t *testing.T) {
	const n = 200_000
	for _, tt := range []struct {
		name              string
		scattered, sorted bool
	}{{"scattered", true, false}, {"one run", false, false}, {"scattered, sorted", true, true}} {
		t.Run(tt.name, func(t *testing.T) {
			scattered := tt.scattered
			s, _ := openTemp(t)
			src1, comp1 := bigSetSource(n, nil), bigCompiled(n, nil)
			ch := changes(n, scattered, 1)
			src2, comp2 := bigSetSource(n, ch), bigCompiled(n, ch)
			if tt.sorted {
				comp1, comp2 = sortedRecords(comp1), sortedRecords(comp2)
			}
			files := func(src string) []File { return []File{{Path: "/etc/fw/big.nft", Content: []byte(src)}} }
			if _, err := s.AddVersion("host", Version{Source: src1, Files: files(src1)}, comp1); err != nil {
				t.Fatal(err)
			}
			checkStore(t, s)
			first, _ := blobBytes(t, s)
			if _, err := s.AddVersion("host", Version{Source: src2, Files: files(src2)}, comp2); err != nil {
				t.Fatal(err)
			}
			checkStore(t, s)
			second, _ := blobBytes(t, s)
			growth := second - first
			t.Logf("source %d bytes, compiled %d: first version %d bytes stored (%.2fx the source), second +%d (%.2f%% of the source)",
				len(src1), len(comp1), first, float64(first)/float64(len(src1)), growth, 100*float64(growth)/float64(len(src1)))
			if first > int64(len(src1))/2 {
				t.Errorf("first version takes %d bytes, more than half the %d-byte source", first, len(src1))
			}
			if growth > int64(len(src1))/20 {
				t.Errorf("second version adds %d bytes, more than 5%% of the %d-byte source", growth, len(src1))
			}
			for i, want := range []struct {
				src  string
				comp []byte
			}{{src1, comp1}, {src2, comp2}} {
				v, c := readBack(t, s, "host", uint64(i+1))
				if v.Source != want.src || len(v.Files) != 1 || string(v.Files[0].Content) != want.src || !bytes.Equal(c, want.comp) {
					t.Fatalf("version %d does not read back as stored", i+1)
				}
			}
		})
	}
}

// TestIncludeStoredOnce: an included file that did not change between
// versions (and the same content under two targets) is one blob.
func TestIncludeStoredOnce(t *testing.T) {
	s, _ := openTemp(t)
	include := []byte(strings.Repeat("define allowed = { 10.0.0.1, 10.0.0.2 }\n", 100))
	for i, target := range []string{"host", "host", "netns:blue"} {
		main := fmt.Sprintf("include \"/etc/fw/defs.nft\"\n# version %d\n", i)
		v := Version{Source: string(include) + main, Files: []File{{Path: "/etc/fw/main.nft", Content: []byte(main)}, {Path: "/etc/fw/defs.nft", Content: include}}}
		if _, err := s.AddVersion(target, v, []byte("compiled")); err != nil {
			t.Fatal(err)
		}
		checkStore(t, s)
	}
	err := s.view(func(tx *bolt.Tx) error {
		b, _ := openBlobs(tx, &s.codec, false)
		k := blobKey(sha256Of(include))
		if n := b.count(k); n != 3 {
			t.Errorf("the include is referenced %d times, want 3 (one blob)", n)
		}
		if n := b.count(blobKey(sha256Of([]byte("compiled")))); n != 3 {
			t.Errorf("the compiled form is referenced %d times, want 3 (one blob)", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestPruneFreesBlobs: prune and delete release the chunks only their
// versions held, keep the ones kept versions share (a delta's base too),
// and the kept versions read back byte-identical; an empty history holds
// no blob.
func TestPruneFreesBlobs(t *testing.T) {
	const n = 100_000
	s, _ := openTemp(t)
	srcs := addBigSets(t, s, n, 5, nil)
	before, _ := blobBytes(t, s)
	// Version 1 holds the delta bases of the others: pruning it must
	// keep them.
	res, err := s.Prune("host", Policy{Keep: 2, Protect: Protect(3)})
	if err != nil {
		t.Fatal(err)
	}
	checkStore(t, s)
	if fmt.Sprint(res.Removed) != "[1 2]" {
		t.Fatalf("removed %v, want [1 2]", res.Removed)
	}
	after, _ := blobBytes(t, s)
	if after >= before {
		t.Errorf("prune freed nothing: %d bytes before, %d after", before, after)
	}
	for _, k := range []uint64{3, 4, 5} {
		v, err := s.Get("host", k)
		if err != nil || v.Source != srcs[k-1] {
			t.Fatalf("version %d after prune: %v", k, err)
		}
	}
	if err := s.DeleteVersion("host", 5); err != nil {
		t.Fatal(err)
	}
	checkStore(t, s)
	for _, k := range []uint64{3, 4} {
		if err := s.DeleteVersion("host", k); err != nil {
			t.Fatal(err)
		}
		checkStore(t, s)
	}
	if left, count := blobBytes(t, s); count != 0 {
		t.Errorf("no version left, but %d blobs (%d bytes) are", count, left)
	}
}

// TestCanonicalKept: the canonical form Options.Canonical computes is
// kept with the version and read back; a source without one stores none;
// deleting the version releases its blobs.
func TestCanonicalKept(t *testing.T) {
	canon := func(src string) (string, error) {
		if strings.HasPrefix(src, "bad") {
			return "", errors.New("no canonical form")
		}
		return "CANON " + strings.ToUpper(src), nil
	}
	s, _ := openTempWith(t, Options{Canonical: canon})
	tests := []struct {
		src   string
		want  string
		found bool
	}{
		{"table inet filter {}\n", "CANON TABLE INET FILTER {}\n", true},
		{"bad source\n", "", false},
	}
	for i, tt := range tests {
		v, err := s.AddVersion("host", Version{Source: tt.src}, []byte{byte(i)})
		if err != nil {
			t.Fatal(err)
		}
		checkStore(t, s)
		got, found, err := s.Canonical("host", v.Number)
		if err != nil || got != tt.want || found != tt.found {
			t.Errorf("%q: canonical %q %v %v, want %q %v", tt.src, got, found, err, tt.want, tt.found)
		}
	}
	if _, _, err := s.Canonical("host", 9); !errors.Is(err, ErrNotFound) {
		t.Errorf("canonical of a missing version: %v", err)
	}
	for _, n := range []uint64{1, 2} {
		if err := s.DeleteVersion("host", n); err != nil {
			t.Fatal(err)
		}
		checkStore(t, s)
	}
	if _, count := blobBytes(t, s); count != 0 {
		t.Errorf("%d blobs left after deleting every version", count)
	}
}

// TestDeltaOps: ops built from a dictionary rebuild the content exactly,
// for content that shares nothing, all, or most of the dictionary; damaged
// ops are refused, never read outside the dictionary.
func TestDeltaOps(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		return b
	}
	dict := random(100_000)
	edited := slices.Clone(dict[1000:90_000])
	for i := 0; i < len(edited); i += 997 {
		edited[i] ^= 0x55
	}
	tests := []struct {
		name    string
		content []byte
	}{
		{"empty", nil},
		{"unrelated", random(5000)},
		{"same", dict},
		{"edited slice", edited},
		{"short", []byte("abc")},
	}
	for _, tt := range tests {
		ops := deltaOps(tt.content, dict)
		got, err := applyDelta(ops, dict, chunkMax)
		if err != nil || !bytes.Equal(got, tt.content) {
			t.Errorf("%s: rebuilt %d bytes of %d, %v", tt.name, len(got), len(tt.content), err)
		}
		t.Logf("%s: %d bytes of ops for %d bytes", tt.name, len(ops), len(tt.content))
	}
	for _, ops := range [][]byte{
		{3, 0x80},                      // copy of 1 byte, offset cut short
		{0x81, 0x01, 0},                // copy of 64 bytes... inside
		{5, 0xfe, 0xff, 0x0f},          // copy far outside
		{4, 'x'},                       // insert of 2 bytes, 1 there
		{0xff, 0xff, 0xff, 0xff, 0x0f}, // more than a chunk
	} {
		if got, err := applyDelta(ops, dict[:10], chunkMax); err == nil {
			t.Errorf("ops %x built %q", ops, got)
		}
	}
}
