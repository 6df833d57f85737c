package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/sandbox"
	"github.com/fwslot/fwslot/internal/testnet"
	"github.com/fwslot/fwslot/session"
)

const (
	sshOnly = `table inet filter {
	chain input {
		type filter hook input priority 0; policy drop;
		ct state established,related accept
		tcp dport 22 accept
		meta l4proto tcp reject with tcp reset
	}
}
`
	webOnly = `table inet filter {
	chain input {
		type filter hook input priority 0; policy drop;
		tcp dport 80 accept
		meta l4proto tcp reject with tcp reset
	}
}
`
)

type statusJSON struct {
	Production *struct {
		Version uint64 `json:"version"`
	} `json:"production"`
	Staging *struct {
		Version uint64 `json:"version"`
	} `json:"staging"`
	Warnings []string `json:"warnings"`
	Pending  *struct {
		Version uint64 `json:"version"`
	} `json:"pending"`
	Drift        bool     `json:"drift"`
	DriftChanges []string `json:"drift_changes"`
}

func status(t *testing.T, args ...string) statusJSON {
	t.Helper()
	out, code := run(t, append(append([]string{}, args...), "status", "--json")...)
	var s statusJSON
	if code != 0 || json.Unmarshal([]byte(out), &s) != nil {
		t.Fatalf("status: exit %d\n%s", code, out)
	}
	return s
}

func liveVersion(t *testing.T, args ...string) uint64 {
	t.Helper()
	s := status(t, args...)
	if s.Production == nil {
		return 0
	}
	return s.Production.Version
}

// setupTwoVersions loads and swaps ssh.nft (version 1), then stages
// web.nft (version 2). It returns the global flags for the target.
func setupTwoVersions(t *testing.T, ns string) []string {
	t.Helper()
	g := targetFlags(t, ns)
	runSteps(t, g, [][]string{
		{"load", writeFile(t, "ssh.nft", sshOnly)},
		{"swap"},
		{"load", writeFile(t, "web.nft", webOnly)},
	})
	return g
}

// twoSwaps are the commands that make ssh.nft live as version 1, then
// web.nft live as version 2 with the swap flags given.
func twoSwaps(t *testing.T, swap ...string) [][]string {
	t.Helper()
	return [][]string{
		{"load", writeFile(t, "ssh.nft", sshOnly)}, {"swap"},
		{"load", writeFile(t, "web.nft", webOnly)}, append([]string{"swap"}, swap...),
	}
}

// The watchdog of `swap --confirm` survives the death of the whole
// process group of the command that started it, and reverts.
func TestConfirmRevertsAfterProcessGroupIsKilled(t *testing.T) {
	ns, peer := testnet.Pair(t)
	testnet.Listen(t, ns, "tcp", ":22")
	testnet.Listen(t, ns, "tcp", ":80")
	g := setupTwoVersions(t, ns)
	bin := fwslotBinary(t)
	// A shell stands for the operator's ssh session: it runs the swap
	// and then hangs until killed with its whole process group.
	sh := exec.Command("sh", "-c", fmt.Sprintf("%s %s swap --confirm 2s && sleep 60", bin, strings.Join(g, " ")))
	sh.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	sh.Stdout, sh.Stderr = &out, &out
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for liveVersion(t, g...) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("swap --confirm did not make version 2 live:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s := status(t, g...); s.Pending == nil || s.Pending.Version != 2 {
		t.Fatalf("status does not show the pending confirmation: %+v", s)
	}
	if !testnet.Connect(peer, testnet.TargetIP+":80", time.Second) {
		t.Fatal("version 2 should let port 80 in")
	}
	if err := syscall.Kill(-sh.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	sh.Wait()
	for liveVersion(t, g...) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the watchdog did not revert to version 1")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !testnet.Connect(peer, testnet.TargetIP+":22", time.Second) || testnet.Connect(peer, testnet.TargetIP+":80", 300*time.Millisecond) {
		t.Fatal("after the revert, version 1's behaviour should be back")
	}
	s := openHistory(t, g)
	acts, _ := s.Activations("netns:" + ns)
	last := acts[len(acts)-1]
	if last.How != "revert" || last.To != 1 || !strings.Contains(last.Note, "not confirmed") {
		t.Fatalf("history does not record the revert with its reason: %+v", last)
	}
	if acts[len(acts)-2].Result != "reverted" {
		t.Fatalf("the confirmed swap is not marked reverted: %+v", acts[len(acts)-2])
	}
	if st := status(t, g...); st.Pending != nil {
		t.Fatalf("still pending after the revert: %+v", st.Pending)
	}
}

