package history

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fwslot/fwslot/internal/gen"
)

// addN adds versions with distinct sources and returns their numbers.
func addN(t testing.TB, s *Store, target string, n int, tag string) []uint64 {
	t.Helper()
	var out []uint64
	for i := 0; i < n; i++ {
		v, err := s.AddVersion(target, Version{Source: fmt.Sprintf("# %s %d\n", tag, i), Message: tag}, []byte(tag))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, v.Number)
	}
	return out
}

func numbers(t testing.TB, s *Store, target string) []uint64 {
	t.Helper()
	vs, err := s.Versions(target)
	if err != nil {
		t.Fatal(err)
	}
	var out []uint64
	for _, v := range vs {
		out = append(out, v.Number)
	}
	return out
}

func TestPrune(t *testing.T) {
	cases := []struct {
		name    string
		total   int
		live    [][2]uint64 // activations from -> to
		keep    int
		protect []uint64
		want    []uint64
	}{
		{"nothing to prune", 3, nil, 5, nil, []uint64{1, 2, 3}},
		{"newest staged stay", 6, nil, 2, nil, []uint64{5, 6}},
		{"live versions stay", 8, [][2]uint64{{0, 2}, {2, 4}, {4, 2}}, 1, nil, []uint64{2, 4, 8}},
		{"protected stay", 6, nil, 1, []uint64{1, 3}, []uint64{1, 3, 6}},
		{"keep zero", 4, [][2]uint64{{0, 1}}, 0, []uint64{4}, []uint64{1, 4}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, _ := openTemp(t)
			addN(t, s, "host", c.total, "v")
			for _, a := range c.live {
				if _, err := s.addActivation("host", Activation{From: a[0], To: a[1], How: "swap"}); err != nil {
					t.Fatal(err)
				}
			}
			res, err := s.Prune("host", Policy{Keep: c.keep, Protect: Protect(c.protect...)})
			if err != nil {
				t.Fatal(err)
			}
			if got := numbers(t, s, "host"); !slices.Equal(got, c.want) {
				t.Fatalf("kept %v, want %v", got, c.want)
			}
			if res.Kept != len(c.want) || len(res.Removed) != c.total-len(c.want) {
				t.Fatalf("result %+v", res)
			}
			for _, n := range res.Removed {
				if _, err := s.Get("host", n); err == nil {
					t.Fatalf("version %d still readable", n)
				}
				if _, err := s.Compiled("host", n); err == nil {
					t.Fatalf("compiled form of version %d still readable", n)
				}
			}
			// Numbers are never reused.
			v, err := s.AddVersion("host", Version{Source: "new\n"}, nil)
			if err != nil || v.Number != uint64(c.total+1) {
				t.Fatalf("next version after prune: %d, %v", v.Number, err)
			}
		})
	}
}

// A pruned version's hash no longer finds it; a kept older version with the
// same content takes the hash over.
func TestPruneHashes(t *testing.T) {
	s, _ := openTemp(t)
	a, err := s.AddVersion("host", Version{Source: "same\n"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.addActivation("host", Activation{To: a.Number, How: "swap"}); err != nil {
		t.Fatal(err)
	}
	b, _ := s.AddVersion("host", Version{Source: "same\n"}, nil) // same hash, newer
	c, _ := s.AddVersion("host", Version{Source: "other\n"}, nil)
	addN(t, s, "host", 2, "filler")
	if _, err := s.Prune("host", Policy{Keep: 2}); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := s.FindHash("host", b.Hash); err != nil || !ok || v.Number != a.Number {
		t.Fatalf("hash of pruned version %d: %+v %v %v, want version %d", b.Number, v, ok, err, a.Number)
	}
	if _, ok, _ := s.FindHash("host", c.Hash); ok {
		t.Fatalf("pruned version %d still found by hash", c.Number)
	}
}

func TestPruneKeepsKernelState(t *testing.T) {
	s, _ := openTemp(t)
	addN(t, s, "host", 5, "v")
	if err := s.setKernel("host", Kernel{Production: 1, Staging: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prune("host", Policy{Keep: 0}); err != nil {
		t.Fatal(err)
	}
	if got := numbers(t, s, "host"); !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("kept %v, want the recorded slots 1 and 2", got)
	}
}

func TestPruneOtherTargetUntouched(t *testing.T) {
	s, _ := openTemp(t)
	addN(t, s, "host", 5, "h")
	addN(t, s, "netns:x", 5, "x")
	if _, err := s.Prune("host", Policy{Keep: 1}); err != nil {
		t.Fatal(err)
	}
	if got := numbers(t, s, "netns:x"); len(got) != 5 {
		t.Fatalf("other target lost versions: %v", got)
	}
	if _, err := s.Prune("bogus", Policy{}); err == nil || !strings.Contains(err.Error(), "invalid history target") {
		t.Fatalf("bad target: %v", err)
	}
	if res, err := s.Prune("netns:empty", Policy{}); err != nil || res.Kept != 0 {
		t.Fatalf("empty target: %+v %v", res, err)
	}
}

// BenchmarkHistory10kVersions loads 10,000 distinct versions of a realistic
// ruleset (60 rules, a compiled blob of similar size), pruning after each
// as load does, with every 50th version made live. It reports the file
// size after 1,000 and after 10,000 loads (bounded: freed pages are
// reused), the cost of one add+prune, and then times Versions(), what
// `fwslot history` reads.
func BenchmarkHistory10kVersions(b *testing.B) {
	const loads = 10000
	path := filepath.Join(b.TempDir(), "fwslot.db")
	s, err := Open(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	base := gen.Ruleset(gen.Options{Rules: 60, Seed: 1, Sets: true})
	blob := []byte(strings.Repeat(base, 2))
	var live uint64
	var size1k int64
	start := time.Now()
	for i := 1; i <= loads; i++ {
		src := fmt.Sprintf("# load %d\n%s", i, base)
		v, err := s.AddVersion("host", Version{Source: src, Files: []File{{Path: "/etc/fwslot/ruleset.nft", Content: []byte(src)}}, Rules: 60}, blob)
		if err != nil {
			b.Fatal(err)
		}
		if i%50 == 0 {
			if _, err := s.addActivation("host", Activation{From: live, To: v.Number, How: "swap"}); err != nil {
				b.Fatal(err)
			}
			live = v.Number
		}
		if _, err := s.Prune("host", Policy{Keep: DefaultKeep, Protect: Protect(live, v.Number)}); err != nil {
			b.Fatal(err)
		}
		if i == 1000 {
			size1k = fileSize(b, path)
		}
	}
	perLoad := time.Since(start) / loads
	size10k := fileSize(b, path)
	vs, err := s.Versions("host")
	if err != nil {
		b.Fatal(err)
	}
	if want := loads/50 + DefaultKeep; len(vs) > want+1 || len(vs) < want-1 {
		b.Fatalf("%d versions kept, want about %d", len(vs), want)
	}
	if size10k > 2*size1k+(1<<20) {
		b.Fatalf("file grows without bound: %d bytes after 1k loads, %d after 10k", size1k, size10k)
	}
	for b.Loop() {
		if _, err := s.Versions("host"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(size1k), "bytes@1k")
	b.ReportMetric(float64(size10k), "bytes@10k")
	b.ReportMetric(float64(len(vs)), "versions")
	b.ReportMetric(float64(perLoad.Microseconds()), "µs/add+prune")
}

func fileSize(b *testing.B, path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	return fi.Size()
}
