package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fwslot/fwslot/internal/testnet"
)

// handRuleset accepts 8443 only from addresses in the per-slot set
// allowed (which the peer is not in), and rejects the peer once it is in
// the shared set block.
var handRuleset = `table inet filter {
	set allowed { type ipv4_addr; elements = { 192.0.2.200 } }
	set block { type ipv4_addr; flags dynamic; }
	counter hits { }
	chain input {
		type filter hook input priority 0; policy drop;
		ip saddr @block meta l4proto tcp reject with tcp reset
		ct state established,related accept
		iif lo accept
		ip saddr @allowed counter name "hits" jump svc
		tcp dport 22 accept
		meta l4proto tcp reject with tcp reset
	}
	chain svc {
		tcp dport 8443 accept
	}
}
`

// closedRuleset is another version of the same table, without 8443.
const closedRuleset = `table inet filter {
	chain input {
		type filter hook input priority 0; policy drop;
		tcp dport 22 accept
		meta l4proto tcp reject with tcp reset
	}
}
`

// makeLive loads body, written to a file called name, with the load
// flags extra, and swaps it live.
func makeLive(t *testing.T, g []string, name, body string, extra ...string) {
	t.Helper()
	mustRun(t, g, append([]string{"load", writeFile(t, name, body)}, extra...)...)
	mustRun(t, g, "swap")
}

// A change made by hand with nft becomes a version with commit: show has
// it, drift is gone, packets behave as with the hand change, and a later
// swap and rollback keep it.
func TestCommitHandChanges(t *testing.T) {
	peer := testnet.PeerIP
	cases := []struct {
		name string
		hand string
		show string // in `show` of the committed version
		note string // on stderr of commit, if any
		// openAfter: 8443 reachable from the peer once committed. A rule
		// added after the policy rule lands at the end of the chain, after
		// its reject, as with plain nft.
		openAfter bool
		openHand  bool // 8443 reachable with the hand change, before commit
	}{
		{"rule inserted into a base chain", "insert rule inet filter input tcp dport 8443 accept", "tcp dport 8443 accept", "", true, true},
		{"rule inserted into the live slot's chain", "insert rule inet filter fwslot_b_input tcp dport 8443 accept", "tcp dport 8443 accept", "", true, true},
		{"element added to a per-slot set", "add element inet filter fwslot_b_allowed { " + peer + " }", peer, "", true, true},
		{"rule added after fwslot's policy rule", "add rule inet filter input tcp dport 8443 accept", "tcp dport 8443 accept", "never matched", false, false},
		{"element added to a shared set", "add element inet filter block { " + peer + " }", peer, "", false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ns, client := testnet.Pair(t)
			g := targetFlags(t, ns)
			makeLive(t, g, "r.nft", handRuleset, "-m", "one")
			testnet.Listen(t, ns, "tcp", net.JoinHostPort(testnet.TargetIP, "8443"))
			addr := net.JoinHostPort(testnet.TargetIP, "8443")
			open := func() bool { return testnet.Connect(client, addr, 2*time.Second) }
			if open() {
				t.Fatal("8443 is open before the hand change")
			}
			testnet.Run(t, ns, "nft", c.hand)
			if got := open(); got != c.openHand {
				t.Fatalf("with the hand change: 8443 open %v, want %v", got, c.openHand)
			}
			out := mustRun(t, g, "commit", "-m", "incident")
			if !strings.Contains(out, "as version 2") || !strings.Contains(out, c.note) {
				t.Fatalf("commit output lacks version 2 or %q:\n%s", c.note, out)
			}
			s := status(t, g...)
			if s.Drift || s.Production == nil || s.Production.Version != 2 || s.Staging == nil || s.Staging.Version != 1 {
				t.Fatalf("after commit: %+v", s)
			}
			if src := mustRun(t, g, "show", "2"); !strings.Contains(src, c.show) {
				t.Fatalf("show 2 lacks %q:\n%s", c.show, src)
			}
			if got := open(); got != c.openAfter {
				t.Fatalf("after commit: 8443 open %v, want %v", got, c.openAfter)
			}
			// Another version goes live and is rolled back: the commit
			// comes back, hand change included.
			makeLive(t, g, "closed.nft", closedRuleset)
			if open() {
				t.Fatal("8443 open with the closed version live")
			}
			mustRun(t, g, "rollback")
			if s := status(t, g...); s.Drift || s.Production.Version != 2 {
				t.Fatalf("after rollback: %+v", s)
			}
			if got := open(); got != c.openAfter {
				t.Fatalf("after swap and rollback: 8443 open %v, want %v", got, c.openAfter)
			}
			if out := mustRun(t, g, "commit", "-m", "again"); !strings.Contains(out, "nothing to commit") {
				t.Fatalf("second commit:\n%s", out)
			}
		})
	}
}

