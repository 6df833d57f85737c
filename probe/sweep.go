package probe

import (
	"errors"

	"github.com/fwslot/fwslot/internal/nsutil"
)

// SweepStaleTwins removes the twin and peer namespaces of probe runs whose
// process died before its cleanup ran (SIGKILL, a crash), and returns their
// names. Twins of running processes are left alone.
func SweepStaleTwins() ([]string, error) {
	twins, err1 := nsutil.SweepStale(twinPrefix)
	peers, err2 := nsutil.SweepStale(peerPrefix)
	return append(twins, peers...), errors.Join(err1, err2)
}
