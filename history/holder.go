package history

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// holder describes the process that holds a history file.
type holder struct {
	PID   int
	Cmd   string
	Since time.Time
}

// maxCmdLen bounds the command line written to the holder file.
const maxCmdLen = 120

// currentCommand returns this process's command line for the holder file:
// the program's base name and its arguments, on one line.
func currentCommand() string {
	args := append([]string{filepath.Base(os.Args[0])}, os.Args[1:]...)
	cmd := strings.Join(strings.Fields(strings.Join(args, " ")), " ")
	if len(cmd) > maxCmdLen {
		cmd = cmd[:maxCmdLen] + "..."
	}
	return cmd
}

// writeHolder writes "pid=N cmd=... since=RFC3339" to name with mode 0600,
// replacing it atomically. The temporary file is created with O_EXCL and
// O_NOFOLLOW, so a symlink planted at its name cannot redirect the write
// (the rename then replaces a symlink at name itself, never its target).
func writeHolder(name string) error {
	line := fmt.Sprintf("pid=%d cmd=%s since=%s\n", os.Getpid(), currentCommand(), time.Now().Format(time.RFC3339))
	tmp := fmt.Sprintf("%s.%d.tmp", name, os.Getpid())
	f, err := createExclusive(tmp)
	if err != nil {
		return fmt.Errorf("write holder file: %w", err)
	}
	_, werr := f.WriteString(line)
	if err := errors.Join(werr, f.Close()); err != nil {
		_ = os.Remove(tmp) // the write error is the one to report
		return fmt.Errorf("write holder file: %w", err)
	}
	if err := os.Rename(tmp, name); err != nil {
		_ = os.Remove(tmp) // the rename error is the one to report
		return fmt.Errorf("write holder file: %w", err)
	}
	return nil
}

// createExclusive creates name (mode 0600) where nothing exists, never
// following a symlink. A regular file left there by a dead process with
// our pid is removed first; anything else (a symlink, a directory) is
// refused, since only someone who can write the history directory could
// have put it there.
func createExclusive(name string) (*os.File, error) {
	const flags = os.O_WRONLY | os.O_CREATE | os.O_EXCL | syscall.O_NOFOLLOW | syscall.O_CLOEXEC
	f, err := os.OpenFile(name, flags, 0o600)
	if !errors.Is(err, os.ErrExist) {
		return f, err
	}
	fi, lerr := os.Lstat(name)
	if lerr != nil {
		return nil, errors.Join(err, lerr)
	}
	if !fi.Mode().IsRegular() {
		return nil, &kindError{kind: ErrInsecure, msg: fmt.Sprintf("%s exists and is not a regular file (%v): something other than fwslot wrote in the history directory; remove it and check who can write there", name, fi.Mode().Type())}
	}
	if err := os.Remove(name); err != nil {
		return nil, err
	}
	return os.OpenFile(name, flags, 0o600)
}

// readHolder reads a holder file without following a symlink, and at
// most a few KB of it.
func readHolder(name string) ([]byte, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 4096))
}

// parseHolder parses the content of a holder file.
func parseHolder(data string) (holder, error) {
	line := strings.TrimSpace(data)
	c := strings.Index(line, " cmd=")
	s := strings.LastIndex(line, " since=")
	if !strings.HasPrefix(line, "pid=") || c < 0 || s < c {
		return holder{}, fmt.Errorf("malformed holder line %q", line)
	}
	pid, err := strconv.Atoi(line[len("pid="):c])
	if err != nil {
		return holder{}, fmt.Errorf("malformed holder pid in %q: %w", line, err)
	}
	since, err := time.Parse(time.RFC3339, line[s+len(" since="):])
	if err != nil {
		return holder{}, fmt.Errorf("malformed holder time in %q: %w", line, err)
	}
	return holder{PID: pid, Cmd: line[c+len(" cmd=") : s], Since: since}, nil
}

// busyError builds the error of an Open that timed out, naming the holder
// when the holder file can be read.
func busyError(path string) error {
	who := "another process (its holder file is missing: a read-only reader, or an older fwslot)"
	data, err := readHolder(path + ".holder")
	switch {
	case err == nil:
		if h, perr := parseHolder(string(data)); perr == nil {
			who = fmt.Sprintf("pid %d (%s) since %s", h.PID, h.Cmd, formatSince(h.Since, time.Now()))
		} else {
			who = fmt.Sprintf("another process (%v)", perr)
		}
	case !errors.Is(err, os.ErrNotExist):
		who = fmt.Sprintf("another process (%v)", err)
	}
	return &kindError{kind: ErrBusy, msg: fmt.Sprintf("history %s is busy: held by %s; try again", path, who)}
}

// formatSince prints t as a clock time when it is today, else with its date.
func formatSince(t, now time.Time) string {
	t = t.In(now.Location())
	if y, m, d := t.Date(); y == now.Year() && m == now.Month() && d == now.Day() {
		return t.Format("15:04:05")
	}
	return t.Format("2006-01-02 15:04:05")
}
