package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/fwslot/fwslot/session"
	"github.com/spf13/cobra"
)

// watchdogLog is where a detached watchdog writes what it does: next to
// the history, since the shell that started it may be gone.
func watchdogLog(db string) string { return db + ".watchdog.log" }

// startWatchdog starts a detached `fwslot __watchdog` in a session of its
// own, so that neither the end of the shell nor a kill of the invoking
// process group stops it. It runs in /, so every path it gets is
// absolute, and it gets the swap's versions and the history's identity,
// so it can revert from the kernel's tags if the history is busy or gone.
func startWatchdog(g *globals, t *session.Target, res *session.Result) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	db, err := filepath.Abs(g.db)
	if err != nil {
		return fmt.Errorf("history path %s: %w", g.db, err)
	}
	owner, err := t.Store.ID()
	if err != nil {
		return err
	}
	args := []string{"__watchdog", "--db", db, "--seq", strconv.FormatUint(res.Seq, 10),
		"--from", strconv.FormatUint(res.From, 10), "--to", strconv.FormatUint(res.To, 10),
		"--owner", owner, "--deadline", res.Deadline.Format(time.RFC3339Nano)}
	// The compiled form of the version to go back to travels on the
	// watchdog's stdin: if a load replaces it in the other slot and
	// history is busy at the deadline, the watchdog restages it.
	var prev []byte
	if res.From != 0 {
		// Best effort: without the copy the watchdog still flips back
		// when the previous version stays in the other slot.
		v, err := t.Store.Meta(t.Key(), res.From)
		if err == nil {
			prev, err = t.Store.Compiled(t.Key(), res.From)
		}
		if err != nil {
			prev = nil
			fmt.Fprintf(g.stderr, "fwslot: warning: the watchdog gets no copy of version %d (%v); it reverts by flipping only\n", res.From, err)
		} else {
			args = append(args, "--prev-hash", v.Hash)
		}
	}
	if g.netns != "" {
		args = append(args, "--netns", g.netns)
	}
	cmd := exec.Command(exe, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Dir = "/"
	// A log file, not a pipe: a pipe would keep whoever reads this
	// command's output waiting for the watchdog.
	logf, err := os.OpenFile(watchdogLog(db), os.O_WRONLY|os.O_CREATE|os.O_APPEND|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		fmt.Fprintf(g.stderr, "fwslot: warning: watchdog log %s: %v; the watchdog runs without one\n", watchdogLog(db), err)
	} else {
		defer logf.Close()
		cmd.Stderr = logf
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	cmd.Stdin = r
	if err := cmd.Start(); err != nil {
		w.Close()
		return err
	}
	_, werr := w.Write(prev)
	if err := errors.Join(werr, w.Close()); err != nil {
		return fmt.Errorf("hand version %d to the watchdog: %w", res.From, err)
	}
	return cmd.Process.Release()
}

func newWatchdog(g *globals) *cobra.Command {
	w := &session.Watchdog{}
	var deadline string
	c := &cobra.Command{
		Use:    "__watchdog",
		Short:  "internal: revert an unconfirmed swap at its deadline",
		Hidden: true,
		Args:   exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := time.Parse(time.RFC3339Nano, deadline)
			if err != nil {
				return usageError{err}
			}
			if w.Seq == 0 || w.To == 0 {
				return usagef("__watchdog needs --seq and --to")
			}
			w.NetNS, w.DB, w.Deadline, w.Log = g.netns, g.db, d, cmd.ErrOrStderr()
			if w.PrevHash != "" {
				if w.Prev, err = io.ReadAll(cmd.InOrStdin()); err != nil {
					w.Prev = nil
					fmt.Fprintf(w.Log, "fwslot watchdog: warning: read version %d from the swap: %v\n", w.From, err)
				}
			}
			signal.Ignore(syscall.SIGHUP)
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			err = w.Run(ctx)
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		},
	}
	c.Flags().Uint64Var(&w.Seq, "seq", 0, "activation to watch")
	c.Flags().Uint64Var(&w.From, "from", 0, "version to go back to")
	c.Flags().Uint64Var(&w.To, "to", 0, "version waiting for confirmation")
	c.Flags().StringVar(&w.Owner, "owner", "", "identity of the history, as tagged in the kernel")
	c.Flags().StringVar(&deadline, "deadline", "", "RFC 3339 deadline")
	c.Flags().StringVar(&w.PrevHash, "prev-hash", "", "hash of version --from, whose compiled form comes on stdin")
	return c
}
