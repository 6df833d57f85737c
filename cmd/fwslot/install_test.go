package main

import (
	"bytes"
	"compress/gzip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fwslot/fwslot/internal/testnet"
)

// installed lists what make install and the .deb put under PREFIX=/usr.
var installed = []string{
	"usr/sbin/fwslot",
	"usr/share/man/man8/fwslot.8.gz",
	"usr/share/man/man8/fwslot-load.8.gz",
	"usr/share/man/man8/fwslot-swap.8.gz",
	"usr/share/man/man8/fwslot-commit.8.gz",
	"usr/share/man/man8/fwslot-edit.8.gz",
	"usr/share/man/man8/fwslot-features.8.gz",
	"usr/share/bash-completion/completions/fwslot",
	"usr/share/zsh/vendor-completions/_fwslot",
	"usr/share/fish/vendor_completions.d/fwslot.fish",
	"usr/lib/systemd/system/fwslot-restore.service",
	"usr/lib/systemd/system/fwslot-watch@.service",
	"usr/lib/systemd/system/fwslot-agent.service",
}

// make deb builds a package with dpkg-deb alone: it lists the binary, a
// man page per command, completions and the units; extracted, the binary
// runs, the pages render, the units start /usr/sbin/fwslot, and no
// maintainer script enables anything.
func TestDebPackage(t *testing.T) {
	testnet.RequireRoot(t)
	for _, tool := range []string{"make", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("make deb needs %s (Debian has it): %v", tool, err)
		}
	}
	tmp := t.TempDir()
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = "/usr/local/go/bin/go"
	}
	mk := exec.Command("make", "-C", repo, "--no-print-directory", "deb", "GO="+gobin, "BIN="+filepath.Join(tmp, "bin"), "DEBOUT="+tmp)
	var stdout, stderr bytes.Buffer
	mk.Stdout, mk.Stderr = &stdout, &stderr
	if err := mk.Run(); err != nil {
		t.Fatalf("make deb: %v\n%s", err, stderr.String())
	}
	// The script prints the package's path last.
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	deb := lines[len(lines)-1]
	if !strings.HasSuffix(deb, ".deb") {
		t.Fatalf("make deb printed %q, want the package path", deb)
	}
	list := runTool(t, "dpkg-deb", "-c", deb)
	for _, f := range installed {
		if !strings.Contains(list, "./"+f+"\n") {
			t.Errorf("package lacks %s:\n%s", f, list)
		}
	}
	for _, bad := range []string{"__gen-docs", "DEBIAN", "/usr/local"} {
		if strings.Contains(list, bad) {
			t.Errorf("package holds %q:\n%s", bad, list)
		}
	}
	if !strings.Contains(list, "-rwxr-xr-x root/root") {
		t.Errorf("the binary is not 0755 root:\n%s", list)
	}
	ctl := filepath.Join(tmp, "control")
	runTool(t, "dpkg-deb", "-e", deb, ctl)
	if entries, _ := os.ReadDir(ctl); len(entries) != 1 || entries[0].Name() != "control" {
		t.Errorf("maintainer scripts %v: nothing may be enabled on install", entries)
	}
	info := runTool(t, "dpkg-deb", "-f", deb, "Package", "Depends")
	if !strings.Contains(info, "Package: fwslot") || !strings.Contains(info, "nftables") {
		t.Errorf("control fields:\n%s", info)
	}

	root := filepath.Join(tmp, "root")
	runTool(t, "dpkg-deb", "-x", deb, root)
	help := runTool(t, filepath.Join(root, "usr/sbin/fwslot"), "--help")
	if !strings.Contains(help, "fwslot load ruleset.nft") || !strings.Contains(help, "commit") || strings.Contains(help, "__gen-docs") {
		t.Errorf("fwslot --help of the package:\n%s", help)
	}
	for _, u := range []string{"fwslot-restore.service", "fwslot-watch@.service", "fwslot-agent.service"} {
		b, err := os.ReadFile(filepath.Join(root, "usr/lib/systemd/system", u))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "ExecStart=/usr/sbin/fwslot ") || strings.Contains(string(b), "/usr/local/") {
			t.Errorf("%s does not start /usr/sbin/fwslot:\n%s", u, b)
		}
	}
	page := renderMan(t, filepath.Join(root, "usr/share/man/man8/fwslot-commit.8.gz"))
	if !strings.Contains(page, "fwslot-commit") || !strings.Contains(page, "hand changes") {
		t.Errorf("man page fwslot-commit:\n%s", page)
	}
}

func runTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// renderMan renders a gzipped man page with man(1) when installed, else
// with groff; without either it checks the page is roff with fwslot's
// title line.
func renderMan(t *testing.T, page string) string {
	t.Helper()
	if _, err := exec.LookPath("man"); err == nil {
		cmd := exec.Command("man", "-P", "cat", "-l", page)
		cmd.Env = append(os.Environ(), "MANWIDTH=100", "MAN_KEEP_FORMATTING=0")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("man -l %s: %v", page, err)
		}
		return string(out)
	}
	f, err := os.Open(page)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s is not gzip: %v", page, err)
	}
	var src bytes.Buffer
	if _, err := src.ReadFrom(z); err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("groff"); err == nil {
		cmd := exec.Command("groff", "-man", "-Tutf8")
		cmd.Stdin = &src
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("groff %s: %v", page, err)
		}
		return string(out)
	}
	if !strings.Contains(src.String(), ".TH \"FWSLOT\" \"8\"") {
		t.Fatalf("%s is not a section 8 man page:\n%s", page, src.String())
	}
	return src.String()
}
