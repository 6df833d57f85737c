package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/fwslot/fwslot/internal/testnet"
)

// damagedHistory is a damaged copy of a real history file.
type damagedHistory struct{ name, path string }

// damagedHistories writes truncated and corrupt copies of the history file
// at db.
func damagedHistories(t *testing.T, db string) []damagedHistory {
	t.Helper()
	real, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	const page = 4096
	if len(real) < 4*page {
		t.Fatalf("history file %s is only %d bytes", db, len(real))
	}
	flipped := slices.Clone(real)
	for i := 64; i < 2*page; i += 7 { // both meta pages, past their headers
		flipped[i] ^= 0x5a
	}
	garbage := bytes.Repeat([]byte("\x13garbage\xff"), len(real)/9)
	dir := t.TempDir()
	var out []damagedHistory
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"truncated to half", real[:len(real)/2]},
		{"truncated to 100 bytes", real[:100]},
		{"meta pages corrupt", flipped},
		{"garbage", garbage},
	} {
		p := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".db")
		if err := os.WriteFile(p, c.data, 0o600); err != nil {
			t.Fatal(err)
		}
		out = append(out, damagedHistory{c.name, p})
	}
	return out
}

// runSplit is run with stdout and stderr apart.
func runSplit(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	root := newRoot()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	if err != nil {
		errb.WriteString("error: " + err.Error())
	}
	return out.String(), errb.String(), exitCode(err)
}

// TestHostilePermissions: load warns on stderr about a ruleset or an
// included file that group or others can write, and about nothing else; a
// new history file and directory are created 0600/0700 and owned by root
// (history's own tests cover Open; this is the command path).
func TestHostilePermissions(t *testing.T) {
	ns, _ := testnet.Pair(t)
	state := filepath.Join(t.TempDir(), "state", "fwslot")
	db := filepath.Join(state, "fwslot.db")
	g := []string{"--netns", ns, "--db", db}
	tests := []struct {
		name      string
		main, inc os.FileMode
		warn      []string // files named in warnings
	}{
		{"0600 and 0644", 0o600, 0o644, nil},
		{"world-writable ruleset", 0o666, 0o644, []string{"main.nft"}},
		{"group-writable ruleset", 0o620, 0o600, []string{"main.nft"}},
		{"group-writable include", 0o644, 0o664, []string{"ports.nft"}},
		{"world-writable include", 0o600, 0o602, []string{"ports.nft"}},
		{"both", 0o666, 0o666, []string{"main.nft", "ports.nft"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			main, inc := filepath.Join(dir, "main.nft"), filepath.Join(dir, "ports.nft")
			// Each version differs, so every load stages something.
			files := map[string]struct {
				body string
				mode os.FileMode
			}{
				main: {"include \"./ports.nft\"\n" + strings.Replace(good, "tcp dport 9 drop", "tcp dport $PORT drop", 1), tt.main},
				inc:  {"define PORT = " + strconv.Itoa(1000+i) + "\n", tt.inc},
			}
			for p, f := range files {
				if err := os.WriteFile(p, []byte(f.body), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(p, f.mode); err != nil { // past the umask
					t.Fatal(err)
				}
			}
			stdout, stderr, code := runSplit(t, append(slices.Clone(g), "load", main)...)
			if code != 0 {
				t.Fatalf("load: exit %d\n%s%s", code, stdout, stderr)
			}
			warnings := 0
			for _, l := range strings.Split(stderr, "\n") {
				if strings.HasPrefix(l, "fwslot: warning: ") {
					warnings++
				}
			}
			if warnings != len(tt.warn) {
				t.Errorf("%d warnings, want %d:\n%s", warnings, len(tt.warn), stderr)
			}
			for _, w := range tt.warn {
				want := "fwslot: warning: " + filepath.Join(dir, w) + " is writable by group or others"
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr)
				}
			}
			if strings.Contains(stdout, "warning") {
				t.Errorf("warnings belong on stderr, got stdout:\n%s", stdout)
			}
		})
	}
	for p, want := range map[string]os.FileMode{state: 0o700 | os.ModeDir, filepath.Dir(state): 0o700 | os.ModeDir, db: 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), want)
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); !ok || st.Uid != 0 {
			t.Errorf("%s: owner %v, want root", p, fi.Sys())
		}
	}
}
