package progress

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestEnabled is the decision table: progress only on a terminal, never
// with --json.
func TestEnabled(t *testing.T) {
	for _, tc := range []struct {
		json, term, want bool
	}{
		{false, true, true},
		{true, true, false},
		{false, false, false},
		{true, false, false},
	} {
		if got := Enabled(tc.json, tc.term); got != tc.want {
			t.Errorf("Enabled(json=%v, terminal=%v) = %v, want %v", tc.json, tc.term, got, tc.want)
		}
		r := New(&bytes.Buffer{}, Enabled(tc.json, tc.term))
		if (r != nil) != tc.want {
			t.Errorf("New for json=%v terminal=%v: reporter %v, want %v", tc.json, tc.term, r != nil, tc.want)
		}
	}
}

// TestLineShowsAfterASecond drives the redraw by hand: nothing before
// After, then the phase and percentage, and Stop clears the line.
func TestLineShowsAfterASecond(t *testing.T) {
	var buf bytes.Buffer
	r := New(&buf, true)
	r.Set("compile: nft -f (private netns)", 30)
	r.tick(r.start.Add(After - time.Millisecond))
	if buf.Len() != 0 {
		t.Fatalf("drew before a second: %q", buf.String())
	}
	r.Set("commit (one transaction)", 20) // never goes back
	r.tick(r.start.Add(1500 * time.Millisecond))
	want := "\r\x1b[Kfwslot: commit (one transaction)  30% (1.5 s)"
	if buf.String() != want {
		t.Fatalf("line %q, want %q", buf.String(), want)
	}
	r.Stop()
	if !strings.HasSuffix(buf.String(), "\r\x1b[K") {
		t.Fatalf("Stop left the line: %q", buf.String())
	}
}

// TestNilReporter: a disabled reporter is nil and every method is a no-op.
func TestNilReporter(t *testing.T) {
	var r *Reporter
	r.Start()
	r.Set("x", 10)
	r.Stop()
}

// TestTerminalDecisionWithPty runs a helper process under script(1),
// which gives it a pseudo-terminal, and without it: the same check
// (stderr's termios) says terminal only under the pty.
func TestTerminalDecisionWithPty(t *testing.T) {
	if os.Getenv("FWSLOT_PROGRESS_HELPER") == "1" {
		if isTerminal(os.Stderr) {
			os.Stdout.WriteString("terminal\n")
		} else {
			os.Stdout.WriteString("not a terminal\n")
		}
		os.Exit(0)
	}
	script, err := exec.LookPath("script")
	if err != nil {
		t.Fatal("needs script(1) from util-linux for a pseudo-terminal")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "FWSLOT_PROGRESS_HELPER=1")
	cmd := exec.Command(script, "-qec", exe+" -test.run=^TestTerminalDecisionWithPty$", "/dev/null")
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("script: %v: %s", err, out)
	}
	if !strings.Contains(string(out), "terminal") || strings.Contains(string(out), "not a terminal") {
		t.Fatalf("under a pty: %q", out)
	}
	cmd = exec.Command(exe, "-test.run=^TestTerminalDecisionWithPty$")
	cmd.Env = env
	cmd.Stderr = &bytes.Buffer{}
	out, err = cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "not a terminal") {
		t.Fatalf("with a pipe: %q", out)
	}
}
