package probe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/fwslot/fwslot/internal/nfnl"
	"github.com/fwslot/fwslot/internal/nsutil"
	"github.com/fwslot/fwslot/internal/sysbin"
)

// Loader puts the candidate ruleset into the twin's network namespace,
// given by an open handle (the twin has no name). fwslot's slot code stages and swaps into it; nftFileLoader simply
// runs `nft -f`.
type Loader func(ns netns.NsHandle) error

// nftFileLoader returns a Loader that runs `nft -f path` inside the twin.
func nftFileLoader(path string) Loader {
	return func(ns netns.NsHandle) error {
		return nftIn(ns, "-f", path)
	}
}

// nftIn runs the nft binary inside a namespace: the child process starts
// on a thread that entered it by descriptor, and inherits it.
func nftIn(ns netns.NsHandle, args ...string) error {
	return nsutil.DoHandle(ns, func() error {
		nft, err := sysbin.Nft()
		if err != nil {
			return err
		}
		var stderr bytes.Buffer
		cmd := exec.Command(nft, args...)
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("nft %s in the twin: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
		}
		return nil
	})
}

// nftOutput runs nft inside a namespace and returns its standard output.
func nftOutput(ns netns.NsHandle, stdin string, args ...string) (string, error) {
	var out string
	err := nsutil.DoHandle(ns, func() error {
		nft, err := sysbin.Nft()
		if err != nil {
			return err
		}
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(nft, args...)
		cmd.Stdin = strings.NewReader(stdin)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("nft %s in the twin: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
		}
		out = stdout.String()
		return nil
	})
	return out, err
}

// Prefixes of the named namespaces twins of fwslot versions before
// anonymous twins created; SweepStaleTwins still removes their leftovers.
const (
	twinPrefix = "fwp-t-"
	peerPrefix = "fwp-p-"
)

// Gateways through which the twin routes each interface's prefixes: the
// peer's MAC answers for them through permanent neighbour entries, so no
// ARP or ND ever runs.
var (
	gw4 = netip.MustParseAddr("169.254.0.2")
	gw6 = netip.MustParseAddr("fe80::2")
)

// twinIface is one interface of the twin and its peer namespace.
type twinIface struct {
	Interface
	peerNS    netns.NsHandle
	peerName  string
	twinMAC   net.HardwareAddr
	peerMAC   net.HardwareAddr
	twinIndex int
	peerIndex int
	capFD     int // AF_PACKET socket on the peer side: injects and captures
}

// Twin is a throwaway network namespace standing in for the host under
// test, with one peer namespace per interface joined by a veth pair, the
// candidate ruleset loaded, and the sockets that inject and observe probes.
// Close removes all of it.
type Twin struct {
	// ns holds the twin's network namespace. Twins and their peers are
	// always anonymous namespaces held only by these descriptors, never
	// named under /run/netns: creating one then needs CAP_SYS_ADMIN over
	// the current user namespace only, so an unprivileged CI job can run
	// fwslot inside `unshare -Urn` (where /run/netns is not writable), and
	// a killed fwslot cannot leak one (the kernel frees them with the
	// process). One path for root and rootless: nothing to choose, and
	// root gets the leak-proofing too.
	ns     netns.NsHandle
	topo   Topology
	ifaces []*twinIface
	byName map[string]*twinIface
	sock   *sockets
	load   Loader

	// state is known once the first Probe call looked: the state that
	// probes change in the ruleset (limits, quotas, meters, dynamic sets).
	state       *ruleState
	dirty       bool   // a probe ran since the ruleset was (re)loaded
	entryMark   uint32 // the mark the trace table gives arriving probe packets
	restores    int
	restoreTime time.Duration
	stateNL     *nfnl.Conn            // see stateConn
	neigh       map[netip.Addr]bool   // on-link hosts given a neighbour entry
	ndBlocked   map[netip.Addr]string // on-link hosts whose advertisements the ruleset drops, by interface
	ndProbes    int
	gwChecked   map[string]bool  // interfaces whose IPv6 gateway's advertisements were tried
	gwBlocked   map[string]bool  // ... and dropped by the ruleset
	nsChecked   map[sendKey]bool // senders' solicitations tried: true when the ruleset drops them
	fragSeq     uint32           // fragment probes sent: their identifications never repeat (nextFragID)
	tx          *txFiles         // the twin's IP counters, opened when a rule answers (countTx)
}

