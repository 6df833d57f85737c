package slots

import "time"

// Timer receives how long each phase of an operation took. Benchmarks pass
// one to see where the time goes; nil records nothing. It may be called
// from several goroutines at once. PhaseBatchSize reports a count, not a
// duration.
type Timer func(phase string, d time.Duration)

// lap reports the phase that ends now and returns the start of the next.
func (f Timer) lap(phase string, start time.Time) time.Time {
	now := time.Now()
	if f != nil {
		f(phase, now.Sub(start))
	}
	return now
}

// Lap is lap for other packages' operations (package session).
func (f Timer) Lap(phase string, start time.Time) time.Time { return f.lap(phase, start) }

// Phases of Load and Compile, in the order they run. Encoding and the
// history write run alongside building the batch.
const (
	PhaseSource    = "read source + hash"
	PhaseState     = "read target state + reconcile"
	PhaseIfaces    = "list interfaces"
	PhaseNetns     = "private netns setup"
	PhaseNft       = "compile: nft -f (private netns)"
	PhaseReadBack  = "compile: read back (netlink dumps)"
	PhaseFastElems = "compile: big sets encoded from source"
	PhaseCheck     = "checks (probes, lockout guard)"
	PhaseEncode    = "encode (gob, for history)"
	PhaseHistory   = "history write (bbolt)"
	PhaseBatch     = "build batch (Stage)"
	PhaseCommit    = "commit (one transaction)"
	PhaseRecord    = "record kernel state + retention"
	PhaseBatchSize = "batch messages"
)

// LoadPhases lists the phases of Load that take time, in order.
var LoadPhases = []string{PhaseSource, PhaseState, PhaseIfaces, PhaseNetns, PhaseNft, PhaseReadBack, PhaseFastElems,
	PhaseCheck, PhaseEncode, PhaseHistory, PhaseBatch, PhaseCommit, PhaseRecord}
