package probe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fwslot/fwslot/internal/nsutil"
	"github.com/fwslot/fwslot/internal/sysbin"
)

// Loader puts the candidate ruleset into the named network namespace (the
// twin). fwslot's slot code stages and swaps into it; NftFileLoader simply
// runs `nft -f`.
type Loader func(nsName string) error

// NftFileLoader returns a Loader that runs `nft -f path` inside the twin.
func NftFileLoader(path string) Loader {
	return func(ns string) error {
		return nftIn(ns, "-f", path)
	}
}

// nftIn runs the nft binary inside a namespace.
func nftIn(ns string, args ...string) error {
	return nsutil.Do(ns, func() error {
		nft, err := sysbin.Nft()
		if err != nil {
			return err
		}
		var stderr bytes.Buffer
		cmd := exec.Command(nft, args...)
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("nft %s in %s: %w: %s", strings.Join(args, " "), ns, err, strings.TrimSpace(stderr.String()))
		}
		return nil
	})
}

// nftOutput runs nft inside a namespace and returns its standard output.
func nftOutput(ns string, stdin string, args ...string) (string, error) {
	var out string
	err := nsutil.Do(ns, func() error {
		nft, err := sysbin.Nft()
		if err != nil {
			return err
		}
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(nft, args...)
		cmd.Stdin = strings.NewReader(stdin)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("nft %s in %s: %w: %s", strings.Join(args, " "), ns, err, strings.TrimSpace(stderr.String()))
		}
		out = stdout.String()
		return nil
	})
	return out, err
}

// Prefixes of the namespaces a twin creates; leaks show in `ip netns list`.
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
	peerNS    string
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
	// Name is the twin's network namespace.
	Name   string
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
	neigh       map[netip.Addr]bool   // on-link hosts given a neighbour entry
	ndBlocked   map[netip.Addr]string // on-link hosts whose advertisements the ruleset drops, by interface
	ndProbes    int
	gwChecked   map[string]bool  // interfaces whose IPv6 gateway's advertisements were tried
	gwBlocked   map[string]bool  // ... and dropped by the ruleset
	nsChecked   map[sendKey]bool // senders' solicitations tried: true when the ruleset drops them
}

// NewTwin builds a twin for the topology and runs load to put the ruleset
// into it. On error everything created so far is removed.
func NewTwin(ctx context.Context, topo Topology, load Loader) (tw *Twin, err error) {
	if err := topo.Validate(); err != nil {
		return nil, fmt.Errorf("twin topology: %w", err)
	}
	tw = &Twin{topo: topo, byName: map[string]*twinIface{}, load: load}
	defer func() {
		if err != nil {
			err = errors.Join(err, tw.Close())
			tw = nil
		}
	}()
	if tw.Name, err = nsutil.Create(twinPrefix); err != nil {
		return tw, fmt.Errorf("create twin: %w", err)
	}
	for i, ifc := range topo.Interfaces {
		ti := &twinIface{
			Interface: ifc,
			peerName:  fmt.Sprintf("fwp%d", i),
			twinMAC:   net.HardwareAddr{0x02, 0x66, 0x77, 0x70 + byte(i>>8), byte(i), 0x01},
			peerMAC:   net.HardwareAddr{0x02, 0x66, 0x77, 0x70 + byte(i>>8), byte(i), 0x02},
			capFD:     -1,
		}
		tw.ifaces = append(tw.ifaces, ti)
		tw.byName[ifc.Name] = ti
		if ti.peerNS, err = nsutil.Create(peerPrefix); err != nil {
			return tw, fmt.Errorf("create peer namespace for %s: %w", ifc.Name, err)
		}
		if err := ctx.Err(); err != nil {
			return tw, err
		}
	}
	if err := nsutil.Do(tw.Name, func() error {
		return writeSysctls(map[string]string{
			"net/ipv4/ip_forward":                        "1",
			"net/ipv6/conf/all/forwarding":               "1",
			"net/ipv6/conf/all/accept_dad":               "0",
			"net/ipv6/conf/default/accept_dad":           "0",
			"net/ipv4/conf/all/rp_filter":                "0",
			"net/ipv4/conf/default/rp_filter":            "0",
			"net/ipv6/conf/default/accept_ra":            "0",
			"net/ipv6/conf/default/router_solicitations": "0",
			// ICMP errors are rate limited per namespace: without this,
			// from the 7th rejected probe of one source on, reject
			// would look like drop. Only ever set inside the twin.
			"net/ipv4/icmp_ratelimit":    "0",
			"net/ipv4/icmp_msgs_per_sec": "1000000",
			"net/ipv4/icmp_msgs_burst":   "1000000",
			"net/ipv6/icmp/ratelimit":    "0",
		})
	}); err != nil {
		return tw, fmt.Errorf("twin sysctls: %w", err)
	}
	for _, ti := range tw.ifaces {
		if err := nsutil.Do(ti.peerNS, func() error {
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
		if err := load(tw.Name); err != nil {
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

// Topology returns the topology the twin was built from.
func (tw *Twin) Topology() Topology { return tw.topo }

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
	for _, ti := range tw.ifaces {
		if ti.capFD >= 0 {
			unix.Close(ti.capFD)
			ti.capFD = -1
		}
	}
	if tw.Name != "" {
		if err := nsutil.Delete(tw.Name); err != nil {
			errs = append(errs, err)
		}
		tw.Name = ""
	}
	for _, ti := range tw.ifaces {
		if ti.peerNS != "" {
			if err := nsutil.Delete(ti.peerNS); err != nil {
				errs = append(errs, err)
			}
			ti.peerNS = ""
		}
	}
	return errors.Join(errs...)
}
