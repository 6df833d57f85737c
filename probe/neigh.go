package probe

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/fwslot/fwslot/internal/nsutil"
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
	if tw.ndBlocked == nil {
		tw.ndBlocked = map[netip.Addr]string{}
		tw.gwChecked = map[string]bool{}
		tw.nsChecked = map[sendKey]bool{}
		tw.gwBlocked = map[string]bool{}
	}
	var ops []func() error // neighbour entries to set or remove, in the twin
	var errs []error
	// dropsAdvert reports whether the ruleset drops a's neighbour
	// advertisements on ti (then recorded in ndBlocked); tried is false
	// when that could not be found out (the error is collected).
	dropsAdvert := func(ti *twinIface, a netip.Addr) (dropped, tried bool) {
		ok, err := tw.acceptsAdvert(ti, a)
		if err != nil {
			errs = append(errs, err)
			return false, false
		}
		if !ok {
			tw.ndBlocked[a] = ti.Name
		}
		return !ok, true
	}
	add := func(a netip.Addr) {
		if !unicast(a) || tw.neigh[a] {
			return
		}
		ti := tw.onLinkIface(a)
		if ti == nil {
			return
		}
		tw.neigh[a] = true
		if a.Is6() {
			// IPv6 neighbour discovery goes through the ruleset: a host
			// whose advertisements it drops is never reached.
			if dropped, tried := dropsAdvert(ti, a); dropped || !tried {
				return
			}
		}
		ops = append(ops, func() error { return setNeighbour(ti, a) })
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
	// The gateway of each interface with IPv6 routes needs neighbour
	// discovery as much as an on-link host: if the ruleset drops its
	// advertisements, nothing routed through it ever leaves.
	for _, p := range probes {
		ti := tw.byName[p.Out]
		if ti == nil || !p.is6() || tw.onLinkIface(p.Dst.Addr) != nil || tw.gwChecked[ti.Name] || !realGateway(ti) {
			continue
		}
		tw.gwChecked[ti.Name] = true
		if dropped, _ := dropsAdvert(ti, gw6); dropped {
			tw.gwBlocked[ti.Name] = true
			ops = append(ops, func() error { return delNeighbour(ti, gw6) })
		}
	}
	// A sender needs the twin's address resolved too: if the ruleset
	// drops its solicitations, it never sends at all (the twin injects
	// below neighbour discovery, so it has to ask).
	for _, p := range probes {
		ti := tw.byName[p.In]
		if ti == nil || !p.is6() {
			continue
		}
		host := senderHop(tw, ti, p.Src.Addr)
		if host == gw6 && !realGateway(ti) {
			continue
		}
		k := sendKey{host, ti.Name}
		if _, done := tw.nsChecked[k]; done {
			continue
		}
		ok, err := tw.acceptsNeighbourMsg(ti, host, 135)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		tw.nsChecked[k] = !ok
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	err := nsutil.DoHandle(tw.ns, func() error {
		for _, op := range ops {
			if err := op(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("neighbours of on-link hosts: %w", err)
	}
	return nil
}

// acceptsAdvert reports whether the ruleset lets a neighbour advertisement
// of host a in through ti (to the twin's address on that link), judged like
// a probe. It changes ruleset state like one: the next probe restores it.
func (tw *Twin) acceptsAdvert(ti *twinIface, a netip.Addr) (bool, error) {
	return tw.acceptsNeighbourMsg(ti, a, 136)
}

// ndProbeBase numbers the twin's own neighbour discovery probes, apart
// from the user's probes (their tags differ).
const ndProbeBase = 1 << 18

// realGateway reports whether ti's IPv6 gateway stands for a real router:
// the topology routes a network through it (a topology file's `route eth0
// ::/0`), not just the host routes an inferred topology makes up. Only then
// is its neighbour discovery checked against the ruleset.
func realGateway(ti *twinIface) bool {
	for _, r := range ti.Routes {
		if r.Addr().Is6() && r.Bits() < 128 {
			return true
		}
	}
	return false
}

// sendKey is a sender's next hop (itself or the gateway) on an interface.
type sendKey struct {
	host  netip.Addr
	iface string
}

// senderHop is the neighbour through which a probe from src arrives on ti:
// src itself when it is on the link, else the gateway.
func senderHop(tw *Twin, ti *twinIface, src netip.Addr) netip.Addr {
	if tw.onLinkIface(src) == ti {
		return src
	}
	return gw6
}

// sendBlocked reports the neighbour a probe's sender depends on when the
// ruleset drops that neighbour's solicitations of the twin's address.
func (tw *Twin) sendBlocked(p Probe) (netip.Addr, bool) {
	ti := tw.byName[p.In]
	if ti == nil || !p.is6() {
		return netip.Addr{}, false
	}
	host := senderHop(tw, ti, p.Src.Addr)
	return host, tw.nsChecked[sendKey{host, ti.Name}]
}

// acceptsNeighbourMsg reports whether the ruleset lets an ICMPv6 neighbour
// advertisement (136) of host a to the twin's address on ti, or a
// solicitation (135) of that address, in through ti, judged like a probe.
func (tw *Twin) acceptsNeighbourMsg(ti *twinIface, a netip.Addr, typ uint8) (bool, error) {
	var own netip.Addr
	for _, p := range ti.Addrs {
		if p.Addr().Is6() && p.Masked().Contains(a) {
			own = p.Addr()
			break
		}
	}
	if !own.IsValid() { // the gateway: the twin solicits it from its link-local address
		ll, err := tw.linkLocal(ti)
		if err != nil {
			return false, err
		}
		own = ll
	}
	dst := own
	if typ == 135 { // to the solicited-node multicast group of the address
		o := own.As16()
		dst = netip.AddrFrom16([16]byte{0xff, 0x02, 11: 1, 12: 0xff, 13: o[13], 14: o[14], 15: o[15]})
	}
	if dst.IsMulticast() {
		if err := tw.waitJoined(ti, dst); err != nil {
			return false, err
		}
	}
	// Neighbour discovery is sent with hop limit 255 (RFC 4861), which
	// rulesets check (RFC 4890 filters: `ip6 hoplimit 255`).
	na := Probe{Proto: ICMPv6, Src: Endpoint{Addr: a}, Dst: Endpoint{Addr: dst}, In: ti.Name, State: StateNew, ICMPType: typ, TTL: 255,
		Text: fmt.Sprintf("icmpv6 %s -> %s in %s type %d hoplimit 255", a, dst, ti.Name, typ)}
	tw.ndProbes++
	r := tw.probeOne(ndProbeBase+tw.ndProbes, na, nil, Options{}.withDefaults())
	tw.dirty = true
	if r.Err != nil {
		return false, fmt.Errorf("neighbour discovery message %d of %s on %s: %w", typ, a, ti.Name, r.Err)
	}
	return r.Got == Accept, nil
}

// nsHop is the path of a probe whose sender cannot resolve the twin's
// address: the ruleset drops the sender's neighbour solicitations.
func nsHop(host netip.Addr, iface string) Hop {
	return Hop{Chain: fmt.Sprintf("(neighbour discovery of this host from %s on %s fails: the ruleset drops its neighbour solicitations, so the packet is never sent)", host, iface), Verdict: "drop"}
}

// ndHop is the last hop of a path whose packet the ruleset accepted but
// whose next hop never answers: its neighbour advertisements are dropped.
func ndHop(host netip.Addr, iface string) Hop {
	return Hop{Chain: fmt.Sprintf("(neighbour discovery of %s on %s fails: the ruleset drops its neighbour advertisements)", host, iface), Verdict: "drop"}
}

// linkLocal returns the twin's IPv6 link-local address on ti.
func (tw *Twin) linkLocal(ti *twinIface) (netip.Addr, error) {
	var ll netip.Addr
	err := nsutil.DoHandle(tw.ns, func() error {
		ifc, err := net.InterfaceByName(ti.Name)
		if err != nil {
			return err
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			return err
		}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(ipn.IP); ok && ip.Is6() && ip.IsLinkLocalUnicast() {
					ll = ip
					return nil
				}
			}
		}
		return fmt.Errorf("no IPv6 link-local address")
	})
	if err != nil {
		return ll, fmt.Errorf("twin interface %s: %w", ti.Name, err)
	}
	return ll, nil
}

// waitJoined waits (up to 2s) until the twin's interface has joined the
// multicast group: the kernel joins an address's solicited-node group
// from a work queue after the address appears, and a solicitation sent
// before that is not delivered.
func (tw *Twin) waitJoined(ti *twinIface, group netip.Addr) error {
	want := hex.EncodeToString(group.AsSlice())
	deadline := time.Now().Add(2 * time.Second)
	for {
		var joined bool
		err := nsutil.DoHandle(tw.ns, func() error {
			b, err := os.ReadFile("/proc/thread-self/net/igmp6")
			if err != nil {
				return fmt.Errorf("read multicast groups: %w", err)
			}
			for _, line := range strings.Split(string(b), "\n") {
				f := strings.Fields(line)
				if len(f) >= 3 && f[1] == ti.Name && f[2] == want {
					joined = true
				}
			}
			return nil
		})
		if err != nil || joined {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("twin interface %s never joined %s", ti.Name, group)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
