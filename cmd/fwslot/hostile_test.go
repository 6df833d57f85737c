package main

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/fwslot/fwslot/internal/testnet"
)

// hostileDir is the corpus of hostile and broken inputs.
const hostileDir = "../../testdata/hostile"

// goodProbe passes against sshOnly.
const goodProbe = "accept tcp 198.51.100.7:40000 -> 192.0.2.10:22 in eth0   # ssh\n"

// hostileCase is one line of testdata/hostile/cases.txt.
type hostileCase struct {
	file     string   // relative to hostileDir
	commands []string // load, test, probes, import
	exit     int
	expect   []string
	line     int // in cases.txt
}

// readHostileCases parses cases.txt (format described at its top).
func readHostileCases(t *testing.T, dir string) []hostileCase {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "cases.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []hostileCase
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, "|")
		if len(fields) != 4 {
			t.Fatalf("cases.txt:%d: want FILE | COMMANDS | EXIT | EXPECT, got %q", n, line)
		}
		for i := range fields {
			fields[i] = strings.TrimSpace(fields[i])
		}
		c := hostileCase{file: fields[0], line: n}
		for _, cmd := range strings.Split(fields[1], ",") {
			cmd = strings.TrimSpace(cmd)
			switch {
			case cmd == "files":
				c.commands = append(c.commands, fileCommands...)
			case cmd == "probes" || cmd == "import" || slices.Contains(fileCommands, cmd):
				c.commands = append(c.commands, cmd)
			default:
				t.Fatalf("cases.txt:%d: unknown command %q (%s, files, probes or import)", n, cmd, strings.Join(fileCommands, ", "))
			}
		}
		if c.exit, err = strconv.Atoi(fields[2]); err != nil {
			t.Fatalf("cases.txt:%d: exit code: %v", n, err)
		}
		for _, e := range strings.Split(fields[3], ";") {
			if e = strings.TrimSpace(e); e != "" {
				c.expect = append(c.expect, e)
			}
		}
		if len(c.expect) == 0 {
			t.Fatalf("cases.txt:%d: no expected output", n)
		}
		out = append(out, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// kernelSnapshot is what must not change when fwslot refuses an input.
type kernelSnapshot struct {
	ruleset string // nft list ruleset inside the target namespace
	status  string // fwslot status --json
	history []byte // the history file's bytes
}

func takeSnapshot(t *testing.T, ns string, g []string, db string) kernelSnapshot {
	t.Helper()
	st, code := run(t, append(slices.Clone(g), "status", "--json")...)
	if code != 0 {
		t.Fatalf("status: exit %d\n%s", code, st)
	}
	h, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	return kernelSnapshot{ruleset: testnet.Run(t, ns, "nft", "list", "ruleset"), status: st, history: h}
}

// diff says how s differs from before, or "" when it does not.
func (s kernelSnapshot) diff(before kernelSnapshot) string {
	var d []string
	if s.ruleset != before.ruleset {
		d = append(d, "the kernel ruleset changed:\n"+s.ruleset)
	}
	if s.status != before.status {
		d = append(d, "status changed:\n"+s.status)
	}
	if !bytes.Equal(s.history, before.history) {
		d = append(d, "the history file's bytes changed")
	}
	return strings.Join(d, "\n")
}

// hostileRun is one command of a case; watch runs until it reports.
type hostileRun struct {
	name  string
	args  []string
	watch bool
}

// TestHostileCorpus walks testdata/hostile: every input gives its exit code
// and a message naming file:line (or the file), and leaves production, the
// status and the history file's bytes exactly as they were. Generated cases
// (too big to commit, or copies of a real history file) follow.
//
// A damaged history file is exit 1 (the operation failed, production
// unchanged): the input was fine, the history needs attention.
func TestHostileCorpus(t *testing.T) {
	ns, g := twoVersionTarget(t)
	db := dbOf(g)
	dir, err := filepath.Abs(hostileDir)
	if err != nil {
		t.Fatal(err)
	}
	cases := readHostileCases(t, dir)

	// Every committed file is walked.
	listed := map[string]bool{"README.md": true, "cases.txt": true}
	seen := map[string]bool{}
	for _, c := range cases {
		for _, kind := range c.commands {
			if seen[c.file+" "+kind] {
				t.Errorf("cases.txt:%d: %s %s is listed twice", c.line, kind, c.file)
			}
			seen[c.file+" "+kind] = true
		}
		listed[c.file] = true
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if !listed[rel] {
			t.Errorf("testdata/hostile/%s is not in cases.txt: add a case for it", rel)
		}
		delete(listed, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	delete(listed, "README.md")
	delete(listed, "cases.txt")
	for f := range listed {
		t.Errorf("cases.txt names %s, which does not exist", f)
	}

	goodRules := writeFile(t, "ruleset.nft", sshOnly)
	goodProbes := writeFile(t, "good.probes", goodProbe)
	cmd := argsFor(g)
	before := takeSnapshot(t, ns, g, db)

	// Refusals first; accepted inputs (exit 0) change staging, so last.
	accepted := func(c hostileCase) int {
		if c.exit == 0 {
			return 1
		}
		return 0
	}
	slices.SortStableFunc(cases, func(a, b hostileCase) int { return accepted(a) - accepted(b) })
	for _, c := range cases {
		path := filepath.Join(dir, c.file)
		var runs []hostileRun
		for _, kind := range c.commands {
			runs = append(runs, hostileRuns(kind, path, goodRules, goodProbes, cmd)...)
		}
		for _, r := range runs {
			t.Run(c.file+"/"+r.name, func(t *testing.T) {
				out, code := runHostile(t, r)
				if code != c.exit {
					t.Errorf("cases.txt:%d: exit %d, want %d\n%s", c.line, code, c.exit, out)
				}
				if l := leaked(t, out); l != "" {
					t.Errorf("cases.txt:%d: the output shows %s:\n%s", c.line, l, out)
				}
				for _, want := range c.expect {
					if !strings.Contains(out, want) {
						t.Errorf("cases.txt:%d: output lacks %q:\n%s", c.line, want, out)
					}
				}
				if c.exit == 0 {
					if s := status(t, g...); s.Production == nil || s.Production.Version != 1 {
						t.Errorf("production changed: %+v", s.Production)
					}
					return
				}
				if d := takeSnapshot(t, ns, g, db).diff(before); d != "" {
					t.Errorf("cases.txt:%d: %s\noutput:\n%s", c.line, d, out)
				}
			})
		}
	}

	t.Run("generated", func(t *testing.T) {
		before = takeSnapshot(t, ns, g, db)
		tmp := t.TempDir()
		// 50 MB: refused from its size, before nft (or anything) reads it.
		huge := filepath.Join(tmp, "huge.nft")
		body := append([]byte("table inet filter {\n"), bytes.Repeat([]byte("\t# padding padding padding padding padding padding\n"), 50<<20/51)...)
		if err := os.WriteFile(huge, append(body, "}\n"...), 0o600); err != nil {
			t.Fatal(err)
		}
		includesHuge := filepath.Join(tmp, "includes-huge.nft")
		if err := os.WriteFile(includesHuge, []byte("# a small file that includes a huge one\ninclude \"./huge.nft\"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		copies := damagedHistories(t, db)
		tests := []struct {
			name   string
			args   []string
			exit   int
			expect []string
			keep   string // a file whose bytes must not change
		}{
			{"50 MB ruleset", cmd("load", huge), 2, []string{huge + ": ", "larger than 33554432 bytes"}, ""},
			{"50 MB ruleset, test", cmd("test", huge, "--probes", goodProbes), 2, []string{huge + ": ", "larger than 33554432 bytes"}, ""},
			{"include of a 50 MB file", cmd("load", includesHuge), 2, []string{includesHuge + ":2:", "huge.nft makes the ruleset larger than 33554432 bytes"}, ""},
		}
		for _, c := range copies {
			for _, a := range [][]string{{"load", goodRules}, {"swap"}, {"rollback"}, {"status"}, {"history"}} {
				tests = append(tests, struct {
					name   string
					args   []string
					exit   int
					expect []string
					keep   string
				}{c.name + " history/" + a[0], append([]string{"--netns", ns, "--db", c.path}, a...), 1, []string{"history file " + c.path + " is damaged", "move it aside"}, c.path})
			}
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				var keep []byte
				if tt.keep != "" {
					var err error
					if keep, err = os.ReadFile(tt.keep); err != nil {
						t.Fatal(err)
					}
				}
				out, code := run(t, tt.args...)
				if code != tt.exit {
					t.Errorf("exit %d, want %d\n%s", code, tt.exit, out)
				}
				for _, want := range tt.expect {
					if !strings.Contains(out, want) {
						t.Errorf("output lacks %q:\n%s", want, out)
					}
				}
				if d := takeSnapshot(t, ns, g, db).diff(before); d != "" {
					t.Errorf("%s\noutput:\n%s", d, out)
				}
				if tt.keep != "" {
					if now, err := os.ReadFile(tt.keep); err != nil || !bytes.Equal(now, keep) {
						t.Errorf("the bytes of %s changed (%v)", tt.keep, err)
					}
				}
			})
		}
	})

	// The accepted boundary, jump-15-levels.nft, is staged above; making it
	// live proves the kernel takes 15 levels behind fwslot's dispatch jump.
	t.Run("15 levels go live", func(t *testing.T) {
		if out, code := run(t, cmd("swap")...); code != 0 {
			t.Fatalf("swap: exit %d\n%s", code, out)
		}
		if v := liveVersion(t, g...); v != 3 {
			t.Fatalf("live version %d, want 3 (jump-15-levels.nft)", v)
		}
	})

	// --include-dir lets an include read outside the ruleset's directory.
	t.Run("include-dir", func(t *testing.T) {
		out, code := run(t, cmd("load", filepath.Join(dir, "include-outside", "main.nft"), "--include-dir", dir)...)
		if code != 0 || !strings.Contains(out, "staged version") {
			t.Fatalf("load --include-dir: exit %d\n%s", code, out)
		}
	})
}
