package history

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
// replacing it atomically.
func writeHolder(name string) error {
	line := fmt.Sprintf("pid=%d cmd=%s since=%s\n", os.Getpid(), currentCommand(), time.Now().Format(time.RFC3339))
	tmp := fmt.Sprintf("%s.%d.tmp", name, os.Getpid())
	if err := os.WriteFile(tmp, []byte(line), 0o600); err != nil {
		return fmt.Errorf("write holder file: %w", err)
	}
	if err := os.Rename(tmp, name); err != nil {
		_ = os.Remove(tmp) // the rename error is the one to report
		return fmt.Errorf("write holder file: %w", err)
	}
	return nil
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
	data, err := os.ReadFile(path + ".holder")
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
