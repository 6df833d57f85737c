package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/slots"
	"github.com/fwslot/fwslot/internal/testnet"
)

var updateHostile = flag.Bool("update-hostile", false, "rewrite the generated archives of testdata/hostile/import")

// hostileSource is a ruleset that compiles; the archives differ in what
// is wrong around it.
const hostileSource = "table inet filter {\n\tchain input { type filter hook input priority 0; policy accept; tcp dport 7 drop; }\n}\n"

// archiveEntry is one tar entry of a generated archive.
type archiveEntry struct {
	name string
	data []byte
}

// hostileArchive builds an export archive of recs and acts, with the
// manifest listing recs (mod edits it).
func hostileArchive(t testing.TB, recs []history.Record, acts []history.Activation, seq uint64, mod func(*history.Manifest)) []byte {
	t.Helper()
	m := history.Manifest{Format: history.ArchiveFormat, FormatVer: 1, Schema: history.ArchiveSchema, Target: "host",
		Exported: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Sequence: seq, Activations: len(acts), Versions: []history.ManifestItem{}}
	var entries []archiveEntry
	for _, r := range recs {
		m.Versions = append(m.Versions, history.ManifestItem{Version: r.Number, Hash: r.Hash, Entry: history.VersionEntry(r.Number)})
		data, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, archiveEntry{history.VersionEntry(r.Number), data})
	}
	if mod != nil {
		mod(&m)
	}
	if acts == nil {
		acts = []history.Activation{}
	}
	md, _ := json.Marshal(m)
	ad, _ := json.Marshal(acts)
	entries = append([]archiveEntry{{"manifest.json", md}}, append(entries, archiveEntry{"activations.json", ad})...)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: 0o600, Size: int64(len(e.data)), ModTime: m.Exported, Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestGenerateHostileArchives writes the generated archives of
