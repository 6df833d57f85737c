package probe

import (
	"errors"
	"fmt"
	"os"

	"github.com/vishvananda/netns"

	"github.com/fwslot/fwslot/internal/nsutil"
	"github.com/fwslot/fwslot/internal/slots"
)

// ErrNoNamespaces means the twin's network namespaces could not be made
// for lack of privilege (no CAP_SYS_ADMIN and no user namespace of its
// own). Such an error also wraps slots.ErrPermission.
var ErrNoNamespaces = errors.New("no privilege to make the twin's network namespaces")

// newNamespace makes one anonymous namespace of the twin (see Twin.ns).
// Refused for lack of privilege, the error wraps slots.ErrPermission and
// ErrNoNamespaces.
func newNamespace() (netns.NsHandle, error) {
	h, err := nsutil.NewAnon()
	if errors.Is(err, os.ErrPermission) {
		return h, fmt.Errorf("%w; %w (%v)", slots.ErrPermission, ErrNoNamespaces, err)
	}
	return h, err
}
