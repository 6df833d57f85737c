package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestSharedHistoryDirectoryRefused: with the history directory opened to
// everyone (0777), every command refuses (exit 2) naming the directory and
// what to do, and neither the kernel nor the history file changes.
func TestSharedHistoryDirectoryRefused(t *testing.T) {
	ns, g := twoVersionTarget(t)
	db := dbOf(g)
	before := takeSnapshot(t, ns, g, db)
	dir := filepath.Dir(db)
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	want := "history directory " + dir + " is writable by group or others (mode drwxrwxrwx)"
	for _, a := range [][]string{{"status"}, {"history"}, {"load", writeFile(t, "r.nft", good)}, {"swap"}, {"rollback"}, {"prune"}} {
		t.Run(a[0], func(t *testing.T) {
			out, code := run(t, append(slices.Clone(g), a...)...)
			if code != 2 || !strings.Contains(out, want) || !strings.Contains(out, "chmod 0700 "+dir) {
				t.Errorf("exit %d, want 2 and %q:\n%s", code, want, out)
			}
		})
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	after := takeSnapshot(t, ns, g, db)
	if d := after.diff(before); d != "" {
		t.Error(d)
	}
	if !bytes.Equal(after.history, before.history) {
		t.Error("history changed")
	}
}
