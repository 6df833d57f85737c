package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/fwslot/fwslot/internal/kerneltest"
	"github.com/fwslot/fwslot/internal/nsutil"
	"github.com/fwslot/fwslot/internal/slots"
	"github.com/fwslot/fwslot/internal/testnet"
)

const onlySSH = `table inet filter {
	chain input {
		type filter hook input priority 0; policy drop;
		ct state established,related accept
		iif lo accept
		tcp dport 22 accept
		meta l4proto tcp reject with tcp reset
	}
}
`

const onlyWeb = `define web = { 80, 443 }
table inet filter {
	chain web { tcp dport $web accept; }
	chain input {
		type filter hook input priority 0; policy drop;
		ct state established,related accept
		jump web
		meta l4proto tcp reject with tcp reset
	}
}
`

func TestLoadSwapRollbackWithPackets(t *testing.T) {
	target, peer := servingPair(t)
	tg := newTarget(t, target)
	v1 := writeRuleset(t, "ssh.nft", onlySSH)
	v2 := writeRuleset(t, "web.nft", onlyWeb)

	expectReach(t, peer, map[string]bool{"22": true, "80": true})
	before := kerneltest.Production(t, target)
	r := load(t, tg, v1)
	if r.Version != 1 || r.Slot != "b" {
		t.Fatalf("first load: %+v", r)
	}
	if !bytes.Equal(before, kerneltest.Production(t, target)) {
		t.Fatal("load changed production")
	}
	expectReach(t, peer, map[string]bool{"22": true, "80": true})

	if res := mustSwap(t, tg); res.To != 1 || res.From != 0 {
		t.Fatalf("swap: %+v", res)
	}
	expectReach(t, peer, map[string]bool{"22": true, "80": false})

	before = kerneltest.Production(t, target)
	if r := load(t, tg, v2); r.Version != 2 {
		t.Fatalf("second load: %+v", r)
	}
	if !bytes.Equal(before, kerneltest.Production(t, target)) {
		t.Fatal("staging version 2 changed production")
	}
	expectReach(t, peer, map[string]bool{"22": true, "80": false})

	mustSwap(t, tg)
	expectReach(t, peer, map[string]bool{"22": false, "80": true})

	if res := mustRollback(t, tg, 0); res.To != 1 || res.Restaged {
		t.Fatalf("rollback should flip to version 1 without restaging: %+v", res)
	}
	expectReach(t, peer, map[string]bool{"22": true, "80": false})

	// Version 2 sits in the other slot: rollback --to 2 flips back.
	mustRollback(t, tg, 2)
	expectReach(t, peer, map[string]bool{"22": false, "80": true})

	acts, err := tg.Store.Activations(tg.Key())
	if err != nil {
		t.Fatal(err)
	}
	var hows []string
	for _, a := range acts {
		hows = append(hows, a.How)
	}
	if got := strings.Join(hows, ","); got != "swap,swap,rollback,rollback" {
		t.Fatalf("activations: %s", got)
	}
	st, err := tg.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Production.Version != 2 || st.Staging.Version != 1 || len(st.Warnings) != 0 {
		t.Fatalf("status: %+v %+v %v", st.Production, st.Staging, st.Warnings)
	}
}

func TestRollbackRestagesOlderVersion(t *testing.T) {
	target, peer := servingPair(t)
	tg := newTarget(t, target)
	v1 := writeRuleset(t, "ssh.nft", onlySSH)
	v2 := writeRuleset(t, "web.nft", onlyWeb)
	v3 := writeRuleset(t, "both.nft", strings.Replace(onlyWeb, "80, 443", "22, 80, 443", 1))
	for _, f := range []string{v1, v2, v3} {
		load(t, tg, f)
		mustSwap(t, tg)
	}
	expectReach(t, peer, map[string]bool{"22": true, "80": true})
	// Version 1 is no longer in a slot: it is restaged from history.
	res := mustRollback(t, tg, 1)
	if !res.Restaged || res.To != 1 {
		t.Fatalf("rollback --to 1: %+v", res)
	}
	expectReach(t, peer, map[string]bool{"22": true, "80": false})
	if _, err := tg.Rollback(context.Background(), 1); err == nil {
		t.Fatal("rollback to the live version should fail")
	}
}

