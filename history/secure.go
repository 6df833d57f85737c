package history

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// ErrInsecure is returned (wrapped) by Open when the history file or its
// directory can be written by users other than its owner, or is owned by
// another user: whoever can write there can replace the history (which
// restore and rollback run) or plant symlinks where fwslot writes.
var ErrInsecure = errors.New("history location is not private")

// checkPrivate refuses an existing history directory or file that group
// or others can write, or that belongs to a user other than root and the
// caller. Open creates both private (0700 and 0600); this catches ones
// made by hand or loosened later.
func checkPrivate(path string) error {
	for _, p := range []struct{ path, what, fix string }{
		{filepath.Dir(path), "history directory", "chmod 0700"},
		{path, "history file", "chmod 0600"},
	} {
		fi, err := os.Stat(p.path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("open history %s: %w", path, err)
		}
		if fi.Mode().Perm()&0o022 != 0 {
			return &kindError{kind: ErrInsecure, msg: fmt.Sprintf("%s %s is writable by group or others (mode %v): anyone who can write there can change the history that restore and rollback run; %s %s, or use --db in a directory only root can write", p.what, p.path, fi.Mode(), p.fix, p.path)}
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && int(st.Uid) != os.Geteuid() {
			return &kindError{kind: ErrInsecure, msg: fmt.Sprintf("%s %s belongs to uid %d, not to root or to this user: its owner can change the history that restore and rollback run; chown it, or use --db elsewhere", p.what, p.path, st.Uid)}
		}
	}
	return nil
}
