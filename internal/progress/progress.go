// Package progress shows on a terminal which phase a long command is in:
// one line on stderr, redrawn in place, that appears once the command has
// run for a second and is cleared when it ends. Commands make a Reporter
// and pass it down (nothing global); a nil Reporter reports nothing.
package progress

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// After is how long a command runs before its progress shows.
const After = time.Second

// redraw is how often the line is redrawn while the phase stays.
const redraw = 200 * time.Millisecond

// Enabled decides whether a command shows progress: only when its stderr
// is a terminal, and never with --json (a script reads that output).
func Enabled(json, stderrIsTerminal bool) bool { return !json && stderrIsTerminal }

// Reporter draws the progress line of one command.
type Reporter struct {
	w     io.Writer
	start time.Time

	mu    sync.Mutex
	phase string
	pct   int
	shown bool

	stop chan struct{}
	done chan struct{}
}

// New returns a reporter that writes to w, or nil when enabled is false.
func New(w io.Writer, enabled bool) *Reporter {
	if !enabled {
		return nil
	}
	return &Reporter{w: w, start: time.Now()}
}

// Start redraws the line in the background until Stop.
func (r *Reporter) Start() {
	if r == nil {
		return
	}
	r.stop, r.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(r.done)
		t := time.NewTicker(redraw)
		defer t.Stop()
		for {
			select {
			case <-r.stop:
				return
			case now := <-t.C:
				r.tick(now)
			}
		}
	}()
}

// Set records the phase now running and how far the command is (0-100);
// the percentage never goes back.
func (r *Reporter) Set(phase string, pct int) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.phase = phase
	if pct > r.pct {
		r.pct = min(pct, 100)
	}
}

// tick draws the line when the command has run for After.
func (r *Reporter) tick(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	elapsed := now.Sub(r.start)
	if elapsed < After || r.phase == "" {
		return
	}
	fmt.Fprint(r.w, Line(r.phase, r.pct, elapsed))
	r.shown = true
}

// Stop ends the redraws and clears the line if it was drawn.
func (r *Reporter) Stop() {
	if r == nil {
		return
	}
	if r.stop != nil {
		close(r.stop)
		<-r.done
		r.stop = nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.shown {
		fmt.Fprint(r.w, "\r\x1b[K")
		r.shown = false
	}
}

// Line renders the progress line: carriage return, erase the line, then
// "fwslot: PHASE  PCT% (ELAPSED)".
func Line(phase string, pct int, elapsed time.Duration) string {
	return fmt.Sprintf("\r\x1b[Kfwslot: %s  %d%% (%.1f s)", phase, pct, elapsed.Seconds())
}
