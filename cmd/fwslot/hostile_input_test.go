package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fwslot/fwslot/internal/testnet"
)

// fileCommands are the commands that read a ruleset file; "files" in
// cases.txt is all of them.
var fileCommands = []string{"load", "test", "probe", "explain", "diff", "watch"}

// hostilePacket is the packet of probe and explain runs.
const hostilePacket = "tcp 198.51.100.7:40000 -> 192.0.2.10:22 in eth0"

// hostileRuns are the runs of one kind of command on path.
func hostileRuns(kind, path, goodRules, goodProbes string, cmd func(...string) []string) []hostileRun {
	switch kind {
	case "load":
		return []hostileRun{{name: "load", args: cmd("load", path)}}
	case "import":
		return []hostileRun{{name: "import", args: cmd("import", path)}}
	case "test":
		return []hostileRun{{name: "test", args: cmd("test", path, "--probes", goodProbes)}}
	case "probe", "explain":
		return []hostileRun{{name: kind, args: cmd(kind, "--file", path, hostilePacket)}}
	case "diff":
		return []hostileRun{{name: "diff", args: cmd("diff", path)}}
	case "watch":
		return []hostileRun{{name: "watch", args: cmd("watch", path, "--debounce", "10ms"), watch: true}}
	case "probes":
		return []hostileRun{
			{name: "test --probes", args: cmd("test", goodRules, "--probes", path)},
			{name: "load --probes", args: cmd("load", goodRules, "--probes", path)},
		}
	}
	panic("unknown hostile command " + kind)
}

// runHostile runs r. watch keeps running after a refusal: it runs until it
// reports one ("rejected: "), then is stopped; a rejection reported and a
// clean stop count as exit 2, like the other commands' refusals.
func runHostile(t *testing.T, r hostileRun) (string, int) {
	t.Helper()
	if !r.watch {
		return run(t, r.args...)
	}
	out := &syncBuffer{}
	root := newRoot()
	root.SetOut(out)
	root.SetErr(out)
	root.SetArgs(r.args)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	var err error
	deadline := time.After(60 * time.Second) // only ends a hung test
wait:
	for {
		select {
		case err = <-done:
			break wait
		case <-deadline:
			cancel()
			err = <-done
			return out.String() + "\n(watch reported nothing in 60s)", exitCode(err)
		case <-time.After(20 * time.Millisecond):
			if s := out.String(); strings.Contains(s, "rejected: ") || strings.Contains(s, "staged v") {
				cancel()
				err = <-done
				break wait
			}
		}
	}
	s := out.String()
	if err != nil {
		return s + "error: " + err.Error(), exitCode(err)
	}
	if strings.Contains(s, "rejected: ") {
		return s, exitUsage
	}
	return s, exitOK
}

// leaked names a secret the output shows: a line of /etc/passwd or
// /etc/shadow, or an entry of this process's environment; "" when none.
func leaked(t *testing.T, out string) string {
	t.Helper()
	var secrets []string
	for _, f := range []string{"/etc/passwd", "/etc/shadow"} {
		if b, err := os.ReadFile(f); err == nil {
			first, _, _ := strings.Cut(string(b), "\n")
			secrets = append(secrets, first)
		}
	}
	env, err := os.ReadFile("/proc/self/environ")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range strings.Split(string(env), "\x00") {
		if len(e) >= 12 && strings.Contains(e, "=") {
			secrets = append(secrets, e)
		}
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(out, s) {
			return fmt.Sprintf("%q", s)
		}
	}
	return ""
}

