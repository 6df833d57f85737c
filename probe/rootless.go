package probe

import (
	"errors"
	"fmt"
	"os"

	"github.com/vishvananda/netns"

	"github.com/fwslot/fwslot/internal/nsutil"
	"github.com/fwslot/fwslot/slots"
)

// RootlessHint tells an unprivileged user how to give fwslot the namespaces
// a twin needs without root: a user namespace with its own network
// namespace, where nft, veth pairs and nested namespaces work.
const RootlessHint = "without root, run it inside a user namespace of its own, e.g. unshare -Urn fwslot test RULESET --probes FILE"

// newNamespace makes one anonymous namespace of the twin (see Twin.ns).
// Refused for lack of privilege, the error wraps slots.ErrPermission and
// says how to run fwslot without root.
func newNamespace() (netns.NsHandle, error) {
	h, err := nsutil.NewAnon()
	if errors.Is(err, os.ErrPermission) {
		return h, fmt.Errorf("%w; %s (%v)", slots.ErrPermission, RootlessHint, err)
	}
	return h, err
}
