package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/fwslot/fwslot/internal/testnet"
)

// run executes the command line in-process, as main does, and returns
// what it printed (stdout and stderr) and its exit code.
func run(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	code := execute(args, &out, &out)
	return out.String(), code
}

// mustRun runs the command line g + args and fails the test unless it
// exits 0; it returns the output.
func mustRun(t *testing.T, g []string, args ...string) string {
	t.Helper()
	out, code := run(t, append(slices.Clone(g), args...)...)
	if code != 0 {
		t.Fatalf("%v: exit %d\n%s", args, code, out)
	}
	return out
}

// runSteps runs g + step for each step in order (see mustRun).
func runSteps(t *testing.T, g []string, steps [][]string) {
	t.Helper()
	for _, step := range steps {
		mustRun(t, g, step...)
	}
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// targetFlags returns the global flags that point fwslot at namespace ns
// and at a new history file in a directory of the test's own.
func targetFlags(t *testing.T, ns string) []string {
	t.Helper()
	return []string{"--netns", ns, "--db", filepath.Join(t.TempDir(), "h.db")}
}

// newTarget makes a namespace pair (testnet.Pair) and returns the target
// namespace and the global flags that reach it with a new history file.
func newTarget(t *testing.T) (ns string, g []string) {
	t.Helper()
	ns, _ = testnet.Pair(t)
	return ns, targetFlags(t, ns)
}

// twoVersionTarget is newTarget with setupTwoVersions done: version 1
// (ssh.nft) live, version 2 (web.nft) staged.
func twoVersionTarget(t *testing.T) (ns string, g []string) {
	t.Helper()
	ns, _ = testnet.Pair(t)
	return ns, setupTwoVersions(t, ns)
}

// dbOf returns the history file that the global flags g name.
func dbOf(g []string) string {
	return g[slices.Index(g, "--db")+1]
}

// argsFor returns a function that puts the global flags g before its
// arguments, in a new slice on every call.
func argsFor(g []string) func(...string) []string {
	return func(a ...string) []string { return append(slices.Clone(g), a...) }
}

const good = `table inet filter {
	chain input { type filter hook input priority 0; policy accept; tcp dport 9 drop; }
}
`

func TestCommandsAndExitCodes(t *testing.T) {
	_, g := newTarget(t)
	db := dbOf(g)
	args := argsFor(g)
	f := writeFile(t, "good.nft", good)
	f2 := writeFile(t, "good2.nft", strings.Replace(good, "9 drop", "10 drop", 1))
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"status on an empty target", args("status", "--json"), 0, `"production": null`},
		{"history before any load", args("history"), 0, "no history yet"},
		{"swap with nothing staged", args("swap"), 1, "nothing is staged"},
		{"failure as JSON", args("swap", "--json"), 1, `"error": "nothing is staged`},
		{"load a missing file", args("load", "/nonexistent/x.nft"), 2, "/nonexistent/x.nft"},
		{"load a broken file", args("load", writeFile(t, "bad.nft", "table inet filter { chain c { acept; } }\n")), 2, "bad.nft:1:"},
		{"load", args("load", f, "-m", "first"), 0, "staged version 1 in slot b"},
		{"load again", args("load", f), 0, "unchanged"},
		{"swap", args("swap"), 0, "version 1 is live"},
		{"rollback past the first version", args("rollback"), 1, "nothing before it"},
		{"load v2", args("load", f2, "--json"), 0, `"version": 2`},
		{"swap v2", args("swap", "--json"), 0, `"to": 2`},
		{"rollback", args("rollback"), 0, "version 1 is live"},
		{"rollback to the live version", args("rollback", "--to", "1"), 1, "already live"},
		{"rollback to version 0", args("rollback", "--to", "0"), 2, "--to needs a version number"},
		{"swap confirmed in no time", args("swap", "--confirm", "0s"), 2, "--confirm needs a positive duration"},
		{"show", args("show", "1"), 0, "tcp dport 9 drop"},
		{"show a bad number", args("show", "x"), 2, "not a version number"},
		{"show a missing version", args("show", "99"), 2, "not found"},
		{"unknown flag", args("swap", "--bogus"), 2, "unknown flag"},
		{"extra argument", args("swap", "now"), 2, "takes 0 argument"},
		{"unknown command", args("frobnicate"), 2, `unknown command "frobnicate"`},
		{"usage error as JSON", args("swap", "now", "--json"), 2, `"exit": 2`},
		{"version", args("version", "--json"), 0, `"nft": "nftables v`},
		{"missing namespace", []string{"--netns", "fwslot-no-such-ns", "--db", db, "status"}, 2, "does not exist"},
	}
	for _, c := range cases {
		out, code := run(t, c.args...)
		if code != c.code || !strings.Contains(out, c.want) {
			t.Errorf("%s: exit %d, want %d; output lacks %q:\n%s", c.name, code, c.code, c.want, out)
		}
	}

	out, _ := run(t, args("status", "--json")...)
	var st struct {
		Production, Staging *struct {
			Version int    `json:"version"`
			Hash    string `json:"hash"`
		}
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	if st.Production == nil || st.Production.Version != 1 || st.Staging == nil || st.Staging.Version != 2 || len(st.Production.Hash) != 64 {
		t.Fatalf("status --json contract: %s", out)
	}
	out, _ = run(t, args("history", "--json")...)
	var hist []map[string]any
	if err := json.Unmarshal([]byte(out), &hist); err != nil || len(hist) != 2 {
		t.Fatalf("history --json: %v\n%s", err, out)
	}
	for _, k := range []string{"version", "hash", "time", "message"} {
		if _, ok := hist[0][k]; !ok {
			t.Fatalf("history --json lacks %q: %s", k, out)
		}
	}
}

// Without CAP_NET_ADMIN fwslot says so in one line and exits 2.
func TestWithoutPrivileges(t *testing.T) {
	testnet.RequireRoot(t)
	bin := fwslotBinary(t)
	db := filepath.Join(t.TempDir(), "h.db")
	for _, args := range [][]string{{"status"}, {"--db", db, "swap"}, {"features"}} {
		cmd := exec.Command(bin, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		code := cmd.ProcessState.ExitCode()
		if err == nil || code != 2 {
			t.Fatalf("%v as nobody: exit %d, want 2 (%s)", args, code, stderr.String())
		}
		msg := strings.TrimSpace(stderr.String())
		if strings.Count(msg, "\n") != 0 || !strings.Contains(msg, "CAP_NET_ADMIN") {
			t.Fatalf("%v as nobody: want one line naming CAP_NET_ADMIN, got %q", args, msg)
		}
	}
}

func TestDemo(t *testing.T) {
	testnet.RequireRoot(t)
	var out bytes.Buffer
	if err := runDemo(context.Background(), &out); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	s := out.String()
	for _, want := range []string{
		"22 open, 80 blocked, 443 blocked", // version 1 live
		"22 open, 80 open, 443 open",       // version 2 live
		"rollback: version 1 live (was 2)",
		"removed namespaces",
	} {
		if !strings.Contains(s, want) {
			t.Fatalf("demo output lacks %q:\n%s", want, s)
		}
	}
}
