package source

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var expires = regexp.MustCompile(`expires [0-9a-z]+`)

// These tests run the real nft, each time inside a new network namespace
// (unshare -n), never against the host's ruleset.

func needNft(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for unshare -n")
	}
	for _, bin := range []string{"nft", "unshare"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed", bin)
		}
	}
}

// nftRun loads a file with nft in a fresh network namespace, run in dir, and
// returns `nft [-a] list ruleset`.
func nftRun(t *testing.T, dir string, args []string, handles bool) string {
	t.Helper()
	list := "nft list ruleset"
	if handles {
		list = "nft -a list ruleset"
	}
	// Rulesets may name eth0..eth2 (iif "eth0" needs the interface to exist):
	// give the namespace a veth pair and a bridge by those names, when it can.
	script := `{ ip link add eth0 type veth peer name eth1; ip link add eth2 type bridge; } 2>/dev/null; nft "$@" && ` + list
	cmd := exec.Command("unshare", append([]string{"-n", "sh", "-c", script, "sh"}, args...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("nft %v in %s: %v\n%s", args, dir, err, out)
	}
	return string(out)
}

// fixtures returns the main files of the bundles under testdata, plus the
// *.nft files of $FWSLOT_CORPUS when set.
func fixtures(t *testing.T) []string {
	t.Helper()
	mains, err := filepath.Glob("testdata/*/main.nft")
	if err != nil {
		t.Fatal(err)
	}
	if dir := os.Getenv("FWSLOT_CORPUS"); dir != "" {
		more, err := filepath.Glob(filepath.Join(dir, "*.nft"))
		if err != nil {
			t.Fatal(err)
		}
		mains = append(mains, more...)
	}
	if len(mains) == 0 {
		t.Fatal("no fixtures")
	}
	return mains
}

// eachFixture runs f on every fixture's bundle, each in a subtest, with
// nft's listing of the user's files (with rule handles if handles).
func eachFixture(t *testing.T, handles bool, f func(t *testing.T, b *Bundle, listed string)) {
	needNft(t)
	for _, main := range fixtures(t) {
		t.Run(main, func(t *testing.T) {
			b, err := Load(main, Options{})
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Dir(b.Main)
			f(t, b, nftRun(t, dir, []string{"-I", dir, "-f", b.Main}, handles))
		})
	}
}

// sameListing fails the test unless nft lists file (the what made from
// the user's files, label in the message) as it listed the user's files
// (want).
func sameListing(t *testing.T, what, label, file, want string) {
	t.Helper()
	got := nftRun(t, "/", []string{"-f", file}, false)
	// Elements with a timeout list a countdown that differs between runs.
	got, want = expires.ReplaceAllString(got, "expires X"), expires.ReplaceAllString(want, "expires X")
	if got != want {
		t.Errorf("ruleset from the %s differs\n%s:\n%s\nwant:\n%s", what, label, got, want)
	}
}

func TestFlatEquivalentNft(t *testing.T) {
	eachFixture(t, false, func(t *testing.T, b *Bundle, want string) {
		flat := filepath.Join(t.TempDir(), "flat.nft")
		if err := os.WriteFile(flat, []byte(b.Flat), 0o600); err != nil {
			t.Fatal(err)
		}
		sameListing(t, "flat text", "flat", flat, want)
	})
}

func TestRuleLocationsMatchNft(t *testing.T) {
	eachFixture(t, true, func(t *testing.T, b *Bundle, listed string) {
		kernel := countRules(listed)
		locs, err := b.RuleLocations()
		if err != nil {
			t.Fatal(err)
		}
		for k, n := range kernel {
			if got := len(locs[k]); got != n {
				t.Errorf("chain %v: %d rule locations, nft has %d rules: %v", k, got, n, locs[k])
			}
		}
		for k, l := range locs {
			if _, ok := kernel[k]; !ok {
				t.Errorf("chain %v: %d rule locations, nft has no such chain", k, len(l))
			}
		}
	})
}

// countRules counts the rules of each chain in `nft -a list ruleset` output:
// inside a chain, every line that ends in a handle comment is a rule.
func countRules(listing string) map[ChainKey]int {
	out := map[ChainKey]int{}
	var family, table string
	var chain *ChainKey
	sc := bufio.NewScanner(strings.NewReader(listing))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[0] == "table":
			family, table = f[1], f[2]
		case len(f) >= 2 && f[0] == "chain" && chain == nil:
			k := ChainKey{family, table, strings.Trim(f[1], `"`)}
			out[k] = 0
			chain = &k
		case line == "}" && chain != nil:
			chain = nil
		case chain != nil && strings.Contains(line, "# handle "):
			out[*chain]++
		}
	}
	return out
}

// TestCopyEquivalentNft: nft compiles the private copy of a bundle into
// the same ruleset as the user's files.
func TestCopyEquivalentNft(t *testing.T) {
	eachFixture(t, false, func(t *testing.T, b *Bundle, want string) {
		c, err := b.WriteCopy(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		sameListing(t, "private copy", "copy", c.Main, want)
	})
}

// TestCopyErrors: nft's errors on the private copy name the user's files
// and lines, and the copy holds the bytes Load read, not what the files
// hold now.
func TestCopyErrors(t *testing.T) {
	needNft(t)
	dir, b := loadTree(t, map[string]string{
		"main.nft":  "table ip t {\n\tchain c {\n\t\tinclude \\\n\"./r.d/*.nft\"\n\t\tinclude \"./none/*.nft\"; accept\n\t}\n}\ninclude \"./bad.nft\"\n",
		"r.d/a.nft": "tcp dport 1 accept\n",
		"r.d/b.nft": "tcp dport 2 accept\n",
		"bad.nft":   "\n\nadd rule ip t c tcp dport 3 acept\n",
	})
	// Replaced after Load: nft must not see this.
	if err := os.WriteFile(filepath.Join(dir, "r.d", "a.nft"), []byte("tcp dport 666 accept\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	priv := t.TempDir()
	c, err := b.WriteCopy(priv)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("unshare", "-n", "nft", "-f", c.Main)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("nft accepted a misspelt verdict:\n%s", out)
	}
	msg := c.UserPaths(string(out))
	for _, want := range []string{
		filepath.Join(dir, "bad.nft") + ":3:34-34: Error: syntax error, unexpected newline",
		"In file included from " + filepath.Join(dir, "main.nft") + ":8:1-",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("output lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, priv) {
		t.Errorf("output names the private copy:\n%s", msg)
	}
	// Without the bad include, the copy runs what Load read.
	write(t, filepath.Join(dir, "bad.nft"), "\n")
	b.Files[len(b.Files)-1].Content = []byte("\n")
	c, err = b.WriteCopy(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	got := nftRun(t, "/", []string{"-f", c.Main}, false)
	if !strings.Contains(got, "tcp dport 1 accept") || strings.Contains(got, "666") {
		t.Errorf("the copy does not run the bytes read:\n%s", got)
	}
}
