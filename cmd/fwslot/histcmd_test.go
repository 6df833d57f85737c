package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

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

// TestDiffCommand diffs slots, versions and files on a namespace.
func TestDiffCommand(t *testing.T) {
	ns, _ := testnet.Pair(t)
	db := filepath.Join(t.TempDir(), "h.db")
	g := []string{"--netns", ns, "--db", db}
	args := func(a ...string) []string { return append(append([]string{}, g...), a...) }
	v1 := writeFile(t, "v1.nft", jumpy)
	v2 := writeFile(t, "v2.nft", strings.Replace(jumpy, "tcp dport 113 reject with tcp reset", "tcp dport 113 drop", 1))
	// v1 again, reformatted and split over an include: no difference.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "admin.nft"), []byte("chain admin {\n  ip saddr 198.51.100.7   accept\n}\n"), 0o600)
	moved := filepath.Join(dir, "moved.nft")
	os.WriteFile(moved, []byte("table inet filter {\n\tinclude \"./admin.nft\"\n}\n"+strings.Replace(jumpy, "\tchain admin { ip saddr 198.51.100.7 accept; }\n", "", 1)), 0o600)
	for _, a := range [][]string{{"load", v1}, {"swap"}, {"load", v2}} {
		if out, code := run(t, args(a...)...); code != 0 {
			t.Fatalf("%v: %s", a, out)
		}
	}
	both := writeFile(t, "both.probes", "reject tcp 203.0.113.9:40002 -> 192.0.2.10:113 in eth0\naccept icmp 203.0.113.9 -> 192.0.2.10 in eth0 type echo-request\n")
	cases := []struct {
		name string
		args []string
		code int
		want []string
		not  []string
	}{
		{"production to staging", args("diff"), 0, []string{"--- production (version 1)\n+++ staging (version 2)\n", "table inet filter\n", "  chain input\n", "- tcp dport 113 reject with tcp reset", "+ tcp dport 113 drop", "1 object differs (+1 -1 lines)"}, []string{"fwslot", "\x1b["}},
		{"versions by number", args("diff", "2", "1"), 0, []string{"- tcp dport 113 drop", "+ tcp dport 113 reject with tcp reset"}, nil},
		{"moved include and whitespace", args("diff", "1", moved), 0, []string{"no differences in the rulesets"}, nil},
		{"file against staging", args("diff", v1), 0, []string{"+++ staging (version 2)", "+ tcp dport 113 drop"}, nil},
		{"colour on request", args("diff", "--color", "always"), 0, []string{"\x1b[32m"}, nil},
		{"with probes", args("diff", "--probes", both), 0, []string{"both.probes:1", "production: reject", "staging:    drop", "1 of 2 probes change verdict from production to staging"}, nil},
		{"missing version", args("diff", "7", "1"), 2, []string{"version 7 not found"}, nil},
		{"not a ruleset", args("diff", "/nonexistent.nft"), 2, []string{"not a version number"}, nil},
		{"too many", args("diff", "1", "2", "3"), 2, []string{"at most two"}, nil},
		{"bad colour", args("diff", "--color", "pink"), 2, []string{"--color"}, nil},
	}
	for _, c := range cases {
		out, code := run(t, c.args...)
		if code != c.code {
			t.Errorf("%s: exit %d, want %d\n%s", c.name, code, c.code, out)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: output lacks %q:\n%s", c.name, w, out)
			}
		}
		for _, w := range c.not {
			if strings.Contains(out, w) {
				t.Errorf("%s: output has %q:\n%s", c.name, w, out)
			}
		}
	}
	out, _ := run(t, args("diff", "--json")...)
	var d struct {
		A, B    struct{ Version int }
		Changes []struct {
			Table, Kind, Name, Status string
			Lines                     []struct{ Op, Text string }
		}
		Summary map[string]int
	}
	if err := json.Unmarshal([]byte(out), &d); err != nil || d.A.Version != 1 || d.B.Version != 2 || len(d.Changes) != 1 || d.Changes[0].Name != "input" || d.Summary["added"] != 1 {
		t.Fatalf("diff --json: %v\n%s", err, out)
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

// syncBuffer is a bytes.Buffer safe for a command writing while the test
// reads; seen is how far waitFor has matched.
type syncBuffer struct {
	mu   sync.Mutex
	b    bytes.Buffer
	seen int
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls out until what it printed since the last match holds
// want; the deadline only ends a hung test.
func waitFor(t *testing.T, out *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		s := out.String()
		if i := strings.Index(s[out.seen:], want); i >= 0 {
			out.seen += i + len(want)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("watch output lacks %q after what was matched:\n%s", want, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWatchCommand runs `fwslot watch` end to end on a namespace: real
// edits of the file and of an include, a rename-save, a rejected version,
// then --swap with probes making a version live pending confirmation.
func TestWatchCommand(t *testing.T) {
	ns, _ := testnet.Pair(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "h.db")
	main := filepath.Join(dir, "ruleset.nft")
	inc := filepath.Join(dir, "ports.nft")
	os.WriteFile(inc, []byte("define BLOCKED = 9\n"), 0o600)
	body := "include \"./ports.nft\"\n" + strings.Replace(good, "tcp dport 9 drop", "tcp dport $BLOCKED drop", 1)
	os.WriteFile(main, []byte(body), 0o600)

	start := func(extra ...string) (*syncBuffer, func()) {
		out := &syncBuffer{}
		root := newRoot()
		root.SetOut(out)
		root.SetErr(out)
		root.SetArgs(append([]string{"--netns", ns, "--db", db, "watch", main, "--debounce", "100ms"}, extra...))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- root.ExecuteContext(ctx) }()
		return out, func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("watch: %v\n%s", err, out.String())
			}
		}
	}
	out, stop := start()
	waitFor(t, out, "staged v1")
	os.WriteFile(inc, []byte("define BLOCKED = 10\n"), 0o600) // the include on its own
	waitFor(t, out, "staged v2")
	tmp := filepath.Join(dir, ".ruleset.nft.new") // an editor's rename-save
	os.WriteFile(tmp, []byte(strings.Replace(body, "$BLOCKED drop", "$BLOCKED drop; tcp dport 11 drop", 1)), 0o600)
	os.Rename(tmp, main)
	waitFor(t, out, "staged v3")
	os.WriteFile(main, []byte(strings.Replace(body, "drop", "dorp", 1)), 0o600)
	waitFor(t, out, "rejected: ")
	if !strings.Contains(out.String(), "Error:") {
		t.Errorf("rejection does not show nft's error line:\n%s", out.String())
	}
	os.WriteFile(main, []byte(body), 0o600) // the content of v2 again: restaged
	waitFor(t, out, "staged v2")
	stop()
	if st, _ := run(t, "--netns", ns, "--db", db, "status"); strings.Contains(st, "production  version") {
		t.Fatalf("watch without --swap made something live:\n%s", st)
	}

	probes := writeFile(t, "w.probes", "drop tcp 203.0.113.9:40000 -> 192.0.2.10:10 in eth0\naccept tcp 203.0.113.9:40001 -> 192.0.2.10:22 in eth0\n")
	if out, code := run(t, "--netns", ns, "--db", db, "watch", main, "--swap"); code != 2 || !strings.Contains(out, "--probes") {
		t.Fatalf("--swap without probes: exit %d\n%s", code, out)
	}
	out, stop = start("--probes", probes, "--swap", "--confirm", "10m")
	waitFor(t, out, "unchanged (v2)")
	os.WriteFile(inc, []byte("define BLOCKED = 22\n"), 0o600) // fails the ssh probe
	waitFor(t, out, "rejected: probe")
	os.WriteFile(inc, []byte("define BLOCKED = { 10, 12 }\n"), 0o600)
	waitFor(t, out, "live pending confirmation")
	stop()
	st, _ := run(t, "--netns", ns, "--db", db, "status")
	if !strings.Contains(st, "pending") {
		t.Fatalf("status after watch --swap:\n%s", st)
	}
	if out, code := run(t, "--netns", ns, "--db", db, "confirm"); code != 0 {
		t.Fatalf("confirm: %s", out)
	}
}

// TestLoadFromIptables translates testdata/iptables and proves the result
// with its probe file.
func TestLoadFromIptables(t *testing.T) {
	ns, _ := testnet.Pair(t)
	db := filepath.Join(t.TempDir(), "h.db")
	saved := filepath.Join(t.TempDir(), "translated.nft")
	base := filepath.Join("..", "..", "testdata", "iptables")
	g := []string{"--netns", ns, "--db", db}
	out, code := run(t, append(g, "load", "--from-iptables", filepath.Join(base, "rules.v4"), "--from-ip6tables", filepath.Join(base, "rules.v6"),
		"--probes", filepath.Join(base, "rules.probes"), "--save-translation", saved)...)
	if code != 0 {
		t.Fatalf("load --from-iptables: exit %d\n%s", code, out)
	}
	for _, want := range []string{"not translated (left out of the ruleset): ", "-m recent --name portscan", "1 iptables rules could not be translated", "probes: 10 of 10 passed", "staged version 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	text, err := os.ReadFile(saved)
	if err != nil || !strings.Contains(string(text), "# NOT TRANSLATED: -t filter -A INPUT -m recent") || strings.Contains(string(text), "Translated by") {
		t.Fatalf("saved translation: %v\n%s", err, text)
	}
	// The same input is the same version: the translation is stable.
	if out, code := run(t, append(g, "load", "--from-iptables", filepath.Join(base, "rules.v4"), "--from-ip6tables", filepath.Join(base, "rules.v6"))...); code != 0 || !strings.Contains(out, "unchanged") {
		t.Fatalf("second load: exit %d\n%s", code, out)
	}
	if out, code := run(t, append(g, "load", "--from-iptables", "/nonexistent.v4")...); code != 2 {
		t.Fatalf("missing file: exit %d\n%s", code, out)
	}
	if out, code := run(t, append(g, "load", "x.nft", "--from-iptables", filepath.Join(base, "rules.v4"))...); code != 2 {
		t.Fatalf("file and --from-iptables: exit %d\n%s", code, out)
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
