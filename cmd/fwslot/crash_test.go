package main

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/gen"
	"github.com/fwslot/fwslot/internal/kerneltest"
	"github.com/fwslot/fwslot/internal/nfnl"
	"github.com/fwslot/fwslot/internal/slots"
	"github.com/fwslot/fwslot/internal/testnet"
	"github.com/fwslot/fwslot/session"
)

// TestCrashTrials kills fwslot with SIGKILL at random moments of load,
// swap and rollback, and checks after every kill that production is
// exactly one complete version (every base chain dispatches to one slot,
// whose content equals its version in history rule by rule), that the
// history file opens, and that the next command reconciles kernel and
// history. FWSLOT_CRASH_TRIALS sets the number of trials (default 100).
func TestCrashTrials(t *testing.T) {
	if testing.Short() {
		t.Skip("crash trials skipped in -short mode")
	}
	ns, _ := testnet.Pair(t)
	trials := 100
	if n, err := strconv.Atoi(os.Getenv("FWSLOT_CRASH_TRIALS")); err == nil && n > 0 {
		trials = n
	}
	bin := fwslotBinary(t)
	db := filepath.Join(t.TempDir(), "h.db")
	g := []string{"--netns", ns, "--db", db, "--wait", "30s"}
	var files []string
	for i := 0; i < 4; i++ {
		body := gen.Ruleset(gen.Options{Rules: 3000, Seed: int64(i + 1)})
		files = append(files, writeFile(t, fmt.Sprintf("v%d.nft", i), body))
	}
	runSteps(t, g, [][]string{{"load", files[0]}, {"swap"}, {"load", files[1]}})
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewSource(seed))
	t.Logf("seed %d, %d trials", seed, trials)
	killed, finished, repairs := 0, 0, 0
	for i := 0; i < trials; i++ {
		var args []string
		switch rng.Intn(4) {
		case 0, 1:
			args = []string{"load", files[rng.Intn(len(files))]}
		case 2:
			args = []string{"swap", "--force"}
		default:
			args = []string{"rollback"}
		}
		cmd := exec.Command(bin, append(append([]string{}, g...), args...)...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.Intn(40)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		err := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			killed++
		} else if err == nil {
			finished++
		}

		// The history file always opens.
		s, err := history.Open(db, history.Options{ReadOnly: true, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatalf("trial %d (%v): history does not open: %v", i, args, err)
		}
		s.Close()
		checkOneCompleteVersion(t, i, args, ns, db)

		// The next command reconciles and says so; then all agree.
		out, code := run(t, append(g, "confirm")...)
		if code != 0 {
			t.Fatalf("trial %d (%v): next command failed: %s", i, args, out)
		}
		if strings.Contains(out, "repaired:") {
			repairs++
		}
		st := status(t, g[:4]...)
		if len(st.Warnings) != 0 || st.Drift {
			t.Fatalf("trial %d (%v): after reconciling, kernel and history disagree: %v %v", i, args, st.Warnings, st.DriftChanges)
		}
	}
	t.Logf("%d trials: %d killed mid-command, %d finished first, %d needed a repair by the next command", trials, killed, finished, repairs)
}

// checkOneCompleteVersion proves that the kernel runs exactly one complete
// version: all base chains dispatch to the live slot, and both slots equal
// their versions in history rule by rule.
func checkOneCompleteVersion(t *testing.T, i int, args []string, ns, db string) {
	t.Helper()
	s, err := history.Open(db, history.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tg := &session.Target{NetNS: ns, Store: s}
	c, err := nfnl.Dial(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, err := slots.ReadState(c)
	if err != nil {
		t.Fatalf("trial %d (%v): read kernel: %v", i, args, err)
	}
	status, err := slots.Describe(st)
	if err != nil {
		t.Fatalf("trial %d (%v): %v", i, args, err)
	}
	if status.Production == nil {
		t.Fatalf("trial %d (%v): nothing live", i, args)
	}
	for _, ts := range st.Managed() {
		for _, bc := range ts.Base {
			if bc.Dispatch == nil || bc.Dispatch.Slot != status.Active() || bc.Dispatch.Version != status.Production.Version {
				t.Fatalf("trial %d (%v): base chain %s does not dispatch to version %d in slot %s: %+v", i, args, bc.Name, status.Production.Version, status.Active(), bc.Dispatch)
			}
		}
	}
	sess, err := session.Open(context.Background(), tg, session.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("trial %d (%v): %v", i, args, err)
	}
	defer sess.Close()
	d, err := sess.Drift(true)
	if err != nil {
		t.Fatalf("trial %d (%v): compare with history: %v", i, args, err)
	}
	if d.Drift {
		t.Fatalf("trial %d (%v): slots differ from their versions: %v", i, args, d.Changes)
	}
}

// A swap stopped after the kernel transaction but before history recorded
// it is repaired by the next command, which says so.
func TestReconcileAfterInterruptedSwap(t *testing.T) {
	ns, g := twoVersionTarget(t)
	// The kernel flips to version 2; history never hears of it.
	c, st := kerneltest.State(t, ns)
	var b nfnl.Batch
	if err := slots.Flip(&b, st, st.Managed()[0].Active.Other(), nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Commit(&b); err != nil {
		t.Fatal(err)
	}
	if s := status(t, g...); len(s.Warnings) == 0 || s.Production.Version != 2 {
		t.Fatalf("status should warn that history is behind the kernel: %+v", s)
	}
	out, code := run(t, append(g, "confirm")...)
	if code != 0 || !strings.Contains(out, "repaired: recorded version 2 as live") {
		t.Fatalf("next command: exit %d\n%s", code, out)
	}
	if s := status(t, g...); len(s.Warnings) != 0 {
		t.Fatalf("warnings after the repair: %v", s.Warnings)
	}
	h := openHistory(t, g)
	last, _, _ := h.LastActivation("netns:" + ns)
	if last.How != "reconcile" || last.To != 2 || last.From != 1 {
		t.Fatalf("repair activation: %+v", last)
	}
}
