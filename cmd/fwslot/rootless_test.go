package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/fwslot/fwslot/internal/testnet"
)

// nobody is the unprivileged user the rootless tests run fwslot as.
const nobody = 65534

// IPv6 probes added to router.probes: forwarding, reject and the input
// chain over IPv6 (router.nft's inet filter table; no IPv6 NAT).
const routerV6Probes = `accept tcp [2001:db8:a::7]:40020 -> [2001:db8:f::9]:443 in lan0 out wan0   # v6 lan client browses
reject tcp [2001:db8:a::7]:40021 -> [2001:db8:f::9]:25 in lan0 out wan0    # v6: no direct smtp from the lan
drop   tcp [2001:db8:f::9]:40022 -> [2001:db8:a::7]:22 in wan0 out lan0    # v6 unsolicited inbound
accept tcp [2001:db8:a::7]:40023 -> [2001:db8:a::1]:22 in lan0            # v6 ssh from the lan
drop   tcp [2001:db8:f::9]:40024 -> [2001:db8:b::1]:22 in wan0             # v6 ssh from the wan
accept tcp [2001:db8:b::1]:40025 -> [2001:db8:f::9]:443 out wan0           # v6: the router connects out
`

// routerDir copies the router example into a directory uid 65534 can
// read, adds IPv6 addresses, probes and (appended to the copy) the
// neighbour discovery IPv6 needs, and a report directory it can write.
func routerDir(t *testing.T) (dir string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "fwslot-rootless-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "examples", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	files := map[string]string{
		"router.nft":      read("router.nft") + "add rule inet filter input icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept   # IPv6 needs neighbour discovery\n",
		"router.probes":   read("router.probes") + routerV6Probes,
		"router.topology": read("router.topology") + "addr lan0 2001:db8:a::1/64\naddr wan0 2001:db8:b::1/64\nroute wan0 ::/0\n",
		// The ssh-from-the-wan probe with the wrong verdict.
		"wrong.probes": strings.Replace(read("router.probes"), "drop   tcp 203.0.113.9:40007", "accept tcp 203.0.113.9:40007", 1),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(out, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	return dir
}

// asNobody runs argv as uid/gid 65534 with no supplementary groups in dir.
func asNobody(t *testing.T, dir string, argv ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + dir, "LC_ALL=C"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{}}}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &ee):
		return out.String(), ee.ExitCode()
	}
	t.Fatalf("%v: %v", argv, err)
	return "", -1
}

// lineOf returns the 1-based line of file that contains s.
func lineOf(t *testing.T, file, s string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, s) {
			return i + 1
		}
	}
	t.Fatalf("%s holds no %q", file, s)
	return 0
}

// rootlessRouter returns the fwslot binary and a folder with the router
// example that uid 65534 can read, after checking that this user may
// create a user namespace (root is needed to switch to that user).
func rootlessRouter(t *testing.T) (bin, dir string) {
	t.Helper()
	testnet.RequireRoot(t) // to switch to uid 65534
	bin = fwslotBinary(t)
	dir = routerDir(t)
	if out, code := asNobody(t, dir, "unshare", "-Urn", "id", "-u"); code != 0 || strings.TrimSpace(out) != "0" {
		t.Fatalf("user namespaces are not available to an unprivileged user here (unshare -Urn as uid %d: exit %d): %s", nobody, code, out)
	}
	return bin, dir
}

// TestRootlessTest: an unprivileged user (uid 65534) runs `fwslot test`
// inside `unshare -Urn`, as a CI container would: the twin is built from
// anonymous namespaces, NAT, reject and IPv6 probes pass, a wrong probe
// fails at its line, and the JUnit report is written. Outside a user
// namespace the refusal says how to run it, exit 2.
func TestRootlessTest(t *testing.T) {
	bin, dir := rootlessRouter(t)
	total := strings.Count(strings.TrimSpace(routerV6Probes), "\n") + 1 + 13
	wrongLine := lineOf(t, filepath.Join(dir, "wrong.probes"), "40007")
	cases := []struct {
		name     string
		argv     []string
		code     int
		want     []string
		junit    bool
		notWants []string
	}{
		{"router with NAT, reject and IPv6 passes",
			[]string{"unshare", "-Urn", bin, "test", "router.nft", "--probes", "router.probes", "--topology", "router.topology", "--junit", "out/report.xml"},
			0, []string{strconv.Itoa(total) + " probes: " + strconv.Itoa(total) + " passed, 0 failed"}, true, []string{"FAIL"}},
		{"a wrong probe fails at its line",
			[]string{"unshare", "-Urn", bin, "test", "router.nft", "--probes", "wrong.probes", "--topology", "router.topology"},
			1, []string{"FAIL wrong.probes:" + strconv.Itoa(wrongLine) + ": accept tcp 203.0.113.9:40007", "expected accept, got drop", "1 of 13 probes failed"}, false, nil},
		{"outside a user namespace: how to run it",
			[]string{bin, "test", "router.nft", "--probes", "router.probes", "--topology", "router.topology"},
			2, []string{"unshare -Urn fwslot test"}, false, []string{"/run/netns"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			os.Remove(filepath.Join(dir, "out", "report.xml"))
			out, code := asNobody(t, dir, c.argv...)
			if code != c.code {
				t.Fatalf("exit %d, want %d:\n%s", code, c.code, out)
			}
			checkOutput(t, "", out, c.want, c.notWants)
			if c.junit {
				b, err := os.ReadFile(filepath.Join(dir, "out", "report.xml"))
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(string(b), `tests="`+strconv.Itoa(total)+`"`) || strings.Contains(string(b), "<failure") {
					t.Errorf("JUnit report:\n%s", b)
				}
			}
		})
	}
}