// TestHostileIncludeLayouts: layouts that cannot be committed (symbolic
// links, FIFOs, open file descriptors) or are generated (a fan-out), each
// through every command that reads a ruleset: the exact refusal, no secret
// in the output, the kernel and the history file's bytes unchanged.
func TestHostileIncludeLayouts(t *testing.T) {
	ns, g := twoVersionTarget(t)
	db := dbOf(g)
	cmd := argsFor(g)
	goodRules := writeFile(t, "ruleset.nft", sshOnly)
	goodProbes := writeFile(t, "good.probes", goodProbe)

	// Outside the ruleset's directory: a secret and a ruleset that
	// would open everything.
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	mustWrite(t, secret, "TOKEN=hunter2-secret-token\n")
	if err := os.Mkdir(filepath.Join(outside, "d"), 0o700); err != nil {
		t.Fatal(err)
	}
	evil := strings.Replace(sshOnly, "policy drop", "policy accept", 1)
	mustWrite(t, filepath.Join(outside, "x.nft"), evil)
	f, err := os.Open(secret)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	tests := []struct {
		name    string
		setup   func(dir string) // writes what main.nft needs
		include string           // main.nft includes it, then sshOnly; "" leaves main.nft to setup
		expect  []string         // DIR and OUT replaced
	}{
		{
			// The decoy DIR/x.nft is what fwslot used to record and
			// show; nft read OUT/x.nft through the symlink.
			name: "symlink then ..",
			setup: func(dir string) {
				mustSymlink(t, filepath.Join(outside, "d"), filepath.Join(dir, "sub"))
				mustWrite(t, filepath.Join(dir, "x.nft"), "# a harmless decoy\n")
			},
			include: "./sub/../x.nft",
			expect:  []string{"DIR/main.nft:1:9: include \"./sub/../x.nft\": DIR/./sub/.. goes through a symbolic link before \"..\", so it is OUT, not DIR: write the path without the dots"},
		},
		{
			name:    "symlink to a secret",
			setup:   func(dir string) { mustSymlink(t, secret, filepath.Join(dir, "ports.nft")) },
			include: "./ports.nft",
			expect:  []string{"DIR/main.nft:1:9: include \"./ports.nft\" reads OUT/secret, outside the allowed directories (DIR)"},
		},
		{
			name:   "main file is a symlink to a secret",
			setup:  func(dir string) { mustSymlink(t, secret, filepath.Join(dir, "main.nft")) },
			expect: []string{"DIR/main.nft: the ruleset is OUT/secret, outside the allowed directories (DIR)"},
		},
		{
			name:    "an open file descriptor of fwslot",
			include: fmt.Sprintf("/proc/self/fd/%d", f.Fd()),
			expect:  []string{"DIR/main.nft:1:9: include \"/proc/self/fd/", "reads OUT/secret, outside the allowed directories (DIR)"},
		},
		{
			// A FIFO made load hang for ever, holding the history lock.
			name: "a FIFO",
			setup: func(dir string) {
				if err := syscall.Mkfifo(filepath.Join(dir, "fifo.nft"), 0o600); err != nil {
					t.Fatal(err)
				}
			},
			include: "./fifo.nft",
			expect:  []string{"DIR/main.nft:1:9: DIR/fifo.nft is a FIFO, not a regular file; rulesets include only regular files"},
		},
		{
			name: "a directory",
			setup: func(dir string) {
				if err := os.Mkdir(filepath.Join(dir, "rules.d"), 0o700); err != nil {
					t.Fatal(err)
				}
			},
			include: "./rules.d",
			expect:  []string{"DIR/main.nft:1:9: DIR/rules.d is a directory"},
		},
		{
			// 52 KB of files: 16 includes of 16 includes ... 8 levels
			// deep cost hours of CPU, holding the history lock.
			name: "fan-out",
			setup: func(dir string) {
				for lvl := 0; lvl < 8; lvl++ {
					mustWrite(t, filepath.Join(dir, fmt.Sprintf("l%d.nft", lvl)), strings.Repeat(fmt.Sprintf("include \"./l%d.nft\"\n", lvl+1), 16))
				}
				mustWrite(t, filepath.Join(dir, "l8.nft"), "define x = 1\n")
			},
			include: "./l0.nft",
			expect:  []string{"DIR/l7.nft:11:9: the ruleset includes files more than 1024 times in all; include each file once"},
		},
	}
	before := takeSnapshot(t, ns, g, db)
	for _, tt := range tests {
		dir := t.TempDir()
		main := filepath.Join(dir, "main.nft")
		if tt.setup != nil {
			tt.setup(dir)
		}
		if tt.include != "" {
			mustWrite(t, main, "include \""+tt.include+"\"\n"+sshOnly)
		}
		for _, kind := range fileCommands {
			for _, r := range hostileRuns(kind, main, goodRules, goodProbes, cmd) {
				t.Run(tt.name+"/"+r.name, func(t *testing.T) {
					out, code := runHostile(t, r)
					if code != exitUsage {
						t.Errorf("exit %d, want %d\n%s", code, exitUsage, out)
					}
					for _, e := range tt.expect {
						if want := strings.NewReplacer("DIR", dir, "OUT", outside).Replace(e); !strings.Contains(out, want) {
							t.Errorf("output lacks %q:\n%s", want, out)
						}
					}
					if strings.Contains(out, "hunter2") || strings.Contains(out, "policy accept") {
						t.Errorf("the output shows a file outside the allowed directories:\n%s", out)
					}
					if l := leaked(t, out); l != "" {
						t.Errorf("the output shows %s:\n%s", l, out)
					}
					if d := takeSnapshot(t, ns, g, db).diff(before); d != "" {
						t.Errorf("%s\noutput:\n%s", d, out)
					}
				})
			}
		}
	}
}

