package main

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/nsutil"
	"github.com/fwslot/fwslot/internal/sandbox"
	"github.com/fwslot/fwslot/internal/testnet"
)

// rebootTarget stands for a reboot of the target: its namespace and
// everything in it is gone, and a fresh one with the same name and wiring
// comes up, with listeners on ports.
func rebootTarget(t *testing.T, sb *sandbox.Sandbox, ports ...int) {
	t.Helper()
	if err := nsutil.Delete(sb.Target); err != nil {
		t.Fatal(err)
	}
	if err := nsutil.CreateNamed(sb.Target); err != nil {
		t.Fatal(err)
	}
	for _, c := range [][]string{
		{sb.Target, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0r", "netns", sb.Client},
		{sb.Client, "ip", "link", "del", "eth0"},
		{sb.Client, "ip", "link", "set", "eth0r", "name", "eth0"},
		{sb.Target, "ip", "addr", "add", sandbox.TargetIP + "/24", "dev", "eth0"},
		{sb.Client, "ip", "addr", "add", sandbox.ClientIP + "/24", "dev", "eth0"},
		{sb.Target, "ip", "link", "set", "eth0", "up"},
		{sb.Client, "ip", "link", "set", "eth0", "up"},
	} {
		if out, err := sandbox.Exec(c[0], c[1:]...); err != nil && !strings.Contains(out, "Cannot find device") {
			t.Fatalf("%v: %v %s", c, err, out)
		}
	}
	if err := sb.Listen(ports...); err != nil {
		t.Fatal(err)
	}
	// The new veth pair needs a moment before it carries packets.
	for wait := time.Now().Add(5 * time.Second); !sb.Connect(ports[len(ports)-1], 200*time.Millisecond); {
		if time.Now().After(wait) {
			t.Fatal("an empty kernel should let everything in")
		}
	}
}

// restoreVersion1 runs restore on a target whose kernel lost version 1
// (ssh.nft, live) and version 2 (web.nft) and checks that it brings back
// version 1 live, with packets (ssh in, the web out), and version 2
// staged, with nothing pending and no warnings.
func restoreVersion1(t *testing.T, sb *sandbox.Sandbox, g []string) {
	t.Helper()
	out, code := run(t, append(slices.Clone(g), "restore")...)
	if code != 0 || !strings.Contains(out, "version 1 is live") {
		t.Fatalf("restore: exit %d, want version 1 live\n%s", code, out)
	}
	if !sb.Connect(22, time.Second) || sb.Connect(80, 300*time.Millisecond) {
		t.Fatal("restored version 1 should let ssh in and keep the web out")
	}
	s := status(t, g...)
	if s.Production == nil || s.Production.Version != 1 || s.Staging == nil || s.Staging.Version != 2 || s.Pending != nil || len(s.Warnings) != 0 {
		t.Fatalf("after restore: %+v", s)
	}
}

// flushRuleset wipes every table of the target, as `nft flush ruleset`
// (or nftables.service starting over) does behind fwslot's back.
func flushRuleset(t *testing.T, sb *sandbox.Sandbox, _ ...int) {
	t.Helper()
	if out, err := sandbox.Exec(sb.Target, "nft", "flush", "ruleset"); err != nil {
		t.Fatalf("nft flush ruleset: %v %s", err, out)
	}
}

// activation returns activation seq of target from the history file,
// opening it only for the read (a held lock would stop the watchdog).
func activation(t *testing.T, db, target string, seq uint64) history.Activation {
	t.Helper()
	s, err := history.Open(db, history.Options{ReadOnly: true, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	acts, err := s.Activations(target)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range acts {
		if a.Seq == seq {
			return a
		}
	}
	t.Fatalf("history has no activation %d: %+v", seq, acts)
	return history.Activation{}
}

// An unconfirmed swap whose kernel is wiped before the deadline (a reboot
// or `nft flush ruleset`) ends as a revert: neither the watchdog nor a
// confirm given after the wipe makes it the version restore brings back,
// and restore rebuilds the last confirmed production, proven with packets.
func TestUnconfirmedSwapNeverComesBack(t *testing.T) {
	testnet.RequireRoot(t)
	cases := []struct {
		name    string
		wipe    func(*testing.T, *sandbox.Sandbox, ...int)
		confirm string
		// settle is how the pending swap meets its end before restore:
		// "watchdog" waits for its deadline, "confirm" tries to confirm.
		settle string
	}{
		{"reboot, watchdog at the deadline", rebootTarget, "6s", "watchdog"},
		{"flush ruleset, watchdog at the deadline", flushRuleset, "6s", "watchdog"},
		{"reboot, confirm after the wipe", rebootTarget, "1h", "confirm"},
		{"flush ruleset, confirm after the wipe", flushRuleset, "1h", "confirm"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sb := listeningSandbox(t, "fwslot-uc-")
			defer sb.Close()
			db := filepath.Join(t.TempDir(), "h.db")
			g := []string{"--netns", sb.Target, "--db", db}
			key := "netns:" + sb.Target
			runSteps(t, g, twoSwaps(t, "--confirm", c.confirm))
			if !sb.Connect(80, time.Second) || sb.Connect(22, 300*time.Millisecond) {
				t.Fatal("version 2 should be live before the wipe")
			}
			const swapSeq = 2 // activation 1 made version 1 live
			c.wipe(t, sb, 22, 80)
			switch c.settle {
			case "watchdog":
				for wait := time.Now().Add(30 * time.Second); activation(t, db, key, swapSeq).Result == "pending"; time.Sleep(200 * time.Millisecond) {
					if time.Now().After(wait) {
						t.Fatal("the watchdog did not settle the swap")
					}
				}
				if a := activation(t, db, key, swapSeq); a.Result != "reverted" || !strings.Contains(a.Note, "restore") {
					t.Fatalf("the wiped unconfirmed swap must end reverted, naming restore: %+v", a)
				}
				if out, code := run(t, append(g, "confirm")...); code != 0 || !strings.Contains(out, "nothing to confirm") {
					t.Fatalf("confirm after the revert: exit %d\n%s", code, out)
				}
			case "confirm":
				out, code := run(t, append(g, "confirm")...)
				if code != 1 || !strings.Contains(out, "fwslot restore") || !strings.Contains(out, "version 2 waits for confirmation") {
					t.Fatalf("confirm of a version the kernel lost: exit %d, want 1 naming restore\n%s", code, out)
				}
				if a := activation(t, db, key, swapSeq); a.Result != "pending" {
					t.Fatalf("a refused confirm changed the swap: %+v", a)
				}
			}
			restoreVersion1(t, sb, g)
			if a := activation(t, db, key, swapSeq); a.Result != "reverted" {
				t.Fatalf("the unconfirmed swap is not recorded as reverted: %+v", a)
			}
		})
	}
}