// commit --staged records a hand change of the staging slot in place;
// production is not touched.
func TestCommitStaged(t *testing.T) {
	ns, client := testnet.Pair(t)
	g := targetFlags(t, ns)
	makeLive(t, g, "closed.nft", closedRuleset)
	mustRun(t, g, "load", writeFile(t, "r.nft", handRuleset))
	testnet.Listen(t, ns, "tcp", net.JoinHostPort(testnet.TargetIP, "8443"))
	live := func() string { return testnet.Run(t, ns, "nft", "list", "chain", "inet", "filter", "fwslot_b_input") }
	before := live()
	testnet.Run(t, ns, "nft", "insert rule inet filter fwslot_a_svc ip saddr "+testnet.PeerIP+" accept")
	testnet.Run(t, ns, "nft", "add element inet filter fwslot_a_allowed { "+testnet.PeerIP+" }")
	if s := status(t, g...); !s.Drift {
		t.Fatal("the hand change of staging is not drift")
	}
	out := mustRun(t, g, "commit", "--staged", "-m", "fix the staged version")
	if !strings.Contains(out, "as version 3") {
		t.Fatalf("commit --staged:\n%s", out)
	}
	s := status(t, g...)
	if s.Drift || s.Production.Version != 1 || s.Staging.Version != 3 {
		t.Fatalf("after commit --staged: %+v", s)
	}
	if after := live(); after != before {
		t.Fatalf("production changed:\n%s\nwas:\n%s", after, before)
	}
	if src := mustRun(t, g, "show", "3"); !strings.Contains(src, "ip saddr "+testnet.PeerIP+" accept") {
		t.Fatalf("show 3:\n%s", src)
	}
	mustRun(t, g, "swap")
	if !testnet.Connect(client, net.JoinHostPort(testnet.TargetIP, "8443"), 2*time.Second) {
		t.Fatal("the committed staged version does not let the peer in once live")
	}
	if out, code := run(t, append(g, "commit")...); code != 2 || !strings.Contains(out, "-m") {
		t.Fatalf("commit without -m: exit %d\n%s", code, out)
	}
}

// editor writes a shell script usable as $EDITOR.
func editor(t *testing.T, body string) string {
	t.Helper()
	p := writeFile(t, "editor.sh", "#!/bin/sh\n"+body+"\n")
	if err := os.Chmod(p, 0o700); err != nil {
		t.Fatal(err)
	}
	return p
}