func mustWrite(t *testing.T, p, body string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

func mustSymlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// TestHostilePath: a $PATH with a user's nft, ip and
// iptables-restore-translate first (sudo -E, a CI job that prepends a
// directory) is never used: fwslot runs the system's programs by absolute
// path, and every command still works.
func TestHostilePath(t *testing.T) {
	_, g := twoVersionTarget(t)
	cmd := argsFor(g)
	fake := t.TempDir()
	marker := filepath.Join(t.TempDir(), "ran")
	for _, name := range []string{"nft", "ip", "iptables-restore-translate", "ip6tables-restore-translate"} {
		script := "#!/bin/sh\necho \"$0 $*\" >> " + marker + "\nexit 0\n"
		if err := os.WriteFile(filepath.Join(fake, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", fake+":"+os.Getenv("PATH"))
	rules := writeFile(t, "ruleset.nft", strings.Replace(sshOnly, "dport 22", "dport { 22, 2222 }", 1))
	probes := writeFile(t, "good.probes", goodProbe)
	v4 := writeFile(t, "rules.v4", "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 2200 -j ACCEPT\nCOMMIT\n")
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"load", cmd("load", rules), "staged version 3"},
		{"test", cmd("test", rules, "--probes", probes), "1 passed"},
		{"explain", cmd("explain", "--file", rules, hostilePacket), "decided by"},
		{"diff", cmd("diff", rules, "production"), "2222"},
		{"load --from-iptables", cmd("load", "--from-iptables", v4), "staged version 4"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, code := run(t, tt.args...)
			if code != 0 || !strings.Contains(out, tt.want) {
				t.Errorf("exit %d, want 0 and %q:\n%s", code, tt.want, out)
			}
			if ran, err := os.ReadFile(marker); err == nil {
				t.Errorf("fwslot ran a program from $PATH:\n%s", ran)
			}
		})
	}
}

// An include outside the allowed directories names the way to allow it,
// and diff names the file once.
func TestIncludeOutsideNamesIncludeDir(t *testing.T) {
	testnet.RequireRoot(t)
	dir := t.TempDir()
	for name, body := range map[string]string{
		"a/main.nft": "include \"../b/x.nft\"\ntable inet filter {\n\tchain input {\n\t\ttype filter hook input priority 0; policy accept;\n\t\ttcp dport $X accept\n\t}\n}\n",
		"b/x.nft":    "define X = 22\n",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	main := filepath.Join(dir, "a", "main.nft")
	db := filepath.Join(dir, "h.db")
	for _, args := range [][]string{{"load", main}, {"diff", main}} {
		out, code := run(t, append([]string{"--db", db, "--netns", testnet.Namespace(t, "fwslot-inc-")}, args...)...)
		if code != 2 || !strings.Contains(out, "--include-dir") || strings.Count(out, main) != 1 {
			t.Errorf("%v: exit %d, want 2 naming --include-dir and the file once:\n%s", args, code, out)
		}
	}
}
