package probe

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/fwslot/fwslot/internal/nsutil"
	"github.com/fwslot/fwslot/internal/source"
	"github.com/fwslot/fwslot/internal/testnet"
)

func requireRoot(t testing.TB) {
	t.Helper()
	testnet.RequireRoot(t)
}

// fwpNamespaces lists the namespaces whose name starts with fwp-.
// fwpNamespaces lists the twin and peer namespaces this test process
// made (their names carry the creator's pid), so that probe runs of other
// processes on the machine do not count.
func fwpNamespaces(t testing.TB) map[string]bool {
	t.Helper()
	ents, _ := os.ReadDir(nsutil.RunDir)
	mine := "-" + strconv.Itoa(os.Getpid()) + "-"
	m := map[string]bool{}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "fwp-") && strings.Contains(e.Name(), mine) {
			m[e.Name()] = true
		}
	}
	return m
}

// heldNamespaces lists the network namespaces this process holds: by an
// open descriptor or as some thread's namespace. A twin's namespaces are
// anonymous, so once nothing holds them the kernel frees them.
func heldNamespaces(t testing.TB) map[string]bool {
	t.Helper()
	m := map[string]bool{}
	for _, glob := range []string{"/proc/self/fd/*", "/proc/self/task/*/ns/net"} {
		paths, err := filepath.Glob(glob)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range paths {
			if l, err := os.Readlink(p); err == nil && strings.HasPrefix(l, "net:[") {
				m[l] = true
			}
		}
	}
	return m
}

// nsID names a namespace handle as /proc shows it: net:[inode].
func nsID(t testing.TB, h netns.NsHandle) string {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(int(h), &st); err != nil {
		t.Fatal(err)
	}
	return "net:[" + strconv.FormatUint(st.Ino, 10) + "]"
}

func inTwin(t testing.TB, tw *Twin, args ...string) string {
	t.Helper()
	var out []byte
	err := nsutil.DoHandle(tw.ns, func() error {
		var err error
		out, err = exec.Command(args[0], args[1:]...).CombinedOutput()
		return err
	})
	if err != nil {
		t.Fatalf("%v: %v: %s", args, err, out)
	}
	return string(out)
}

