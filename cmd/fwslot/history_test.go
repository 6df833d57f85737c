package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/testnet"
)

const histBase = `table inet filter {
	chain input {
		type filter hook input priority 0; policy accept;
		tcp dport 9 drop
	}
}
`

// TestHistoryViews loads, swaps and rolls back on a namespace and checks
// history (lines changed, slots, how activations ended), --limit and
// show --original.
func TestHistoryViews(t *testing.T) {
	ns, _ := testnet.Pair(t)
	db := filepath.Join(t.TempDir(), "h.db")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "extra.nft"), []byte("define PORT = 9\n"), 0o600)
	main := filepath.Join(dir, "ruleset.nft")
	write := func(body string) {
		if err := os.WriteFile(main, []byte("include \"./extra.nft\"\n"+body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	g := []string{"--netns", ns, "--db", db}
	do := func(args ...string) string {
		t.Helper()
		out, code := run(t, append(append([]string{}, g...), args...)...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, code, out)
		}
		return out
	}
	write(histBase)
	do("load", main, "-m", "first")
	do("swap")
	write(strings.Replace(histBase, "tcp dport 9 drop", "tcp dport $PORT drop\n\t\ttcp dport 10 drop", 1))
	do("load", main, "-m", "second")
	do("swap")
	do("rollback")
	write(strings.Replace(histBase, "9 drop", "11 drop", 1))
	do("load", main, "-m", "third")

	out := do("history")
	for _, want := range []string{"CHANGE", "+8 -0", "+2 -1", "+1 -2", "first", "production", "staging", "ENDED", "replaced by 2", "rolled back", "live"} {
		if !strings.Contains(out, want) {
			t.Errorf("history lacks %q:\n%s", want, out)
		}
	}
	out = do("history", "--limit", "1")
	if strings.Contains(out, "first") || !strings.Contains(out, "third") || strings.Count(out, "\n") > 6 {
		t.Errorf("history --limit 1:\n%s", out)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(do("history", "--json")), &rows); err != nil || len(rows) != 3 {
		t.Fatalf("history --json: %v %v", err, rows)
	}
	if rows[1]["lines_added"].(float64) != 2 || rows[1]["lines_removed"].(float64) != 1 || rows[0]["slot"] != "production" {
		t.Errorf("history --json rows: %v", rows)
	}

	out = do("show", "2", "--original")
	for _, want := range []string{"# ==> " + main + " <==\ninclude \"./extra.nft\"", "# ==> " + filepath.Join(dir, "extra.nft") + " <==\ndefine PORT = 9\n", "tcp dport $PORT drop"} {
		if !strings.Contains(out, want) {
			t.Errorf("show --original lacks %q:\n%s", want, out)
		}
	}
	if out := do("show", "2"); strings.Contains(out, "==>") || !strings.Contains(out, "define PORT = 9") {
		t.Errorf("show without --original:\n%s", out)
	}
}

func TestActivationEnd(t *testing.T) {
	a := func(from, to uint64, how, result string) history.Activation {
		return history.Activation{From: from, To: to, How: how, Result: result}
	}
	cases := []struct {
		acts []history.Activation
		want []string
	}{
		{[]history.Activation{a(0, 1, "swap", ""), a(1, 2, "swap", ""), a(2, 1, "rollback", "")}, []string{"replaced by 2", "rolled back", "live"}},
		{[]history.Activation{a(0, 1, "swap", ""), a(1, 2, "swap", "pending"), a(2, 1, "revert", "")}, []string{"replaced by 2", "reverted", "live"}},
		{[]history.Activation{a(0, 1, "swap", "confirmed")}, []string{"confirmed, live"}},
		{[]history.Activation{a(0, 1, "swap", "pending")}, []string{"pending confirmation"}},
	}
	for _, c := range cases {
		for i := range c.acts {
			if got := activationEnd(c.acts, i); got != c.want[i] {
				t.Errorf("%+v [%d]: %q, want %q", c.acts, i, got, c.want[i])
			}
		}
	}
}

// TestPruneExportImport prunes a history on a namespace, exports it and
// imports it into new histories.
func TestPruneExportImport(t *testing.T) {
	ns, _ := testnet.Pair(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "h.db")
	g := []string{"--netns", ns, "--db", db}
	do := func(code int, a ...string) string {
		t.Helper()
		out, got := run(t, append(append([]string{}, g...), a...)...)
		if got != code {
			t.Fatalf("%v: exit %d, want %d\n%s", a, got, code, out)
		}
		return out
	}
	for i := 1; i <= 6; i++ {
		f := writeFile(t, "r.nft", strings.Replace(good, "9 drop", strconv.Itoa(100+i)+" drop", 1))
		do(0, "load", f)
		if i == 2 {
			do(0, "swap")
		}
	}
	// Live: 2; production 2, staging 6; staged only: 1, 3, 4, 5, of which
	// the newest (5) stays.
	if out := do(0, "prune", "--keep", "1"); !strings.Contains(out, "pruned 3 versions (1, 3-4); 3 kept") {
		t.Fatalf("prune: %s", out)
	}
	if out := do(0, "prune"); !strings.Contains(out, "nothing to prune") {
		t.Fatalf("prune again: %s", out)
	}
	do(2, "prune", "--keep", "-1")

	backup := filepath.Join(dir, "backup.tar")
	do(0, "export", backup)
	var stdout bytes.Buffer
	root := newRoot()
	root.SetOut(&stdout)
	root.SetArgs(append(append([]string{}, g...), "export"))
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	// The two exports differ only in their time stamp.
	if data, _ := os.ReadFile(backup); !equalTarEntries(t, data, stdout.Bytes()) {
		t.Fatal("export to a file and to stdout differ")
	}

	fresh := []string{"--netns", ns, "--db", filepath.Join(dir, "fresh.db")}
	out, code := run(t, append(fresh, "import", backup)...)
	if code != 0 || !strings.Contains(out, "imported 3 versions (2, 5-6) and 1 activations") {
		t.Fatalf("import into a new history: exit %d\n%s", code, out)
	}
	if out, code = run(t, append(fresh, "import", backup)...); code != 0 || !strings.Contains(out, "imported no versions and 0 activations") {
		t.Fatalf("import again: exit %d\n%s", code, out)
	}
	want, _ := run(t, append(g, "show", "6")...)
	if got, _ := run(t, append(fresh, "show", "6")...); got != want {
		t.Fatalf("imported version 6 differs:\n%s\nwant:\n%s", got, want)
	}
	// The kernel's staging slot (version 6) is found in the new history.
	if out, _ := run(t, append(fresh, "status")...); strings.Contains(out, "warning") {
		t.Fatalf("status against the imported history: %s", out)
	}
	// A history that went its own way is refused and left alone.
	other := []string{"--netns", ns, "--db", filepath.Join(dir, "other.db")}
	s, err := history.Open(other[3], history.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.AddVersion("netns:"+ns, history.Version{Source: "something else\n"}, nil)
	s.AddVersion("netns:"+ns, history.Version{Source: "and more\n"}, nil)
	s.Close()
	if out, code := run(t, append(other, "import", backup)...); code != 2 || !strings.Contains(out, "diverge") {
		t.Fatalf("import into a diverged history: exit %d\n%s", code, out)
	}
	if out, code := run(t, append(other, "import", writeFile(t, "x.tar", "not a tar"))...); code != 2 {
		t.Fatalf("import of garbage: exit %d\n%s", code, out)
	}
}

// equalTarEntries compares two exports entry by entry, leaving out the
// manifest (it holds the time of the export).
func equalTarEntries(t *testing.T, a, b []byte) bool {
	t.Helper()
	read := func(data []byte) map[string]string {
		out := map[string]string{}
		tr := tar.NewReader(bytes.NewReader(data))
		for {
			h, err := tr.Next()
			if err == io.EOF {
				return out
			}
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if h.Name != "manifest.json" {
				out[h.Name] = string(body)
			} else {
				out[h.Name] = ""
			}
		}
	}
	x, y := read(a), read(b)
	return len(x) > 1 && reflect.DeepEqual(x, y)
}
