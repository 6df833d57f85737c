package rulediff

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/bigset"
	"github.com/fwslot/fwslot/internal/gen"
	"github.com/fwslot/fwslot/internal/slots"
	"github.com/fwslot/fwslot/internal/source"
)

// The scale rows of issue 11 that history and diff own, on real compiled
// forms (nft compiles each version in a private namespace, once, outside
// the timed part):
//
//	go test -run '^$' -bench Scale -benchtime 3x ./rulediff/
//
// Each benchmark stores version 1 and version 2 in a new history file and
// reports: file_MB after version 1 (and x_source: file / source), growth
// of the file for version 2 (grow_MB, grow_pct of the source), list_ms
// (Versions, what `fwslot history` reads) and per iteration the diff of
// version 1 and 2 as `fwslot diff 1 2` computes it from the kept
// canonical forms (ns/op, and peak_heap_MB). FWSLOT_SCALE_DB=DIR keeps
// the history files there, for timing the fwslot binary on them.

// bigAddrSource writes the scale benchmark's set (bench/bigset.go): one
// table, one set of n IPv4 addresses 16 a line, one rule; every 100th
// address from offset changed moved to 172/8 (1% of the elements, spread
// evenly: the worst case for chunking), none when changed < 0.
func bigAddrSource(n, changed int) string {
	addr := func(i int) uint32 {
		if changed >= 0 && i%100 == changed {
			return uint32(172)<<24 + uint32(i)
		}
		return uint32(10)<<24 + uint32(1)<<21 + uint32(i)
	}
	return fmt.Sprintf("# %d-element set\n", n) + bigset.Source(n, addr,
		"\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n\t\tip saddr @big counter drop\n\t}\n")
}

var dportRE = regexp.MustCompile(`dport (\d+) `)

// tenRulesChanged changes the port of 10 rules spread over src.
func tenRulesChanged(src string) string {
	lines := strings.Split(src, "\n")
	var idx []int
	for i, l := range lines {
		if strings.HasPrefix(l, "\t\t") && dportRE.MatchString(l) {
			idx = append(idx, i)
		}
	}
	for k := range 10 {
		i := idx[k*len(idx)/10]
		lines[i] = dportRE.ReplaceAllStringFunc(lines[i], func(m string) string {
			n, _ := strconv.Atoi(dportRE.FindStringSubmatch(m)[1])
			return fmt.Sprintf("dport %d ", 1+n%65000)
		})
	}
	return strings.Join(lines, "\n")
}

func BenchmarkScaleBigSet(b *testing.B) {
	benchScale(b, "bigset", bigAddrSource(1_000_000, -1), bigAddrSource(1_000_000, 7))
}

func BenchmarkScale100kRules(b *testing.B) {
	v1 := gen.Ruleset(gen.Options{Rules: 100_000, Seed: 1, Sets: true})
	benchScale(b, "rules100k", v1, tenRulesChanged(v1))
}

func benchScale(b *testing.B, name, v1, v2 string) {
	ctx := context.Background()
	dir := b.TempDir()
	if keep := os.Getenv("FWSLOT_SCALE_DB"); keep != "" {
		dir = keep
	}
	db := filepath.Join(dir, name+".db")
	os.Remove(db)
	var compiled [2][]byte
	for i, src := range []string{v1, v2} {
		bun, err := source.FromText(fmt.Sprintf("/%s-v%d.nft", name, i+1), src)
		if err != nil {
			b.Fatal(err)
		}
		rs, err := slots.CompileBundle(ctx, bun, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		if compiled[i], err = rs.Encode(); err != nil {
			b.Fatal(err)
		}
	}
	canon := func(src string) (string, error) {
		rs, err := FromSource(src)
		if err != nil {
			return "", err
		}
		return canonicalText(rs), nil
	}
	s, err := history.Open(db, history.Options{Canonical: canon})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	size := func() float64 {
		st, err := os.Stat(db)
		if err != nil {
			b.Fatal(err)
		}
		return float64(st.Size()) / 1e6
	}
	srcMB := float64(len(v1)) / 1e6
	var store [2]time.Duration
	var files [2]float64
	var blobs [2]history.BlobStats
	for i, src := range []string{v1, v2} {
		start := time.Now()
		if _, err := s.AddVersion("netns:bench", history.Version{Source: src, Files: []history.File{{Path: "/etc/fw/" + name + ".nft", Content: []byte(src)}}}, compiled[i]); err != nil {
			b.Fatal(err)
		}
		store[i] = time.Since(start)
		files[i] = size()
		if blobs[i], err = s.BlobStats(); err != nil {
			b.Fatal(err)
		}
	}
	first, grow := files[0], files[1]-files[0]
	blobGrow := float64(blobs[1].Bytes-blobs[0].Bytes) / 1e6
	s.Close()
	b.ReportMetric(first, "file_MB")
	b.ReportMetric(first/srcMB, "x_source")
	b.ReportMetric(grow, "grow_MB")
	b.ReportMetric(100*grow/srcMB, "grow_pct")
	b.ReportMetric(100*blobGrow/srcMB, "blob_grow_pct")
	b.Logf("%s: blobs %.2f MB after version 1, +%.3f MB for version 2", name, float64(blobs[0].Bytes)/1e6, blobGrow)
	b.ReportMetric(float64(store[1].Milliseconds()), "store_v2_ms")
	b.Logf("%s: source %.1f MB, compiled %.1f MB; file %.2f MB after version 1, +%.2f MB for version 2 (file sizes move in bbolt's 256 KiB steps); storing took %v and %v",
		name, srcMB, float64(len(compiled[0]))/1e6, first, grow, store[0].Round(time.Millisecond), store[1].Round(time.Millisecond))

	s, err = history.Open(db, history.Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	vs, err := s.Versions("netns:bench")
	if err != nil || len(vs) != 2 || vs[1].Summary == nil {
		b.Fatalf("versions %+v %v", vs, err)
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/1000, "list_ms")
	b.Logf("%s: version 2 changes +%d -%d lines", name, vs[1].Summary.Added, vs[1].Summary.Removed)

	var peak uint64
	b.ResetTimer()
	for range b.N {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		var sides [2]*Ruleset
		for i := range sides {
			text, ok, err := s.Canonical("netns:bench", uint64(i+1))
			if err != nil || !ok {
				b.Fatalf("canonical form of version %d: %v %v", i+1, ok, err)
			}
			if sides[i], err = ParseCanonical(text); err != nil {
				b.Fatal(err)
			}
		}
		changes := Compare(sides[0], sides[1])
		if len(changes) == 0 {
			b.Fatal("no differences")
		}
		if err := WriteText(io.Discard, changes, Style{Context: 3}); err != nil {
			b.Fatal(err)
		}
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		peak = max(peak, after.HeapInuse)
	}
	b.ReportMetric(float64(peak)/1e6, "peak_heap_MB")
}