func TestIdenticalLoadDoesNothing(t *testing.T) {
	target, _ := testnet.Pair(t)
	tg := newTarget(t, target)
	v1 := writeRuleset(t, "ssh.nft", onlySSH)
	load(t, tg, v1)
	if r := load(t, tg, v1); r.Unchanged != "staging" || r.Version != 1 {
		t.Fatalf("reload of staged content: %+v", r)
	}
	mustSwap(t, tg)
	if r := load(t, tg, v1); r.Unchanged != "production" {
		t.Fatalf("reload of live content: %+v", r)
	}
	if _, err := tg.Swap(context.Background(), SwapOptions{}); !errors.Is(err, ErrNothingStaged) {
		t.Fatalf("swap with nothing staged: %v", err)
	}
	vs, _ := tg.Store.Versions(tg.Key())
	if len(vs) != 1 {
		t.Fatalf("history has %d versions, want 1", len(vs))
	}
}

func TestFailedLoadLeavesProductionAndStaging(t *testing.T) {
	target, peer := testnet.Pair(t)
	testnet.Listen(t, target, "tcp", ":22")
	tg := newTarget(t, target)
	withSet := `table inet filter {
	set seen { type ipv4_addr; flags dynamic; }
	chain input { type filter hook input priority 0; policy accept; update @seen { ip saddr }; }
}`
	load(t, tg, writeRuleset(t, "v1.nft", withSet))
	mustSwap(t, tg)
	load(t, tg, writeRuleset(t, "v2.nft", withSet+"\n# staged\n"))
	before := readKernel(t, target)
	versions, _ := tg.Store.Versions(tg.Key())

	cases := []struct {
		name, body string
		compile    bool
	}{
		{"syntax error", "table inet filter {\n chain input { tcp dport 22 acept; }\n}\n", true},
		{"unknown interface", "table inet filter { chain input { type filter hook input priority 0; iif nosuch0 accept; } }", true},
		{"reserved name", "table inet filter { chain fwslot_mine { accept; } }", true},
		{"no table", "define x = 1\n", true},
		// Compiles, but the shared set exists with another type: the
		// kernel rejects the transplant as a whole.
		{"shared set conflict", strings.NewReplacer("ipv4_addr", "ipv6_addr", "ip saddr", "ip6 saddr").Replace(withSet), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := tg.Load(context.Background(), writeRuleset(t, "bad.nft", c.body), LoadOptions{})
			if err == nil {
				t.Fatal("load succeeded")
			}
			var ce *slots.CompileError
			if errors.As(err, &ce) != c.compile {
				t.Fatalf("compile error = %v, want %v: %v", errors.As(err, &ce), c.compile, err)
			}
			if c.name == "syntax error" && !strings.Contains(err.Error(), "bad.nft:2:") {
				t.Fatalf("error lacks file:line: %v", err)
			}
			before.unchanged(t, "failed load")
			if vs, _ := tg.Store.Versions(tg.Key()); len(vs) != len(versions) {
				t.Fatalf("failed load added a version to history")
			}
		})
	}
	expectReach(t, peer, map[string]bool{"22": true})
}

func TestSharedStateSurvivesSwapAndRollback(t *testing.T) {
	target, peer := testnet.Pair(t)
	testnet.Listen(t, target, "tcp", ":22")
	tg := newTarget(t, target)
	body := `table inet filter {
	counter ssh { }
	set blocklist { type ipv4_addr; flags dynamic,timeout; timeout 1h; }
	set seen { type ipv4_addr; size 1024; flags dynamic; }
	chain input {
		type filter hook input priority 0; policy accept;
		ip saddr @blocklist drop
		tcp dport 22 counter name ssh update @seen { ip saddr } accept
	}
}
`
	load(t, tg, writeRuleset(t, "v1.nft", body))
	mustSwap(t, tg)
	expectReach(t, peer, map[string]bool{"22": true})
	testnet.Run(t, target, "nft", "add", "element", "inet", "filter", "blocklist", "{ 198.51.100.9 }")

	load(t, tg, writeRuleset(t, "v2.nft", body+"# v2\n"))
	mustSwap(t, tg)
	check := func(stage string) {
		contains(t, nftList(t, target, "list", "set", "inet", "filter", "blocklist"), "198.51.100.9")
		contains(t, nftList(t, target, "list", "set", "inet", "filter", "seen"), testnet.PeerIP)
		if out := nftList(t, target, "list", "counter", "inet", "filter", "ssh"); strings.Contains(out, "packets 0 ") {
			t.Fatalf("%s: counter ssh was reset:\n%s", stage, out)
		}
	}
	check("after swap")
	mustRollback(t, tg, 0)
	check("after rollback")
	// The blocklist still works: the peer is blocked once added.
	testnet.Run(t, target, "nft", "add", "element", "inet", "filter", "blocklist", "{ "+testnet.PeerIP+" }")
	expectReach(t, peer, map[string]bool{"22": false})
}