// NewTwin builds a twin for the topology and runs load to put the ruleset
// into it. On error everything created so far is removed.
func NewTwin(ctx context.Context, topo Topology, load Loader) (tw *Twin, err error) {
	if err := topo.validate(); err != nil {
		return nil, fmt.Errorf("twin topology: %w", err)
	}
	tw = &Twin{topo: topo, byName: map[string]*twinIface{}, load: load, ns: netns.None()}
	defer func() {
		if err != nil {
			err = errors.Join(err, tw.Close())
			tw = nil
		}
	}()
	if tw.ns, err = newNamespace(); err != nil {
		return tw, fmt.Errorf("create twin: %w", err)
	}
	for i, ifc := range topo.Interfaces {
		ti := &twinIface{
			Interface: ifc,
			peerName:  fmt.Sprintf("fwp%d", i),
			twinMAC:   net.HardwareAddr{0x02, 0x66, 0x77, 0x70 + byte(i>>8), byte(i), 0x01},
			peerMAC:   net.HardwareAddr{0x02, 0x66, 0x77, 0x70 + byte(i>>8), byte(i), 0x02},
			capFD:     -1,
			peerNS:    netns.None(),
		}
		tw.ifaces = append(tw.ifaces, ti)
		tw.byName[ifc.Name] = ti
		if ti.peerNS, err = newNamespace(); err != nil {
			return tw, fmt.Errorf("create peer namespace for %s: %w", ifc.Name, err)
		}
		if err := ctx.Err(); err != nil {
			return tw, err
		}
	}
	if err := nsutil.DoHandle(tw.ns, func() error { return writeSysctls(routerSysctls()) }); err != nil {
		return tw, fmt.Errorf("twin sysctls: %w", err)
	}
	for _, ti := range tw.ifaces {
		if err := nsutil.DoHandle(ti.peerNS, func() error {
			return writeSysctls(map[string]string{
				"net/ipv6/conf/all/disable_ipv6":     "1",
				"net/ipv6/conf/default/disable_ipv6": "1",
			})
		}); err != nil {
			return tw, fmt.Errorf("peer sysctls for %s: %w", ti.Name, err)
		}
	}
	if err := tw.setupLinks(); err != nil {
		return tw, fmt.Errorf("twin links, addresses and routes: %w", err)
	}
	if load != nil {
		if err := load(tw.ns); err != nil {
			return tw, fmt.Errorf("load ruleset into twin: %w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return tw, err
	}
	if tw.sock, err = openSockets(tw); err != nil {
		return tw, fmt.Errorf("twin sockets: %w", err)
	}
	return tw, nil
}

// hostSysctls make addresses usable at once (no duplicate address
// detection) and accept packets whatever the routes back to their source
// (no reverse path filter): a twin's routes are the probes', not a real
// network's.
func hostSysctls() map[string]string {
	return map[string]string{
		"net/ipv6/conf/all/accept_dad":     "0",
		"net/ipv6/conf/default/accept_dad": "0",
		"net/ipv4/conf/all/rp_filter":      "0",
		"net/ipv4/conf/default/rp_filter":  "0",
	}
}

// routerSysctls are hostSysctls for the namespace under test: it forwards,
// takes no router advertisements, and answers every reject. ICMP errors
// are rate limited per namespace: without lifting the limit, from the 7th
// rejected probe of one source on, reject would look like drop. Only ever
// set inside namespaces fwslot made.
func routerSysctls() map[string]string {
	m := hostSysctls()
	maps.Copy(m, map[string]string{
		"net/ipv4/ip_forward":                        "1",
		"net/ipv6/conf/all/forwarding":               "1",
		"net/ipv6/conf/default/accept_ra":            "0",
		"net/ipv6/conf/default/router_solicitations": "0",
		"net/ipv4/icmp_ratelimit":                    "0",
		"net/ipv4/icmp_msgs_per_sec":                 "1000000",
		"net/ipv4/icmp_msgs_burst":                   "1000000",
		"net/ipv6/icmp/ratelimit":                    "0",
	})
	return m
}

// writeSysctls writes /proc/sys entries of the calling thread's namespace.
func writeSysctls(kv map[string]string) error {
	for k, v := range kv {
		if err := os.WriteFile(filepath.Join("/proc/sys", k), []byte(v), 0o644); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", strings.ReplaceAll(k, "/", "."), v, err)
		}
	}
	return nil
}

// Close closes the twin's sockets and removes its namespaces. It is safe to
// call on a partly built twin and more than once.
func (tw *Twin) Close() error {
	if tw == nil {
		return nil
	}
	var errs []error
	if tw.sock != nil {
		tw.sock.close()
		tw.sock = nil
	}
	tw.tx.close()
	tw.tx = nil
	if tw.stateNL != nil {
		tw.stateNL.Close()
		tw.stateNL = nil
	}
	for _, ti := range tw.ifaces {
		if ti.capFD >= 0 {
			unix.Close(ti.capFD)
			ti.capFD = -1
		}
	}
	// Closing the last descriptor frees a namespace, and with it the
	// veth pairs, sockets and ruleset in it.
	if tw.ns.IsOpen() {
		if err := tw.ns.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close the twin's namespace: %w", err))
		}
		tw.ns = netns.None()
	}
	for _, ti := range tw.ifaces {
		if ti.peerNS.IsOpen() {
			if err := ti.peerNS.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close the peer namespace of %s: %w", ti.Name, err))
			}
			ti.peerNS = netns.None()
		}
	}
	return errors.Join(errs...)
}
