package probe

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/fwslot/fwslot/internal/nsutil"
)

// The twin's links, addresses, routes and neighbours are made over
// rtnetlink, not by `ip -batch`: ip reads an interface named like one of
// its keywords (up, dev, type, help) as the keyword, and nothing limits
// the names or the number of interfaces a target may have.

// setupLinks creates the veth pairs (the peer end directly in its
// namespace), brings the twin ends up, and adds the addresses, the
// gateways' permanent neighbour entries and the routes.
func (tw *Twin) setupLinks() error {
	return nsutil.DoHandle(tw.ns, func() error {
		for _, ti := range tw.ifaces {
			if err := tw.addVeth(ti); err != nil {
				return err
			}
		}
		for _, ti := range tw.ifaces {
			if err := tw.addrsAndRoutes(ti); err != nil {
				return err
			}
		}
		return nil
	})
}

func (tw *Twin) addVeth(ti *twinIface) error {
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.HardwareAddr = ti.Name, ti.twinMAC
	if ti.Index > 0 {
		attrs.Index = ti.Index
	}
	veth := &netlink.Veth{LinkAttrs: attrs, PeerName: ti.peerName, PeerHardwareAddr: ti.peerMAC, PeerNamespace: netlink.NsFd(int(ti.peerNS))}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("add link %q: %w", ti.Name, err)
	}
	link, err := netlink.LinkByName(ti.Name)
	if err != nil {
		return fmt.Errorf("link %q: %w", ti.Name, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("set %q up: %w", ti.Name, err)
	}
	ti.twinIndex = link.Attrs().Index
	return nil
}

func (tw *Twin) addrsAndRoutes(ti *twinIface) error {
	for _, a := range ti.Addrs {
		addr := &netlink.Addr{IPNet: prefixNet(a)}
		if a.Addr().Is6() {
			addr.Flags = unix.IFA_F_NODAD
		}
		if err := netlink.AddrAdd(linkIndex(ti), addr); err != nil {
			return fmt.Errorf("add address %s to %q: %w", a, ti.Name, err)
		}
	}
	for _, gw := range []netip.Addr{gw4, gw6} {
		if err := setNeighbour(ti, gw); err != nil {
			return err
		}
	}
	for _, r := range ti.Routes {
		route := &netlink.Route{LinkIndex: ti.twinIndex, Dst: prefixNet(r)}
		if r.Addr().Is6() {
			route.Gw = net.IP(gw6.AsSlice())
		} else {
			route.Gw, route.Flags = net.IP(gw4.AsSlice()), int(netlink.FLAG_ONLINK)
		}
		if err := netlink.RouteReplace(route); err != nil {
			return fmt.Errorf("route %s via %q: %w", r, ti.Name, err)
		}
	}
	return nil
}

// neighFamily is the netlink address family of a.
func neighFamily(a netip.Addr) int {
	if a.Is6() {
		return netlink.FAMILY_V6
	}
	return netlink.FAMILY_V4
}

// setNeighbour gives a a permanent neighbour entry on ti with the peer's
// MAC (the calling thread is in the twin).
func setNeighbour(ti *twinIface, a netip.Addr) error {
	n := &netlink.Neigh{LinkIndex: ti.twinIndex, Family: neighFamily(a), State: netlink.NUD_PERMANENT, IP: net.IP(a.AsSlice()), HardwareAddr: ti.peerMAC}
	if err := netlink.NeighSet(n); err != nil {
		return fmt.Errorf("neighbour %s on %q: %w", a, ti.Name, err)
	}
	return nil
}

// delNeighbour removes a's neighbour entry on ti (the calling thread is in
// the twin).
func delNeighbour(ti *twinIface, a netip.Addr) error {
	n := &netlink.Neigh{LinkIndex: ti.twinIndex, Family: neighFamily(a), IP: net.IP(a.AsSlice())}
	if err := netlink.NeighDel(n); err != nil && err != unix.ENOENT {
		return fmt.Errorf("remove neighbour %s on %q: %w", a, ti.Name, err)
	}
	return nil
}

// linkIndex is a netlink.Link naming the twin end by index only.
func linkIndex(ti *twinIface) netlink.Link {
	attrs := netlink.NewLinkAttrs()
	attrs.Index = ti.twinIndex
	return &netlink.Dummy{LinkAttrs: attrs}
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