func TestFlushRulesetSparesOtherTables(t *testing.T) {
	target, _ := testnet.Pair(t)
	testnet.Run(t, target, "nft", "add table ip other; add chain ip other c { type filter hook input priority 5; }; add rule ip other c counter")
	tg := newTarget(t, target)
	load(t, tg, writeRuleset(t, "flush.nft", "flush ruleset\n"+onlySSH))
	mustSwap(t, tg)
	contains(t, nftList(t, target, "list", "ruleset"), "table ip other")
	contains(t, nftList(t, target, "list", "table", "ip", "other"), "counter packets")
}

// A slot that holds a named verdict map is cleared map first: the map
// jumps to the slot's chains. Taking over a table with one works too.
func TestNamedVerdictMapSlotsAreReplaced(t *testing.T) {
	target, peer := testnet.Pair(t)
	testnet.Listen(t, target, "tcp", ":22")
	body := `table inet filter {
	map services { type inet_service : verdict; elements = { 22 : jump ssh, 23 : drop } }
	counter seen { }
	map counted { type ipv4_addr : counter; elements = { 192.0.2.2 : "seen" } }
	chain ssh { counter name ip saddr map @counted accept; }
	chain input {
		type filter hook input priority 0; policy drop;
		ct state established,related accept
		tcp dport vmap @services
	}
}
`
	testnet.Run(t, target, "nft", "-f", writeRuleset(t, "legacy.nft", body))
	tg := newTarget(t, target)
	for i := 0; i < 4; i++ {
		load(t, tg, writeRuleset(t, "v.nft", fmt.Sprintf("%s# revision %d\n", body, i)))
		mustSwap(t, tg)
		expectReach(t, peer, map[string]bool{"22": true})
	}
	mustRollback(t, tg, 1)
	expectReach(t, peer, map[string]bool{"22": true})
}

// Conntrack entries survive a swap: an established connection keeps
// working under a version that lets only established traffic reach its
// port, while a new connection to that port is refused.
func TestConntrackSurvivesSwap(t *testing.T) {
	target, peer := testnet.Pair(t)
	var l net.Listener
	if err := nsutil.Do(target, func() error {
		var err error
		l, err = net.Listen("tcp", ":22")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	tg := newTarget(t, target)
	load(t, tg, writeRuleset(t, "ssh.nft", onlySSH))
	mustSwap(t, tg)
	var conn net.Conn
	if err := nsutil.Do(peer, func() error {
		var err error
		conn, err = net.DialTimeout("tcp", testnet.TargetIP+":22", time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	echo := func(msg string) error {
		conn.SetDeadline(time.Now().Add(time.Second))
		if _, err := conn.Write([]byte(msg)); err != nil {
			return err
		}
		buf := make([]byte, len(msg))
		_, err := io.ReadFull(conn, buf)
		return err
	}
	if err := echo("before"); err != nil {
		t.Fatal(err)
	}
	load(t, tg, writeRuleset(t, "web.nft", onlyWeb))
	mustSwap(t, tg)
	if err := echo("after the swap"); err != nil {
		t.Fatalf("the established connection died with the swap: %v", err)
	}
	if testnet.Connect(peer, testnet.TargetIP+":22", 300*time.Millisecond) {
		t.Fatal("version 2 must refuse new connections to port 22")
	}
}
