package slots

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fwslot/fwslot/internal/source"
	"github.com/fwslot/fwslot/internal/testnet"
)

// compileInputRuleset is a ruleset whose port comes from an include.
const compileInputRuleset = `include "./ports.nft"
table inet filter {
	chain input { type filter hook input priority 0; policy drop; tcp dport $PORT accept; }
}
`

func encoded(t *testing.T, rs *Ruleset) []byte {
	t.Helper()
	b, err := rs.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCompileBundleReadsOnce: nft compiles the bytes fwslot read and
// hashed, never the user's files again. A file replaced between the two
// reads used to be compiled in its new form while history recorded the
// old one (and loading the real file then said "unchanged").
func TestCompileBundleReadsOnce(t *testing.T) {
	testnet.RequireRoot(t)
	ctx := context.Background()
	dir := t.TempDir()
	main := filepath.Join(dir, "main.nft")
	mustWrite(t, main, compileInputRuleset)
	mustWrite(t, filepath.Join(dir, "ports.nft"), "define PORT = 22\n")
	b := loadBundle(t, main)
	want, err := CompileBundle(ctx, b, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Replaced after fwslot read it: an attacker's port, a file that now
	// includes a secret, a file that is gone.
	for _, replaced := range []string{"define PORT = 666\n", "include \"/etc/shadow\"\n", ""} {
		if replaced == "" {
			os.Remove(filepath.Join(dir, "ports.nft"))
		} else {
			mustWrite(t, filepath.Join(dir, "ports.nft"), replaced)
		}
		got, err := CompileBundle(ctx, b, nil, nil)
		if err != nil {
			t.Fatalf("after replacing ports.nft with %q: %v", replaced, err)
		}
		if !bytes.Equal(encoded(t, got), encoded(t, want)) {
			t.Errorf("after replacing ports.nft with %q, nft compiled something else than what was read", replaced)
		}
	}
}

// TestCompileErrorNamesUserFiles: nft compiles a private copy, and its
// errors name the user's files and lines, never the copy.
func TestCompileErrorNamesUserFiles(t *testing.T) {
	testnet.RequireRoot(t)
	dir := t.TempDir()
	main := filepath.Join(dir, "main.nft")
	mustWrite(t, main, compileInputRuleset)
	mustWrite(t, filepath.Join(dir, "ports.nft"), "define PORT = 22\n\nadd rule inet filter input tcp dport 1 acept\n")
	_, err := Compile(context.Background(), main, nil)
	var ce *CompileError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v, want a CompileError", err)
	}
	for _, want := range []string{
		"In file included from " + main + ":1:1-",
		filepath.Join(dir, "ports.nft") + ":3:",
	} {
		if !strings.Contains(ce.Output, want) {
			t.Errorf("output lacks %q:\n%s", want, ce.Output)
		}
	}
	if strings.Contains(ce.Output, "fwslot-nft-") {
		t.Errorf("output names the private copy:\n%s", ce.Output)
	}
}

func mustWrite(t *testing.T, p, body string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCompileIgnoresTMPDIR: the private copy nft compiles is made in root's
// /tmp, never in $TMPDIR (the environment is the user's: a directory they
// own would let them swap the copy before nft reads it).
func TestCompileIgnoresTMPDIR(t *testing.T) {
	testnet.RequireRoot(t)
	t.Setenv("TMPDIR", filepath.Join(t.TempDir(), "missing"))
	dir := t.TempDir()
	main := filepath.Join(dir, "main.nft")
	mustWrite(t, main, compileInputRuleset)
	mustWrite(t, filepath.Join(dir, "ports.nft"), "define PORT = 22\n")
	if _, err := Compile(context.Background(), main, nil); err != nil {
		t.Fatalf("compile with a $TMPDIR that does not exist: %v", err)
	}
}

// TestNftLimits: nft that spins or hangs is stopped by its CPU limit or
// its timeout, with a message that names the limit and the file. (The
// memory limit is proven with a real define bomb in the hostile corpus.)
func TestNftLimits(t *testing.T) {
	testnet.RequireRoot(t)
	bin := t.TempDir()
	for name, body := range map[string]string{
		"spin":  "#!/bin/sh\nwhile :; do :; done\n",
		"sleep": "#!/bin/sh\nexec /bin/sleep 60\n",
	} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b, err := source.FromText("/ruleset.nft", "table ip t {}\n")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		nft  string
		lim  nftLimits
		want string
	}{
		{"spin", nftLimits{Memory: 1 << 30, CPU: time.Second, Wall: time.Minute}, "nft exceeded its CPU limit of 1s compiling /ruleset.nft"},
		{"sleep", nftLimits{Memory: 1 << 30, CPU: time.Minute, Wall: 300 * time.Millisecond}, "nft took longer than 300ms compiling /ruleset.nft and was stopped"},
	} {
		t.Run(tt.nft, func(t *testing.T) {
			dir := t.TempDir()
			cp, err := b.WriteCopy(dir)
			if err != nil {
				t.Fatal(err)
			}
			err = runNft(context.Background(), filepath.Join(bin, tt.nft), dir, cp, b.Main, kindNft, tt.lim)
			var ce *CompileError
			if !errors.As(err, &ce) || !strings.Contains(ce.Output, tt.want) {
				t.Fatalf("error %v, want a CompileError with %q", err, tt.want)
			}
		})
	}
}

// TestLimitsScale: nft's limits grow with the input, so a legitimate
// large ruleset (100k rules, 5.2 MB: peak RSS 428 MB; a 1M-element set,
// 12.5 MB: 371 MB) compiles, and a small one is bounded tightly.
func TestLimitsScale(t *testing.T) {
	for _, tt := range []struct {
		size     int64
		memMiB   uint64
		cpu, all time.Duration
	}{
		{700, 1024, 30 * time.Second, time.Minute},
		{5_244_271, 1344, 82 * time.Second, 112 * time.Second},
		{source.DefaultMaxBytes, 3072, 365 * time.Second, 395 * time.Second},
	} {
		l := limitsFor(tt.size)
		if l.Memory>>20 != tt.memMiB || l.CPU != tt.cpu || l.Wall != tt.all {
			t.Errorf("size %d: limits %d MiB, CPU %v, wall %v; want %d MiB, %v, %v", tt.size, l.Memory>>20, l.CPU, l.Wall, tt.memMiB, tt.cpu, tt.all)
		}
	}
}
