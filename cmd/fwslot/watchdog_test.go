package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/kerneltest"
	"github.com/fwslot/fwslot/internal/sandbox"
	"github.com/fwslot/fwslot/internal/slots"
	"github.com/fwslot/fwslot/internal/testnet"
)

// kernelVersion reads the live version from the kernel's tags alone,
// without history.
func kernelVersion(t *testing.T, ns string) uint64 {
	t.Helper()
	_, st := kerneltest.State(t, ns)
	s, err := slots.Describe(st)
	if err != nil {
		t.Fatal(err)
	}
	if s.Production == nil {
		return 0
	}
	return s.Production.Version
}

// waitReverted waits until history records activation seq as reverted
// and returns the activation after it (the revert).
func waitReverted(t *testing.T, db, key string, seq uint64) history.Activation {
	t.Helper()
	for wait := time.Now().Add(30 * time.Second); activation(t, db, key, seq).Result != "reverted"; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(wait) {
			t.Fatalf("history does not record activation %d as reverted: %+v", seq, activation(t, db, key, seq))
		}
	}
	return activation(t, db, key, seq+1)
}

// checkVersion1 proves with packets that version 1 (ssh only) runs.
func checkVersion1(t *testing.T, sb *sandbox.Sandbox) {
	t.Helper()
	if !sb.Connect(22, time.Second) || sb.Connect(80, 300*time.Millisecond) {
		t.Fatal("version 1 should let ssh in and keep the web out")
	}
}

// A relative --db or FWSLOT_DB reaches the watchdog, which runs in /, as
// an absolute path: it finds its history, reverts and records.
func TestWatchdogWithRelativeHistoryPath(t *testing.T) {
	testnet.RequireRoot(t)
	bin := fwslotBinary(t)
	cases := []struct {
		name string
		db   func(dir string) ([]string, []string) // flags, environment
	}{
		{"--db relative", func(string) ([]string, []string) { return []string{"--db", "h.db"}, nil }},
		{"FWSLOT_DB relative", func(string) ([]string, []string) { return nil, []string{"FWSLOT_DB=sub/h.db"} }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sb := listeningSandbox(t, "fwslot-wr-")
			defer sb.Close()
			dir := t.TempDir()
			flags, env := c.db(dir)
			db := filepath.Join(dir, "h.db")
			if env != nil {
				db = filepath.Join(dir, "sub", "h.db")
			}
			for _, step := range twoSwaps(t, "--confirm", "2s") {
				cmd := exec.Command(bin, append(append([]string{"--netns", sb.Target}, flags...), step...)...)
				cmd.Dir, cmd.Env = dir, append(os.Environ(), env...)
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("%v: %v\n%s", step, err, out)
				}
			}
			revert := waitReverted(t, db, "netns:"+sb.Target, 2)
			if revert.How != "revert" || revert.From != 2 || revert.To != 1 {
				t.Fatalf("the revert is not recorded: %+v", revert)
			}
			checkVersion1(t, sb)
		})
	}
}

