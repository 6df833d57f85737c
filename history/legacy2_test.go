package history_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/histfixture"
)

// fixture2 is a history written by schema 2 (the format byte on every
// value, sources as JSON, compiled forms whole) by internal/histfixture.
const fixture2 = "testdata/v2-history.db"

// fixtureVersions lists what the fixture holds per target: version
// number -> the source it was written with, its files and compiled form.
type fixtureVersion struct {
	n        uint64
	source   string
	files    []history.File
	user     string
	origin   string
	compiled []byte
}

func fixtureVersions(target string) []fixtureVersion {
	bundle := func(n int) []history.File {
		return []history.File{{Path: "/etc/fw/main.nft", Content: []byte(histfixture.Main(n))}, {Path: "/etc/fw/sets.nft", Content: []byte(histfixture.Include)}}
	}
	if target == "netns:edge" {
		return []fixtureVersion{
			{1, histfixture.Flat(2), bundle(2), "carol", "file", histfixture.Compiled(1)},
			{2, histfixture.Single(target, 2), nil, "carol", "file", histfixture.Compiled(2)},
		}
	}
	var out []fixtureVersion
	for n := 1; n <= 6; n++ {
		v := fixtureVersion{n: uint64(n), user: "alice", origin: "file", compiled: histfixture.Compiled(n)}
		switch n {
		case 5:
			continue // deleted
		case 2, 3:
			v.source, v.files = histfixture.Flat(n), bundle(n)
		case 6:
			v.source, v.user, v.origin = histfixture.Single(target, n), "bob", "commit"
		default:
			v.source = histfixture.Single(target, n)
			v.files = []history.File{{Path: "/etc/fw/main.nft", Content: []byte(v.source)}}
		}
		out = append(out, v)
	}
	return out
}

// checkFixture2 asserts that s holds every version, activation and
// record the fixture was written with, byte for byte.
func checkFixture2(t *testing.T, s *history.Store) {
	t.Helper()
	for _, target := range []string{"host", "netns:edge"} {
		want := fixtureVersions(target)
		vs, err := s.Versions(target)
		if err != nil {
			t.Fatal(err)
		}
		var got []uint64
		for _, v := range vs {
			if v.Number <= 6 {
				got = append(got, v.Number)
			}
		}
		var wantN []uint64
		for _, w := range want {
			wantN = append(wantN, w.n)
		}
		if fmt.Sprint(got) != fmt.Sprint(wantN) {
			t.Fatalf("%s versions %v, want %v", target, got, wantN)
		}
		for _, w := range want {
			v, err := s.Get(target, w.n)
			if err != nil {
				t.Fatal(err)
			}
			if v.Source != w.source || v.Hash != history.HashSource(w.source) || v.User != w.user || v.Origin != w.origin {
				t.Fatalf("%s version %d: %+v", target, w.n, v)
			}
			if len(v.Files) != len(w.files) {
				t.Fatalf("%s version %d: %d files, want %d", target, w.n, len(v.Files), len(w.files))
			}
			for i, f := range w.files {
				if v.Files[i].Path != f.Path || !bytes.Equal(v.Files[i].Content, f.Content) {
					t.Fatalf("%s version %d file %d: %q", target, w.n, i, v.Files[i].Path)
				}
			}
			blob, err := s.Compiled(target, w.n)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(blob, w.compiled) {
				t.Fatalf("%s version %d: compiled form differs (%d bytes)", target, w.n, len(blob))
			}
			m, err := s.Meta(target, w.n)
			if err != nil || m.Hash != v.Hash || !m.Time.Equal(v.Time) {
				t.Fatalf("%s meta of %d: %+v %v", target, w.n, m, err)
			}
		}
		acts, err := s.Activations(target)
		if err != nil {
			t.Fatal(err)
		}
		if target == "netns:edge" {
			if len(acts) < 1 || acts[0].To != 1 || acts[0].User != "carol" {
				t.Fatalf("%s activations %+v", target, acts)
			}
			continue
		}
		if len(acts) < 5 || acts[1].Result != "confirmed" || acts[1].Note != "confirmed by alice" || acts[2].Result != "reverted" ||
			acts[3].How != "revert" || acts[4].Result != "pending" || !acts[4].Deadline.Equal(histfixture.At(24)) {
			t.Fatalf("%s activations %+v", target, acts)
		}
		if k, ok, err := s.Kernel(target); err != nil || !ok || k != (history.Kernel{Production: 4, Staging: 6, Gen: 77}) {
			t.Fatalf("%s kernel %+v %v %v", target, k, ok, err)
		}
		if n, err := s.Next(target); err != nil || n < 7 {
			t.Fatalf("%s next %d %v", target, n, err)
		}
	}
}

// TestSchema2HistoryOpensAndKeepsEveryVersion: a history written by
// schema 2 opens read-only and read-write without a byte changing; its
// first write migrates it in that write's commit; every version (sources,
// files, compiled forms), activation and the kernel record read the same
// before, after and after reopening; export and import carry them all;
// retention after the migration keeps what it must.
func TestSchema2HistoryOpensAndKeepsEveryVersion(t *testing.T) {
	path, data := history.CopyFixture(t, fixture2)
	steps := []history.MigrationStep{
		{Name: "read-only open", ReadOnly: true, Same: true},
		{Name: "read-write open without writing", Same: true},
		{Name: "first write migrates", Write: true},
		{Name: "reopen after migration", Write: true},
		{Name: "read-only after migration", ReadOnly: true},
	}
	for i, st := range steps {
		v := history.Version{Source: histfixture.Flat(100 + i), Files: []history.File{{Path: "/etc/fw/sets.nft", Content: []byte(histfixture.Include)}}}
		history.RunMigrationStep(t, path, data, st, v, histfixture.Compiled(100+i), func(s *history.Store, wrote bool) {
			checkFixture2(t, s)
			if !wrote {
				return
			}
			if err := s.CheckBlobs(); err != nil {
				t.Fatalf("%s: %v", st.Name, err)
			}
			if got, err := history.SchemaForTest(s); err != nil || got != history.SchemaVersionForTest {
				t.Errorf("%s: schema %d %v, want %d", st.Name, got, err, history.SchemaVersionForTest)
			}
		})
	}

	// Export the migrated file and import it into a new history.
	s, err := history.Open(path, history.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// A pending swap is not exported (import refuses it): confirm it.
	if err := s.SetResult("host", 5, "confirmed", ""); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := s.WriteArchive(&buf, "host"); err != nil {
		t.Fatal(err)
	}
	m, recs, acts, err := history.ReadArchive(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		recs[i].Compiled = histfixture.Compiled(int(recs[i].Number)) // rebuilt by the caller
	}
	other, err := history.Open(filepath.Join(t.TempDir(), "other.db"), history.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.Import("host", recs, acts, m.Sequence); err != nil {
		t.Fatal(err)
	}
	for _, w := range fixtureVersions("host") {
		v, err := other.Get("host", w.n)
		if err != nil || v.Source != w.source || len(v.Files) != len(w.files) {
			t.Fatalf("imported version %d: %+v %v", w.n, v, err)
		}
	}

	// Retention after migration: every version that was live or is in
	// the kernel record stays; the never-live commit goes with Keep 0.
	res, err := s.Prune("host", history.Policy{Keep: 0})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []uint64{1, 2, 3, 4, 6} {
		if _, err := s.Get("host", n); err != nil {
			t.Fatalf("after prune %v: version %d: %v", res.Removed, n, err)
		}
	}
	if err := s.CheckBlobs(); err != nil {
		t.Fatal(err)
	}
}
