package slots

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"time"

	"github.com/fwslot/fwslot/internal/names"
	"github.com/fwslot/fwslot/internal/nfnl"
	"github.com/fwslot/fwslot/internal/nsutil"
	"golang.org/x/sys/unix"
)

// Target is the network namespace fwslot manages (the host's own when
// NetNS is empty), as the kernel sees it: package session adds the
// history that manages it.
type Target struct {
	NetNS string
	// OnDial, when set, is called with every connection Dial opens: tests
	// count the connections and kernel reads of one command with it.
	OnDial func(*nfnl.Conn)
}

// Key names the target in the history file: "host" or "netns:NAME".
func (t *Target) Key() string {
	if t.NetNS == "" {
		return "host"
	}
	return "netns:" + t.NetNS
}

// ErrNoNamespace means the named target namespace does not exist.
var ErrNoNamespace = errors.New("network namespace does not exist")

// ErrMixedSlot means the tables of one slot hold different versions (a
// load stopped between tables, or a hand edit): the slot must be staged
// again.
var ErrMixedSlot = errors.New("a slot holds two versions")

// ErrPermission means the caller lacks CAP_NET_ADMIN.
var ErrPermission = errors.New("CAP_NET_ADMIN is needed")

// Dial opens a netlink connection to the target, turning the usual
// failures into clear errors.
func (t *Target) Dial() (*nfnl.Conn, error) {
	if t.NetNS != "" && !nsutil.Exists(t.NetNS) {
		return nil, fmt.Errorf("%w: %q", ErrNoNamespace, t.NetNS)
	}
	c, err := nfnl.Dial(t.NetNS)
	if err != nil {
		if errors.Is(err, unix.EPERM) {
			return nil, ErrPermission
		}
		return nil, err
	}
	if t.OnDial != nil {
		t.OnDial(c)
	}
	return c, nil
}

// SlotInfo says which version sits in a slot.
type SlotInfo struct {
	Slot    names.Slot `json:"slot"`
	Version uint64     `json:"version"`
	Hash    string     `json:"hash"`
	Message string     `json:"message,omitempty"`
	User    string     `json:"user,omitempty"`
	Time    string     `json:"time,omitempty"`
	Origin  string     `json:"origin,omitempty"`
	Tables  []string   `json:"tables"`
}

// Status is what is live and what is staged on a target, read from the
// kernel and cross-checked against history.
type Status struct {
	Target     string    `json:"target"`
	Production *SlotInfo `json:"production"`
	Staging    *SlotInfo `json:"staging"`
	// Takeover is true while a table still runs its pre-fwslot content:
	// the next swap replaces it with the slot layout.
	Takeover bool     `json:"takeover_pending"`
	Tables   []string `json:"tables"`
	// Warnings say where kernel and history disagree.
	Warnings []string `json:"warnings"`
	// Pending is a confirmed swap that waits for `fwslot confirm`.
	Pending *Pending `json:"pending"`
	// Drift is true when the managed tables were changed behind fwslot's
	// back; DriftChanges says how.
	Drift        bool     `json:"drift"`
	DriftChanges []string `json:"drift_changes"`
	// Vanished is the version history says is live when the kernel no
	// longer runs it (package session fills it in); 0 otherwise.
	Vanished uint64 `json:"vanished,omitempty"`
	active   names.Slot
}

// Pending describes a swap that reverts unless confirmed.
type Pending struct {
	Version  uint64    `json:"version"`
	From     uint64    `json:"from"`
	Deadline time.Time `json:"deadline"`
	// SecondsLeft is negative when the deadline has passed and the next
	// command will revert.
	SecondsLeft float64 `json:"seconds_left"`
}

// Active returns the live slot (SlotA when nothing is managed yet).
func (s *Status) Active() names.Slot { return s.active }

// Describe derives the status from kernel state alone.
func Describe(st *State) (*Status, error) {
	s := &Status{active: names.SlotA, Warnings: []string{}, Tables: []string{}, DriftChanges: []string{}}
	managed := st.Managed()
	if len(managed) == 0 {
		return s, nil
	}
	counts := map[names.Slot]int{}
	for _, t := range managed {
		counts[t.Active]++
		s.Tables = append(s.Tables, t.Key())
	}
	if counts[names.SlotB] > counts[names.SlotA] {
		s.active = names.SlotB
	}
	if counts[names.SlotA] > 0 && counts[names.SlotB] > 0 {
		s.Warnings = append(s.Warnings, "managed tables disagree on the live slot; a swap was interrupted or a table was changed by hand")
	}
	collect := func(slot names.Slot) (*SlotInfo, error) {
		var info *SlotInfo
		for _, t := range managed {
			tag, ok := t.Markers[slot]
			if !ok {
				continue
			}
			if info == nil {
				info = &SlotInfo{Slot: slot, Version: tag.Version, Hash: tag.Hash}
			} else if info.Version != tag.Version || info.Hash != tag.Hash {
				return nil, fmt.Errorf("%w: slot %s holds version %d in one table and %d in table %s", ErrMixedSlot, slot, info.Version, tag.Version, t.Key())
			}
			info.Tables = append(info.Tables, t.Key())
		}
		return info, nil
	}
	var err error
	if s.Production, err = collect(s.active); err != nil {
		return nil, err
	}
	if s.Staging, err = collect(s.active.Other()); err != nil {
		return nil, err
	}
	for _, t := range managed {
		if t.Takeover {
			s.Takeover = true
			continue
		}
		for _, bc := range t.Base {
			if bc.Dispatch != nil && bc.Dispatch.Slot != t.Active {
				s.Warnings = append(s.Warnings, fmt.Sprintf("table %s: base chain %s jumps to slot %s but the meta rule says %s", t.Key(), bc.Name, bc.Dispatch.Slot, t.Active))
			}
		}
	}
	return s, nil
}

// CurrentUser names who runs fwslot, for history records.
func CurrentUser() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	if s := os.Getenv("SUDO_USER"); s != "" {
		name = s + " (via sudo)"
	}
	return name
}

// SharedNames returns, per table, the sets (by name) and objects (by
// SharedKey: objects of different types may share a name) that a version
// keeps under the user's own names.
func SharedNames(rs *Ruleset) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for _, t := range rs.Tables {
		m := map[string]bool{}
		for _, s := range t.Sets {
			if s.Shared {
				m[s.Name] = true
			}
		}
		for _, o := range t.Objs {
			if o.Shared {
				m[sharedKey(o.Key())] = true
			}
		}
		out[t.Key()] = m
	}
	return out
}

// sharedKey names an object among SharedNames: its type as nft spells it
// and its name ("counter x"), which no set name nft accepts can be.
func sharedKey(k ObjKey) string { return nfnl.ObjTypeName(k.Type) + " " + k.Name }