// A watchdog that cannot find its history says so and reverts from the
// kernel's own tags anyway; the next command with the right history
// records the revert.
func TestWatchdogWithoutHistoryRevertsFromKernelTags(t *testing.T) {
	testnet.RequireRoot(t)
	sb := listeningSandbox(t, "fwslot-wm-")
	defer sb.Close()
	db := filepath.Join(t.TempDir(), "h.db")
	g := []string{"--netns", sb.Target, "--db", db}
	runSteps(t, g, [][]string{{"load", writeFile(t, "ssh.nft", sshOnly)}, {"swap"}, {"load", writeFile(t, "web.nft", webOnly)}})
	tg, done, err := writableTarget(sb.Target, db)
	if err != nil {
		t.Fatal(err)
	}
	res, err := swapForTest(tg, 2*time.Second) // no watchdog started
	done()
	if err != nil {
		t.Fatal(err)
	}
	id := historyID(t, db)
	out, code := run(t, "--netns", sb.Target, "--db", "no-such-dir/h.db", "__watchdog",
		"--seq", strconv.FormatUint(res.Seq, 10), "--from", "1", "--to", "2", "--owner", id,
		"--deadline", res.Deadline.Format(time.RFC3339Nano))
	if code != 1 || !strings.Contains(out, "cannot find history") || !strings.Contains(out, "is relative") || !strings.Contains(out, "reverted in the kernel (flipped back): version 1 is live again") {
		t.Fatalf("watchdog without its history: exit %d, want 1 saying so and reverting\n%s", code, out)
	}
	if v := kernelVersion(t, sb.Target); v != 1 {
		t.Fatalf("the kernel runs version %d after the watchdog, want 1", v)
	}
	checkVersion1(t, sb)
	out, code = run(t, append(g, "confirm")...)
	if code != 0 || !strings.Contains(out, "recorded the revert of unconfirmed version 2 to 1") || !strings.Contains(out, "nothing to confirm") {
		t.Fatalf("next command: exit %d\n%s", code, out)
	}
	if a := activation(t, db, "netns:"+sb.Target, res.Seq); a.Result != "reverted" {
		t.Fatalf("the swap is not recorded as reverted: %+v", a)
	}
	if s := status(t, g...); s.Production == nil || s.Production.Version != 1 || len(s.Warnings) != 0 || s.Pending != nil {
		t.Fatalf("status after recording: %+v", s)
	}
}

// A command holding the history lock across the deadline does not stop
// the revert: the kernel goes back on time, also when a load replaced the
// previous version in the other slot meanwhile, and history records the
// revert once the lock is free.
func TestWatchdogRevertsWhileHistoryIsLocked(t *testing.T) {
	testnet.RequireRoot(t)
	cases := []struct {
		name string
		// during runs while the swap is pending, before the lock is taken.
		during [][]string
	}{
		{"previous version in the other slot", nil},
		{"a load replaced the previous version in the other slot", [][]string{{"load", writeFile(t, "v3.nft", strings.Replace(webOnly, "dport 80", "dport 443", 1))}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sb := listeningSandbox(t, "fwslot-wl-")
			defer sb.Close()
			db := filepath.Join(t.TempDir(), "h.db")
			key := "netns:" + sb.Target
			g := []string{"--netns", sb.Target, "--db", db}
			runSteps(t, g, append(twoSwaps(t, "--confirm", "8s"), c.during...))
			// A long command: it holds the lock from before the
			// deadline until well after it.
			held, err := history.Open(db, history.Options{Timeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer held.Close()
			p, ok, err := held.Pending(key)
			if err != nil || !ok || time.Now().After(p.Deadline) {
				t.Fatalf("the swap should still be pending when the lock is taken: %+v %v %v", p, ok, err)
			}
			for wait := time.Now().Add(30 * time.Second); kernelVersion(t, sb.Target) != 1; time.Sleep(100 * time.Millisecond) {
				if time.Now().After(wait) {
					t.Fatal("the kernel was not reverted while history was locked")
				}
			}
			checkVersion1(t, sb)
			if p, ok, _ := held.Pending(key); !ok || p.Seq != 2 {
				t.Fatalf("nobody could record the revert yet, but history changed: %+v", p)
			}
			if err := held.Close(); err != nil {
				t.Fatal(err)
			}
			revert := waitReverted(t, db, key, 2)
			if revert.How != "revert" || revert.From != 2 || revert.To != 1 || !strings.Contains(revert.Note, "busy") {
				t.Fatalf("the revert is not recorded as made while history was busy: %+v", revert)
			}
			if s := status(t, g...); s.Production == nil || s.Production.Version != 1 || len(s.Warnings) != 0 || s.Pending != nil || s.Drift {
				t.Fatalf("status after the revert: %+v", s)
			}
			checkVersion1(t, sb)
			log, err := os.ReadFile(watchdogLog(db))
			if err != nil || !strings.Contains(string(log), "busy") || !strings.Contains(string(log), "reverted in the kernel") {
				t.Fatalf("the watchdog log does not tell the story: %v\n%s", err, log)
			}
		})
	}
}
