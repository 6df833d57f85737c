package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/testnet"
)

// Twenty fwslot commands at once on one target serialize on the history
// lock; afterwards history and kernel agree.
func TestConcurrentCommands(t *testing.T) {
	ns, g := newTarget(t)
	g = append(g, "--wait", "60s")
	bin := fwslotBinary(t)
	var wg sync.WaitGroup
	outs := make([]string, 20)
	codes := make([]int, 20)
	for i := 0; i < 20; i++ {
		args := append([]string{}, g...)
		if i%2 == 0 {
			args = append(args, "load", writeFile(t, fmt.Sprintf("v%d.nft", i), strings.Replace(sshOnly, "dport 22", fmt.Sprintf("dport { 22, %d }", 1000+i), 1)))
		} else {
			args = append(args, "swap")
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			out, err := exec.Command(bin, args...).CombinedOutput()
			outs[i] = string(out)
			if ee, ok := err.(*exec.ExitError); ok {
				codes[i] = ee.ExitCode()
			}
		}(i)
	}
	wg.Wait()
	loads := 0
	for i := range outs {
		switch {
		case i%2 == 0 && codes[i] != 0:
			t.Errorf("load %d failed: %s", i, outs[i])
		case i%2 == 0:
			loads++
		case codes[i] != 0 && !strings.Contains(outs[i], "nothing is staged"):
			t.Errorf("swap %d failed: %s", i, outs[i])
		}
	}
	s := status(t, g[:4]...)
	if len(s.Warnings) != 0 || s.Drift {
		t.Fatalf("history and kernel disagree after concurrent commands: %v %v", s.Warnings, s.DriftChanges)
	}
	h := openHistory(t, g)
	vs, _ := h.Versions("netns:" + ns)
	if len(vs) != loads {
		t.Fatalf("history holds %d versions after %d loads", len(vs), loads)
	}
	if last, ok, _ := h.LastActivation("netns:" + ns); ok && (s.Production == nil || last.To != s.Production.Version) {
		t.Fatalf("last activation %d, kernel runs %+v", last.To, s.Production)
	}
}

func TestHistoryBusyNamesTheHolder(t *testing.T) {
	ns, _ := testnet.Pair(t)
	db := filepath.Join(t.TempDir(), "h.db")
	s, err := history.Open(db, history.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, code := run(t, "--netns", ns, "--db", db, "--wait", "200ms", "swap")
	if code != 1 || !strings.Contains(out, "busy") || !strings.Contains(out, fmt.Sprintf("pid %d", os.Getpid())) {
		t.Fatalf("want a busy error naming pid %d: exit %d\n%s", os.Getpid(), code, out)
	}
}