// edit opens the live (or staged) source in $EDITOR and stages what was
// saved; an unchanged or empty file stages nothing; a broken one is kept.
func TestEdit(t *testing.T) {
	ns, _ := testnet.Pair(t)
	g := targetFlags(t, ns)
	makeLive(t, g, "r.nft", sshOnly, "-m", "one")
	perms := t.TempDir() + "/perms"
	sshProbe := writeFile(t, "ssh.probes", "accept tcp 198.51.100.7:40000 -> 192.0.2.10:22 in eth0\n")
	t.Setenv("VISUAL", "")
	cases := []struct {
		name    string
		script  string
		args    []string
		code    int
		want    string
		staging uint64 // staged version afterwards (0: nothing)
		show    string // in `show staging` afterwards
	}{
		{"unchanged", "true", nil, 0, "unchanged: nothing staged", 0, ""},
		{"emptied", `: > "$1"`, nil, 0, "empty: nothing staged", 0, ""},
		{"edited", `stat -c '%a' "$1" "$(dirname "$1")" > ` + perms + `; sed -i 's/dport 22 accept/dport 2222 accept/' "$1"`, []string{"-m", "ssh on 2222"}, 0, "staged version 2", 2, "tcp dport 2222 accept"},
		{"staged version edited", `sed -i 's/dport 2222 accept/dport 2223 accept/' "$1"`, []string{"--staged"}, 0, "staged version 3", 3, "tcp dport 2223 accept"},
		{"refused by a probe", `sed -i 's/dport 22 accept/dport 2224 accept/' "$1"`, []string{"--probes", sshProbe}, 1, "refusing to stage", 3, "tcp dport 2223 accept"},
		{"broken", `echo 'chain {' >> "$1"`, nil, 2, "your edit is kept in", 3, "tcp dport 2223 accept"},
		{"editor fails", "exit 3", nil, 1, "nothing staged", 3, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("EDITOR", editor(t, c.script))
			out, code := run(t, append(append(append([]string{}, g...), "edit"), c.args...)...)
			if code != c.code || !strings.Contains(out, c.want) {
				t.Fatalf("exit %d, want %d; output lacks %q:\n%s", code, c.code, c.want, out)
			}
			if _, rest, ok := strings.Cut(out, "your edit is kept in "); ok {
				kept, _, _ := strings.Cut(rest, ";")
				b, err := os.ReadFile(kept)
				os.RemoveAll(filepath.Dir(kept))
				if err != nil || len(b) == 0 {
					t.Fatalf("the kept edit %s: %v", kept, err)
				}
			}
			s := status(t, g...)
			if s.Production.Version != 1 || s.Drift {
				t.Fatalf("production changed: %+v", s)
			}
			got := uint64(0)
			if s.Staging != nil {
				got = s.Staging.Version
			}
			if got != c.staging {
				t.Fatalf("staged version %d, want %d", got, c.staging)
			}
			if c.show != "" {
				if src := mustRun(t, g, "show", fmt.Sprint(got)); !strings.Contains(src, c.show) {
					t.Fatalf("show %d lacks %q:\n%s", got, c.show, src)
				}
			}
		})
	}
	b, err := os.ReadFile(perms)
	if err != nil {
		t.Fatal(err)
	}
	if p := strings.Fields(string(b)); len(p) != 2 || p[0] != "600" || p[1] != "700" {
		t.Fatalf("the edited file and its directory have modes %v, want 600 and 700", p)
	}
}

// What lies outside the slots (a chain added by hand under a name of its
// own) cannot be part of a version: commit records the rest, and says
// that its flip removes the chain, as swap --force does.
func TestCommitNamesWhatItCannotRecord(t *testing.T) {
	ns, _ := testnet.Pair(t)
	g := targetFlags(t, ns)
	makeLive(t, g, "r.nft", handRuleset)
	testnet.Run(t, ns, "nft", "add chain inet filter extra")
	testnet.Run(t, ns, "nft", "insert rule inet filter fwslot_b_input tcp dport 8443 accept")
	out := mustRun(t, g, "commit", "-m", "incident")
	if !strings.Contains(out, "as version 2") || !strings.Contains(out, "chain inet filter extra was made by hand outside the slots") {
		t.Fatalf("commit:\n%s", out)
	}
	if src := mustRun(t, g, "show", "2"); !strings.Contains(src, "tcp dport 8443 accept") || strings.Contains(src, "extra") {
		t.Fatalf("show 2:\n%s", src)
	}
	if out, err := testnet.Output(ns, "nft", "list", "chain", "inet", "filter", "extra"); err == nil {
		t.Fatalf("chain extra survived the commit:\n%s", out)
	}
	if s := status(t, g...); s.Drift {
		t.Fatalf("drift after commit: %v", s.DriftChanges)
	}
}