func TestTwinSetupAndClose(t *testing.T) {
	requireRoot(t)
	before, held := fwpNamespaces(t), heldNamespaces(t)
	topo, err := ParseTopology("topo", strings.NewReader("iface eth0 index 7\naddr eth0 192.0.2.10/24\naddr eth0 2001:db8::1/64\nroute eth0 0.0.0.0/0\nroute wan0 2001:db8:1::/48\n"))
	if err != nil {
		t.Fatal(err)
	}
	tw, err := NewTwin(context.Background(), topo, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tw.Close()
	links := inTwin(t, tw, "ip", "-o", "link")
	if !strings.Contains(links, "7: eth0@") || !strings.Contains(links, "wan0@") {
		t.Fatalf("links:\n%s", links)
	}
	addrs := inTwin(t, tw, "ip", "-o", "addr")
	if !strings.Contains(addrs, "192.0.2.10/24") || !strings.Contains(addrs, "2001:db8::1/64") || strings.Contains(addrs, "tentative") {
		t.Fatalf("addrs:\n%s", addrs)
	}
	routes := inTwin(t, tw, "ip", "-6", "route")
	if !strings.Contains(routes, "2001:db8:1::/48 via fe80::2 dev wan0") {
		t.Fatalf("routes:\n%s", routes)
	}
	if got := strings.TrimSpace(inTwin(t, tw, "cat", "/proc/sys/net/ipv4/ip_forward")); got != "1" {
		t.Fatalf("ip_forward in twin = %s", got)
	}
	ids := []string{nsID(t, tw.ns)}
	for _, ti := range tw.ifaces {
		ids = append(ids, nsID(t, ti.peerNS))
	}
	if now := heldNamespaces(t); !now[ids[0]] || !now[ids[1]] || !now[ids[2]] {
		t.Fatalf("the twin's namespaces %v are not held by this process: %v", ids, now)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	now := heldNamespaces(t)
	for _, id := range ids {
		if now[id] {
			t.Errorf("namespace %s still held after Close", id)
		}
	}
	for id := range now {
		if !held[id] {
			t.Errorf("namespace %s held after Close that was not before", id)
		}
	}
	after := fwpNamespaces(t)
	for n := range after {
		if !before[n] {
			t.Errorf("leaked namespace %s", n)
		}
	}
}

func TestTwinPartialFailureCleansUp(t *testing.T) {
	requireRoot(t)
	before, held := fwpNamespaces(t), heldNamespaces(t)
	topo := Topology{Interfaces: []Interface{{Name: "eth0"}, {Name: "eth1"}}}
	_, err := NewTwin(context.Background(), topo, func(netns.NsHandle) error { return os.ErrInvalid })
	if err == nil || !strings.Contains(err.Error(), "load ruleset into twin") {
		t.Fatalf("want loader error, got %v", err)
	}
	for id := range heldNamespaces(t) {
		if !held[id] {
			t.Errorf("namespace %s still held after a failed NewTwin", id)
		}
	}
	for n := range fwpNamespaces(t) {
		if !before[n] {
			t.Errorf("leaked namespace %s", n)
		}
	}
}

func loadProbes(t testing.TB, path string) []Probe {
	t.Helper()
	return parseFile(t, path, Parse)
}

func runFixture(t *testing.T, name string) Report {
	t.Helper()
	requireRoot(t)
	probes := loadProbes(t, "testdata/"+name+".probes")
	rep, err := Run(context.Background(), Topology{}, nftFileLoader("testdata/"+name+".nft"), probes, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	WriteText(&b, rep)
	t.Logf("report:\n%s", b.String())
	for _, r := range rep.Results {
		if !r.Passed() {
			t.Errorf("%s: %s: got %s (%s) err=%v failure=%s\n%s", r.Probe.Where(), r.Probe.Text, r.Got, r.Outcome, r.Err, r.Failure, r.Path)
		}
	}
	return rep
}

func TestServerFixture(t *testing.T) {
	runFixture(t, "server")
}

func TestRouterFixture(t *testing.T) {
	rep := runFixture(t, "router")
	for _, r := range rep.Results {
		if r.Probe.SNAT != nil && (r.Seen == nil || r.Seen.Src.Addr != r.Probe.SNAT.Addr) {
			t.Errorf("%s: snat not observed: %+v", r.Probe.Text, r.Seen)
		}
		if r.Probe.DNAT != nil && (r.Seen == nil || r.Seen.Dst != *r.Probe.DNAT) {
			t.Errorf("%s: dnat not observed: %+v", r.Probe.Text, r.Seen)
		}
		if r.Got == Accept && (r.Outcome != Forwarded || r.Seen.Iface != r.Probe.Out) {
			t.Errorf("%s: outcome %s via %+v", r.Probe.Text, r.Outcome, r.Seen)
		}
	}
}

func TestSlotLayoutPath(t *testing.T) {
	rep := runFixture(t, "slots")
	want := []string{
		"input:tcp dport 22 accept>accept",
		"input:tcp dport 80 jump web>jump web | web:ip saddr 10.0.0.0/8 accept>accept",
		"input:tcp dport 80 jump web>jump web | web:return>return | input:>continue | input:policy>drop",
		"input:udp dport 53 goto dns>goto dns | dns:reject>drop",
	}
	for i, r := range rep.Results {
		if len(r.Path) != 1 {
			t.Fatalf("%s: want one hop, got %s", r.Probe.Text, r.Path)
		}
		var parts []string
		for _, s := range r.Path[0].Steps {
			text := ""
			switch {
			case s.Policy:
				text = "policy"
			case s.Rule != nil:
				text = s.Rule.Text
			}
			parts = append(parts, s.Chain+":"+text+">"+s.Verdict)
			if strings.HasPrefix(s.Chain, "fwslot") {
				t.Errorf("slot chain name leaked: %s", s.Chain)
			}
		}
		if got := strings.Join(parts, " | "); got != want[i] {
			t.Errorf("%s:\n got  %s\n want %s", r.Probe.Text, got, want[i])
		}
	}
	// Dispatch rules are not user rules: 7 user rules, one never matched.
	if c := rep.Coverage; c.Total != 7 || c.Reached != 6 || c.Unreached[0].Chain != "dns" {
		t.Errorf("coverage %d/%d, unreached %+v", c.Reached, c.Total, c.Unreached)
	}
}

func parseLines(t testing.TB, src string) []Probe {
	t.Helper()
	probes, err := Parse("inline.probes", strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	return probes
}

func TestMarks(t *testing.T) {
	requireRoot(t)
	probes := parseLines(t, `accept tcp 203.0.113.9 -> 192.0.2.10:22 in eth0 mark 0x10
drop   tcp 203.0.113.9 -> 192.0.2.10:22 in eth0
accept udp [2001:db8::9] -> [2001:db8::10]:53 in eth0 mark 16
drop   udp 192.0.2.10 -> 203.0.113.9:53 out eth0 mark 0x20
accept udp 192.0.2.10 -> 203.0.113.9:53 out eth0 mark 0x21
`)
	rep, err := Run(context.Background(), Topology{}, nftFileLoader("testdata/marks.nft"), probes, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		if !r.Passed() {
			t.Errorf("%s: got %s err %v\n%s", r.Probe.Text, r.Got, r.Err, r.Path)
		}
	}
}

// TestFailuresAreExplained checks that wrong expectations fail with the
// probe's file:line, expected vs got, and the deciding rule on the path.
func TestFailuresAreExplained(t *testing.T) {
	requireRoot(t)
	probes := parseLines(t, `drop   tcp 10.0.0.7 -> 203.0.113.9:443 in lan0 out wan0   # should be blocked
accept tcp 10.0.0.7 -> 203.0.113.9:443 in lan0 out wan0 snat 192.0.2.99
accept tcp 203.0.113.9 -> 10.0.0.5:80 in wan0 out lan0
reject tcp 203.0.113.9 -> 10.0.0.5:23 in wan0 out lan0
`)
	topo := InferTopology(probes)
	wan, _ := topo.lookup("wan0")
	// As from --topology: the inferred address would be the snat address
	// itself, which makes a masquerade check pass by construction.
	wan.Addrs = []netip.Prefix{hostPrefix(mustAddr("192.0.2.10"))}
	rep, err := Run(context.Background(), topo, nftFileLoader("testdata/router.nft"), probes, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := WriteText(&b, rep); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	t.Log(text)
	for _, want := range []string{
		"FAIL inline.probes:1: drop   tcp 10.0.0.7 -> 203.0.113.9:443 in lan0 out wan0   # should be blocked\n  expected drop, got accept (forwarded)",
		"chain forward: iifname \"lan0\" oifname \"wan0\" accept  # handle",
		"FAIL inline.probes:2:",
		"source after nat is 192.0.2.10:",
		"expected snat 192.0.2.99",
		"chain postrouting: oifname \"wan0\" masquerade  # handle",
		"FAIL inline.probes:3: accept tcp 203.0.113.9 -> 10.0.0.5:80 in wan0 out lan0\n  expected accept, got drop (dropped)",
		"chain forward: policy drop",
		"4 probes: 1 passed, 3 failed",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

// TestTraceWireDisagreement: the ruleset accepts a forwarded packet the
// twin cannot route; that is an error for the probe, never a guess.
func TestTraceWireDisagreement(t *testing.T) {
	requireRoot(t)
	probes := parseLines(t, "accept tcp 10.0.0.7 -> 203.0.113.9:443 in lan0 out wan0\n")
	topo := Topology{Interfaces: []Interface{{Name: "lan0"}, {Name: "wan0"}}} // no routes
	rep, err := Run(context.Background(), topo, nftFileLoader("testdata/router.nft"), probes, nil, Options{Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Results[0]
	if r.Passed() || r.Err == nil || !strings.Contains(r.Err.Error(), "the ruleset accepted the packet but") {
		t.Fatalf("want a disagreement error, got %s err=%v\n%s", r.Got, r.Err, r.Path)
	}
}

func TestMissingInterface(t *testing.T) {
	requireRoot(t)
	probes := parseLines(t, "accept tcp 10.0.0.7 -> 203.0.113.9:443 in lan0\n")
	rep, err := Run(context.Background(), Topology{Interfaces: []Interface{{Name: "eth0"}}}, nil, probes, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r := rep.Results[0]; r.Err == nil || !strings.Contains(r.Err.Error(), `no interface "lan0"`) {
		t.Fatalf("got %v", r.Err)
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// TestSharedExamples runs the project's example rulesets when present (they
// are written by another package's owner; skipped when absent).
func TestSharedExamples(t *testing.T) {
	requireRoot(t)
	matches, _ := filepath.Glob("../testdata/examples/*.probes")
	if len(matches) < 3 {
		t.Fatalf("want the server, router and dual-stack examples, found %v", matches)
	}
	for _, pf := range matches {
		nftFile := strings.TrimSuffix(pf, ".probes") + ".nft"
		if _, err := os.Stat(nftFile); err != nil {
			continue
		}
		t.Run(filepath.Base(nftFile), func(t *testing.T) {
			probes := loadProbes(t, pf)
			topo := Topology{}
			if tf := strings.TrimSuffix(pf, ".probes") + ".topology"; fileExists(tf) {
				f, err := os.Open(tf)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if topo, err = ParseTopology(tf, f); err != nil {
					t.Fatal(err)
				}
			}
			// The examples run as fwslot runs them: compiled for the
			// twin and live in the slot layout.
			bundle, err := source.Load(nftFile, source.Options{})
			if err != nil {
				t.Fatal(err)
			}
			rep, err := Run(context.Background(), topo, CompileLoader(context.Background(), bundle), probes, nil, Options{})
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			WriteText(&b, rep)
			t.Log(b.String())
			if !rep.OK() {
				t.Errorf("%d probes failed", rep.Failed)
			}
		})
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }
