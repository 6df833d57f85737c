package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/testnet"
)

func historyID(t *testing.T, db string) string {
	t.Helper()
	s, err := history.Open(db, history.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	id, err := s.ID()
	if err != nil || id == "" {
		t.Fatalf("history %s has no identity: %q %v", db, id, err)
	}
	return id
}

// A second history for a target that another history manages is refused
// (exit 1), naming the owner, and changes neither the kernel nor its own
// file; a history imported from the owner's export into a new file owns
// the target.
func TestOneHistoryPerTarget(t *testing.T) {
	ns, _ := testnet.Pair(t)
	dir := t.TempDir()
	owner, other, imported := filepath.Join(dir, "owner.db"), filepath.Join(dir, "other.db"), filepath.Join(dir, "imported.db")
	g := func(db string, args ...string) []string { return append([]string{"--netns", ns, "--db", db}, args...) }
	for _, step := range [][]string{{"load", writeFile(t, "ssh.nft", sshOnly)}, {"swap"}, {"load", writeFile(t, "web.nft", webOnly)}} {
		if out, code := run(t, g(owner, step...)...); code != 0 {
			t.Fatalf("%v: %s", step, out)
		}
	}
	id := historyID(t, owner)
	ruleset := testnet.Run(t, ns, "nft", "list", "ruleset")
	if !strings.Contains(ruleset, "fwslot owner="+id+" db="+owner) {
		t.Fatalf("the kernel does not name the owning history %s (%s):\n%s", id, owner, ruleset)
	}
	// The first command creates the second history file; status then
	// reads it (status without a history file claims nothing).
	cases := [][]string{
		{"load", writeFile(t, "other.nft", strings.Replace(sshOnly, "dport 22", "dport 2222", 1))},
		{"swap"},
		{"swap", "--force"},
		{"rollback", "--to", "1"},
		{"restore"},
		{"confirm"},
		{"status"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c[:1], " "), func(t *testing.T) {
			out, code := run(t, g(other, c...)...)
			if code != 1 || !strings.Contains(out, "managed by history "+id) || !strings.Contains(out, owner) {
				t.Fatalf("%v with a second history: exit %d, want 1 naming %s (%s)\n%s", c, code, id, owner, out)
			}
		})
	}
	if after := testnet.Run(t, ns, "nft", "list", "ruleset"); after != ruleset {
		t.Fatalf("refused commands changed the kernel:\nbefore:\n%s\nafter:\n%s", ruleset, after)
	}
	s, err := history.Open(other, history.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	vs, _ := s.Versions("netns:" + ns)
	acts, _ := s.Activations("netns:" + ns)
	s.Close()
	if len(vs) != 0 || len(acts) != 0 {
		t.Fatalf("the refused history recorded %d versions, %d activations", len(vs), len(acts))
	}

	// The owner goes on working.
	if out, code := run(t, g(owner, "swap")...); code != 0 || !strings.Contains(out, "version 2 is live") {
		t.Fatalf("swap by the owner: exit %d\n%s", code, out)
	}
	// Its export, imported into a new file, takes its identity and the target.
	archive := filepath.Join(dir, "owner.tar")
	if out, code := run(t, g(owner, "export", archive)...); code != 0 {
		t.Fatalf("export: %s", out)
	}
	// An archive whose identity is not one is bad input: refused, and the
	// new history stays empty with its own identity.
	forged := filepath.Join(dir, "forged.tar")
	rewriteManifest(t, archive, forged, func(m map[string]any) { m["history_id"] = "../../etc x" })
	if out, code := run(t, g(filepath.Join(dir, "forged.db"), "import", forged)...); code != 2 || !strings.Contains(out, "history_id") {
		t.Fatalf("import of a forged identity: exit %d, want 2\n%s", code, out)
	}
	if out, code := run(t, g(imported, "import", archive)...); code != 0 {
		t.Fatalf("import into a new history: exit %d\n%s", code, out)
	}
	if got := historyID(t, imported); got != id {
		t.Fatalf("the imported history has identity %s, want the exported %s", got, id)
	}
	if st := status(t, g(imported)[:4]...); st.Production == nil || st.Production.Version != 2 || len(st.Warnings) != 0 || st.Drift {
		t.Fatalf("status with the imported history: %+v", st)
	}
	if out, code := run(t, g(imported, "rollback")...); code != 0 || !strings.Contains(out, "version 1 is live") {
		t.Fatalf("rollback with the imported history: exit %d\n%s", code, out)
	}
	if got := testnet.Run(t, ns, "nft", "list", "ruleset"); !strings.Contains(got, "fwslot owner="+id+" db="+imported) {
		t.Fatalf("the kernel should name the imported history's path now:\n%s", got)
	}
}

// rewriteManifest copies the export archive src to dst with its manifest
// changed by edit.
func rewriteManifest(t *testing.T, src, dst string, edit func(map[string]any)) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	tr, tw := tar.NewReader(bytes.NewReader(data)), tar.NewWriter(&out)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == "manifest.json" {
			var m map[string]any
			if err := json.Unmarshal(body, &m); err != nil {
				t.Fatal(err)
			}
			edit(m)
			if body, err = json.Marshal(m); err != nil {
				t.Fatal(err)
			}
			h.Size = int64(len(body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}
