package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// TestMain lets the test binary act as fwslot when a test spawns it as
// the confirm watchdog (os.Executable is the test binary then).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "__watchdog" {
		main()
		return
	}
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
	buildDir  string
)

// fwslotBinary builds the real fwslot binary once per test run, in a
// directory every user can read.
func fwslotBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "fwslot-bin-")
		if buildErr != nil {
			return
		}
		if buildErr = os.Chmod(buildDir, 0o755); buildErr != nil {
			return
		}
		buildPath = filepath.Join(buildDir, "fwslot")
		var out []byte
		out, buildErr = exec.Command("go", "build", "-o", buildPath, ".").CombinedOutput()
		if buildErr != nil {
			buildErr = &buildFailure{string(out), buildErr}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

type buildFailure struct {
	out string
	err error
}

func (b *buildFailure) Error() string { return "build fwslot: " + b.err.Error() + "\n" + b.out }