func openHistory(t *testing.T, g []string) *history.Store {
	t.Helper()
	s, err := history.Open(dbOf(g), history.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConfirmKeepsTheNewVersion(t *testing.T) {
	ns, g := twoVersionTarget(t)
	if out, code := run(t, append(g, "confirm")...); code != 0 || !strings.Contains(out, "nothing to confirm") {
		t.Fatalf("confirm with nothing pending: exit %d: %s", code, out)
	}
	if out, code := run(t, append(g, "swap", "--confirm", "1s")...); code != 0 || !strings.Contains(out, "fwslot confirm") {
		t.Fatalf("swap --confirm: %s", out)
	}
	if out, code := run(t, append(g, "swap")...); code != 1 || !strings.Contains(out, "confirmation") {
		t.Fatalf("a second swap while pending must be refused: exit %d: %s", code, out)
	}
	if out, code := run(t, append(g, "confirm")...); code != 0 || !strings.Contains(out, "version 2 stays live") {
		t.Fatalf("confirm: %s", out)
	}
	time.Sleep(1500 * time.Millisecond)
	// The watchdog woke, found nothing pending, and left version 2.
	if v := liveVersion(t, g...); v != 2 {
		t.Fatalf("version %d live after confirm, want 2", v)
	}
	s := openHistory(t, g)
	acts, _ := s.Activations("netns:" + ns)
	if got := acts[len(acts)-1]; got.Result != "confirmed" || got.To != 2 {
		t.Fatalf("last activation: %+v", got)
	}
}

// A deadline that passes while no watchdog runs is caught by the next
// command.
func TestExpiredConfirmationRevertsOnNextCommand(t *testing.T) {
	ns, g := twoVersionTarget(t)
	tg, done, err := writableTarget(ns, dbOf(g))
	if err != nil {
		t.Fatal(err)
	}
	// Swap through the library: no watchdog is started.
	res, err := swapForTest(tg, 50*time.Millisecond)
	done()
	if err != nil || res.To != 2 {
		t.Fatalf("swap: %v %+v", err, res)
	}
	time.Sleep(100 * time.Millisecond)
	if s := status(t, g...); s.Pending == nil {
		t.Fatal("status should show the overdue confirmation")
	}
	if out, code := run(t, append(g, "confirm")...); code != 0 || !strings.Contains(out, "nothing to confirm") {
		t.Fatalf("confirm after the deadline: %s", out)
	}
	if v := liveVersion(t, g...); v != 1 {
		t.Fatalf("version %d live, want the revert to 1", v)
	}
}

func TestLockoutGuard(t *testing.T) {
	ns, g := newTarget(t)
	keep := []string{"--keep-access", testnet.PeerIP + ":50022 -> " + testnet.TargetIP + ":22"}
	ssh := writeFile(t, "ssh.nft", sshOnly)
	if out, code := run(t, append(append(g, "load", ssh), keep...)...); code != 0 {
		t.Fatalf("load of a ruleset that keeps ssh: %s", out)
	}
	run(t, append(g, "swap")...)
	web := writeFile(t, "web.nft", webOnly)
	out, code := run(t, append(append(g, "load", web), keep...)...)
	if code != 1 || !strings.Contains(out, "would cut your session") || !strings.Contains(out, "web.nft:5") {
		t.Fatalf("load that cuts ssh: exit %d, want 1 naming web.nft:5:\n%s", code, out)
	}
	if s := status(t, g...); s.Staging != nil {
		t.Fatal("refused load staged something")
	}
	// --force stages it; swap refuses it in turn.
	if out, code := run(t, append(append(g, "load", web, "--force"), keep...)...); code != 0 {
		t.Fatalf("load --force: %s", out)
	}
	out, code = run(t, append(append(g, "swap"), keep...)...)
	if code != 1 || !strings.Contains(out, "would cut") || liveVersion(t, g...) != 1 {
		t.Fatalf("swap that cuts ssh: exit %d\n%s", code, out)
	}
	if _, err := accessToKeep("", "not an address"); err == nil {
		t.Fatal("a malformed --keep-access must be refused")
	}
	t.Setenv("SSH_CONNECTION", "198.51.100.7 50022 192.0.2.10 22")
	if a, _ := accessToKeep("", ""); a == nil || a.src.String() != "198.51.100.7:50022" || a.dst.String() != "192.0.2.10:22" {
		t.Fatalf("SSH_CONNECTION on the host: %+v", a)
	}
	if a, _ := accessToKeep(ns, ""); a != nil {
		t.Fatal("SSH_CONNECTION names the host's session, not a namespace's")
	}
}

func TestDrift(t *testing.T) {
	_, g := twoVersionTarget(t)
	if s := status(t, g...); s.Drift {
		t.Fatalf("no drift expected yet: %v", s.DriftChanges)
	}
	// Elements of shared state sets changing is not drift: load a
	// version with a dynamic set first.
	cases := []struct {
		name, cmd, want string
	}{
		{"rule added to the live slot", "add rule inet filter fwslot_b_input tcp dport 9 accept", "production (version 1, slot b): chain inet filter input holds 4 rules, want 3"},
		{"rule added to the staged slot", "add rule inet filter fwslot_a_input tcp dport 9 accept", "staging (version 2, slot a): chain inet filter input holds 3 rules, want 2"},
		{"rule changed in the live slot", "replace rule inet filter fwslot_b_input handle 5 tcp dport 23 accept", "production (version 1, slot b): chain inet filter input: rule 1 changed"},
		{"chain deleted", "flush chain inet filter fwslot_a_input; delete chain inet filter fwslot_a_input", "chain inet filter input is missing"},
		{"rule added to a base chain", "add rule inet filter input tcp dport 9 accept", "instead of fwslot's dispatch"},
		{"chain added", "add chain inet filter extra", "chain extra was added"},
		{"base chain flushed", "flush chain inet filter input", "holds 0 rules instead of fwslot's dispatch"},
		{"base chain policy opened", "chain inet filter input { policy accept; }", "base chain input: policy accept, want drop"},
	}
	deletedBy := map[string]string{
		"chain added":                "chain extra, which no version declares",
		"rule added to a base chain": "base chain input holds 3 rules",
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ns, g := twoVersionTarget(t)
			testnet.Run(t, ns, "nft", c.cmd)
			s := status(t, g...)
			if !s.Drift || !strings.Contains(strings.Join(s.DriftChanges, "\n"), c.want) {
				t.Fatalf("drift %v, changes %v; want %q", s.Drift, s.DriftChanges, c.want)
			}
			out, code := run(t, append(g, "swap")...)
			if code != 1 || !strings.Contains(out, "drifted") {
				t.Fatalf("swap on drift: exit %d\n%s", code, out)
			}
			out, code = run(t, append(g, "swap", "--force")...)
			if code != 0 || !strings.Contains(out, "forced over drift: ") {
				t.Fatalf("swap --force: exit %d\n%s", code, out)
			}
			// What a forced swap deletes that fwslot did not write is
			// named.
			if want, ok := deletedBy[c.name]; ok && !strings.Contains(out, "deleted what fwslot did not write: table inet filter: "+want) {
				t.Fatalf("swap --force does not name %q:\n%s", want, out)
			}
		})
	}
	t.Run("shared set elements are not drift", func(t *testing.T) {
		ns, g := newTarget(t)
		body := "table inet filter {\n\tset block { type ipv4_addr; flags dynamic; }\n\tchain input { type filter hook input priority 0; ip saddr @block drop; }\n}\n"
		run(t, append(g, "load", writeFile(t, "b.nft", body))...)
		run(t, append(g, "swap")...)
		testnet.Run(t, ns, "nft", "add element inet filter block { 198.51.100.1 }")
		if s := status(t, g...); s.Drift {
			t.Fatalf("adding to a shared set is not drift: %v", s.DriftChanges)
		}
	})
}

// After a reboot the kernel is empty: restore brings back production and
// staging from history, and packets prove it.
func TestRestoreAfterReboot(t *testing.T) {
	testnet.RequireRoot(t)
	sb, err := sandbox.New("fwslot-rb-")
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	g := targetFlags(t, sb.Target)
	runSteps(t, g, twoSwaps(t, "--confirm", "1h")) // unconfirmed at "reboot"
	rebootTarget(t, sb, 22, 80)
	restoreVersion1(t, sb, g)
	if out, code := run(t, append(g, "restore")...); code != 1 || !strings.Contains(out, "already holds") {
		t.Fatalf("second restore: exit %d\n%s", code, out)
	}
}

func swapForTest(t *session.Target, confirm time.Duration) (*session.Result, error) {
	return t.Swap(context.Background(), session.SwapOptions{Confirm: confirm})
}

// writableTarget opens the history at db for writing, as a command's
// session does, for tests that call the session package directly.
func writableTarget(netns, db string) (*session.Target, func(), error) {
	s, err := history.Open(db, history.Options{Timeout: time.Second})
	if err != nil {
		return nil, nil, err
	}
	return &session.Target{NetNS: netns, Store: s}, func() { s.Close() }, nil
}