// testdata/hostile/import with -update-hostile, and otherwise checks that
// the committed ones are what the generator writes. (The two sparse
// archives come from GNU tar; testdata/hostile/README.md says how.)
func TestGenerateHostileArchives(t *testing.T) {
	rec := func(n uint64, src string, f func(*history.Record)) history.Record {
		r := history.Record{Version: history.Version{Number: n, Hash: history.HashSource(src), User: "root",
			Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Message: "m", Origin: "file"}, Source: src}
		if f != nil {
			f(&r)
		}
		return r
	}
	act := history.Activation{Seq: 1, To: 1, How: "swap", User: "root", Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	pending := act
	pending.Result, pending.Deadline = "pending", time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC)
	oversized := func() []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		if err := tw.WriteHeader(&tar.Header{Name: "versions/00000001.json", Mode: 0o600, Size: 8 << 30, Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if err := tw.Flush(); err == nil { // the 8 GiB never follow
			t.Fatal("flush of a header whose data is missing succeeded")
		}
		return append(buf.Bytes(), make([]byte, 1024)...)
	}
	symlink := func() []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		if err := tw.WriteHeader(&tar.Header{Name: "manifest.json", Linkname: "/etc/shadow", Typeflag: tar.TypeSymlink}); err != nil {
			t.Fatal(err)
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	files := map[string][]byte{
		"version-max-uint64.tar": hostileArchive(t, []history.Record{rec(1<<64-1, hostileSource, nil)}, nil, 1<<64-1, nil),
		"duplicate-version.tar":  hostileArchive(t, []history.Record{rec(3, hostileSource, nil)}, nil, 3, func(m *history.Manifest) { m.Versions = append(m.Versions, m.Versions[0]) }),
		"pending-activation.tar": hostileArchive(t, []history.Record{rec(1, hostileSource, nil)}, []history.Activation{pending}, 1, nil),
		"forged-history-row.tar": hostileArchive(t, []history.Record{rec(1, hostileSource, func(r *history.Record) {
			r.Message = "ok\n9  2026-01-01 00:00:00  root  0000  +0 -0  1  production  approved"
		})}, nil, 1, nil),
		"escape-in-user.tar":      hostileArchive(t, []history.Record{rec(1, hostileSource, func(r *history.Record) { r.User = "\x1b[2J\x1b[Hroot" })}, []history.Activation{act}, 1, nil),
		"source-not-nft.tar":      hostileArchive(t, []history.Record{rec(1, "this is not a ruleset\n", nil)}, nil, 1, nil),
		"hash-mismatch.tar":       hostileArchive(t, []history.Record{rec(1, hostileSource, func(r *history.Record) { r.Source = "table inet filter {}\n" })}, nil, 1, nil),
		"oversized-entry.tar":     oversized(),
		"symlink-entry.tar":       symlink(),
		"duplicate-manifest.tar":  append(hostileArchive(t, nil, nil, 0, nil)[:0:0], dupManifest(t)...),
		"target-escape.tar":       hostileArchive(t, []history.Record{rec(1, hostileSource, nil)}, nil, 1, func(m *history.Manifest) { m.Target = "host\x1b]0;pwned\a" }),
		"activation-dangling.tar": hostileArchive(t, []history.Record{rec(1, sshOnly, nil), rec(2, webOnly, nil), rec(3, hostileSource, nil)}, []history.Activation{{Seq: 9, From: 1, To: 1 << 40, How: "swap"}}, 3, nil),
	}
	dir := filepath.Join(hostileDir, "import")
	for name, data := range files {
		p := filepath.Join(dir, name)
		if *updateHostile {
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		have, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("%v (run go test -run TestGenerateHostileArchives -update-hostile)", err)
		}
		if !bytes.Equal(have, data) {
			t.Errorf("%s differs from what the generator writes (run go test -run TestGenerateHostileArchives -update-hostile)", p)
		}
	}
}

// dupManifest is an archive with two manifests.
func dupManifest(t *testing.T) []byte {
	a := hostileArchive(t, nil, nil, 0, nil)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tr := tar.NewReader(bytes.NewReader(a))
	hdr, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	var data bytes.Buffer
	if _, err := data.ReadFrom(tr); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestImportRecompiles: an archive whose compiled form was swapped for
// another ruleset's (accept everything) imports, but the compiled form
// stored is rebuilt from the version's source; a rollback to it runs the
// source's rules, and packets prove it.
func TestImportRecompiles(t *testing.T) {
	ns, peer := testnet.Pair(t)
	testnet.Listen(t, ns, "tcp", ":80")
	testnet.Listen(t, ns, "tcp", ":22")
	dir := t.TempDir()
	g := []string{"--netns", ns, "--db", filepath.Join(dir, "a.db")}
	runSteps(t, g, [][]string{{"load", writeFile(t, "ssh.nft", sshOnly)}, {"swap"}})
	// The forged compiled form: a ruleset that accepts port 80 too.
	forgedFile := writeFile(t, "open.nft", strings.Replace(sshOnly, "tcp dport 22 accept", "tcp dport { 22, 80 } accept", 1))
	ifaces, err := slots.Interfaces(ns)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := slots.Compile(t.Context(), forgedFile, ifaces)
	if err != nil {
		t.Fatal(err)
	}
	blob, err := forged.Encode()
	if err != nil {
		t.Fatal(err)
	}
	s, err := history.Open(g[3], history.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var recs []history.Record
	if err := s.Export("netns:"+ns, func(r history.Record) error { recs = append(recs, r); return nil }); err != nil {
		t.Fatal(err)
	}
	// The archive carries the exported history's identity, as export
	// writes it, so the new history owns the target the old one owned.
	id, err := s.ID()
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	recs[0].Compiled = blob
	tarFile := filepath.Join(dir, "forged.tar")
	if err := os.WriteFile(tarFile, hostileArchive(t, recs, nil, 1, func(m *history.Manifest) { m.HistoryID = id }), 0o600); err != nil {
		t.Fatal(err)
	}
	// A new history on the same namespace, whose kernel runs version 1.
	fresh := []string{"--netns", ns, "--db", filepath.Join(dir, "b.db")}
	if out, code := run(t, append(fresh, "import", tarFile)...); code != 0 || !strings.Contains(out, "imported 1 versions (1)") {
		t.Fatalf("import: exit %d\n%s", code, out)
	}
	// Make another version live and stage a third over the slot that held
	// version 1, so that the rollback writes version 1 from history.
	third := writeFile(t, "third.nft", strings.Replace(webOnly, "dport 80", "dport 8080", 1))
	runSteps(t, fresh, [][]string{{"load", writeFile(t, "web.nft", webOnly)}, {"swap"}, {"load", third}, {"rollback", "--to", "1"}})
	if v := liveVersion(t, fresh...); v != 1 {
		t.Fatalf("live version %d, want 1", v)
	}
	if !testnet.Connect(peer, testnet.TargetIP+":22", 2*time.Second) {
		t.Error("port 22 is closed: version 1's source accepts it")
	}
	if testnet.Connect(peer, testnet.TargetIP+":80", 2*time.Second) {
		t.Error("port 80 is open: the forged compiled form is live, not version 1's source")
	}
}
