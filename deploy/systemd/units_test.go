// Package systemd holds fwslot's systemd units; its test checks them with
// systemd-analyze.
package systemd

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// installPath is where README installs fwslot and where every unit runs it.
const installPath = "/usr/local/sbin/fwslot"

// TestUnits: every unit runs fwslot from installPath, passes
// `systemd-analyze verify`, and its offline security exposure stays below
// its threshold (systemd's scale: 0 safest, 10 unprotected; under 4.0 is
// "OK"). Without systemd-analyze the test skips, saying so.
func TestUnits(t *testing.T) {
	units := []struct {
		file      string
		threshold float64
	}{
		{"fwslot-restore.service", 3.0},
		{"fwslot-watch@.service", 3.5},
		{"fwslot-agent.service", 3.5},
	}
	files, err := filepath.Glob("*.service")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(units) {
		t.Fatalf("units here %v; the test checks %d: add the new one", files, len(units))
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(readme), "/usr/local/bin/fwslot") {
		t.Errorf("README.md names /usr/local/bin/fwslot; fwslot installs to %s", installPath)
	}
	for _, u := range units {
		data, err := os.ReadFile(u.file)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(line, "ExecStart=") && !strings.HasPrefix(line, "ExecStart="+installPath+" ") {
				t.Errorf("%s: %q does not run %s", u.file, line, installPath)
			}
		}
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (apt-get install systemd); the units' path checks ran, verify and security did not")
	}
	// verify wants the ExecStart binary to exist: point the units at this
	// test's own executable, in a copy.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	exposure := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`)
	for _, u := range units {
		t.Run(u.file, func(t *testing.T) {
			data, err := os.ReadFile(u.file)
			if err != nil {
				t.Fatal(err)
			}
			copyPath := filepath.Join(dir, u.file)
			if err := os.WriteFile(copyPath, []byte(strings.ReplaceAll(string(data), installPath, self)), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(analyze, "verify", copyPath).CombinedOutput()
			if err != nil || len(strings.TrimSpace(string(out))) > 0 {
				t.Errorf("systemd-analyze verify %s: %v\n%s", u.file, err, out)
			}
			out, err = exec.Command(analyze, "security", "--offline=true", "--no-pager", copyPath).CombinedOutput()
			if err != nil {
				t.Fatalf("systemd-analyze security %s: %v\n%s", u.file, err, out)
			}
			m := exposure.FindSubmatch(out)
			if m == nil {
				t.Fatalf("no exposure level in:\n%s", out)
			}
			score, err := strconv.ParseFloat(string(m[1]), 64)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: exposure %.1f (threshold %.1f)", u.file, score, u.threshold)
			if score >= u.threshold {
				t.Errorf("%s: exposure %.1f, want below %.1f:\n%s", u.file, score, u.threshold, out)
			}
		})
	}
}
