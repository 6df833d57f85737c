package probe

import (
	"fmt"
	"net/netip"
	"strings"
)

// onLinkIface returns the twin interface whose connected prefix holds a
// (the longest match), or nil when a is not on a link of the twin or is
// one of the twin's own addresses.
func (tw *Twin) onLinkIface(a netip.Addr) *twinIface {
	var best *twinIface
	bits := -1
	for _, ti := range tw.ifaces {
		for _, p := range ti.Addrs {
			if p.Addr() == a {
				return nil
			}
			if p.Bits() < p.Addr().BitLen() && p.Masked().Contains(a) && p.Bits() > bits {
				best, bits = ti, p.Bits()
			}
		}
	}
	return best
}

// addNeighbours makes every host the probes name on a connected prefix of
// the twin (a topology with real prefix lengths) reachable: a permanent
// neighbour entry with the peer's MAC, since no peer answers ARP or
// neighbour discovery. Without it the twin would resolve the host forever:
// forwarded packets never leave and reject answers never come.
func (tw *Twin) addNeighbours(probes []Probe) error {
	if tw.neigh == nil {
		tw.neigh = map[netip.Addr]bool{}
	}
	var b strings.Builder
	add := func(a netip.Addr) {
		if !unicast(a) || tw.neigh[a] {
			return
		}
		ti := tw.onLinkIface(a)
		if ti == nil {
			return
		}
		tw.neigh[a] = true
		fmt.Fprintf(&b, "neigh replace %s lladdr %s dev %s nud permanent\n", a, ti.peerMAC, ti.Name)
	}
	for _, p := range probes {
		add(p.Src.Addr)
		add(p.Dst.Addr)
		if p.DNAT != nil {
			add(p.DNAT.Addr)
		}
		if p.SNAT != nil {
			add(p.SNAT.Addr)
		}
	}
	if err := ipBatch(tw.Name, b.String()); err != nil {
		return fmt.Errorf("neighbours of on-link hosts: %w", err)
	}
	return nil
}
