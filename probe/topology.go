package probe

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// Topology describes the interfaces of the host under test, which the twin
// reproduces: one veth per interface, with its addresses and the prefixes
// routed through it.
type Topology struct {
	Interfaces []Interface `json:"interfaces"`
}

// Interface is one network interface of the host under test. Addrs are its
// local addresses (the first of each family is the primary one); Routes are
// destination prefixes reachable through it. Index, when not 0, is the
// interface index to give it (to mirror a target's indexes).
type Interface struct {
	Name   string         `json:"name"`
	Index  int            `json:"index,omitempty"`
	Addrs  []netip.Prefix `json:"addrs,omitempty"`
	Routes []netip.Prefix `json:"routes,omitempty"`
}

// lookup returns the interface with the given name.
func (t *Topology) lookup(name string) (*Interface, bool) {
	for i := range t.Interfaces {
		if t.Interfaces[i].Name == name {
			return &t.Interfaces[i], true
		}
	}
	return nil, false
}

func (t *Topology) iface(name string) *Interface {
	if i, ok := t.lookup(name); ok {
		return i
	}
	t.Interfaces = append(t.Interfaces, Interface{Name: name})
	return &t.Interfaces[len(t.Interfaces)-1]
}

func hostPrefix(a netip.Addr) netip.Prefix {
	return netip.PrefixFrom(a, a.BitLen())
}

func addPrefix(list []netip.Prefix, p netip.Prefix) []netip.Prefix {
	for _, q := range list {
		if q == p {
			return list
		}
	}
	return append(list, p)
}

// InferTopology derives a topology from probes when the target's own is not
// known (multicast and broadcast addresses are never assigned or routed).
// Local addresses are placed by how strongly the probes tie them to an
// interface, the first placement winning: snat addresses on the out
// interface (masquerade takes its source from there), sources of `out`
// probes on their out interface, original destinations of dnat probes on
// the in interface (unless other probes forward to that host: then it is a
// host behind the router, not the router), and last destinations of
// `in`-only probes on their in interface (a host answers on any of its
// addresses, whichever interface a packet came in). An interface that
// forwarded probes leave by and that got no address of their family gets a
// placeholder (198.18.N.1, fd00:f510:0:N::1), so masquerade has a source.
// Host routes go to
// forwarded and `out` destinations (after dnat) via the out interface, then
// back to every `in` source via its in interface. The first route for an
// address wins (destinations before sources); routes to local addresses
// are skipped. Because an snat address becomes the out interface's
// address, a masquerade probe checks that the source was rewritten to that
// interface's address; give a topology file to check it against the real
// one.
func InferTopology(probes []Probe) Topology {
	return inferTopologyWith(probes, rulesetNames{})
}

// InferTopologyWith is InferTopology with what the ruleset's own text
// says (rulesetText: its source with includes in place, as
// source.Bundle.Flat holds it): every interface it names exists in the twin
// (an iif/oif match of a missing interface does not even load), and its
// WAN side, with the probes' evidence (the out interface of a probe that
// expects snat, the in interface of one that expects dnat), decides where
// a source that probes send from several interfaces lives, as on a real
// router: a private address (RFC 1918, fc00::/7) on the LAN side, the
// WAN side's default route reaching the others. Otherwise the first
// probe's interface wins, as without names.
func InferTopologyWith(probes []Probe, rulesetText string) Topology {
	return inferTopologyWith(probes, rulesetInterfaces(rulesetText))
}

// inferTopologyWith is InferTopologyWith with the ruleset's names read.
func inferTopologyWith(probes []Probe, names rulesetNames) Topology {
	var t Topology
	local := map[netip.Addr]bool{}
	addLocal := func(ifname string, a netip.Addr) {
		if local[a] || !unicast(a) {
			return
		}
		local[a] = true
		i := t.iface(ifname)
		i.Addrs = addPrefix(i.Addrs, hostPrefix(a))
	}
	// Hosts beyond the router: what it forwards to or sends out.
	remote := map[netip.Addr]bool{}
	for _, p := range probes {
		if p.In != "" {
			t.iface(p.In)
		}
		if p.Out != "" {
			t.iface(p.Out)
		}
		if p.Out != "" && p.DNAT == nil && (p.direction() == dirForward || p.direction() == dirOut) {
			remote[p.Dst.Addr] = true
		}
	}
	for pass := 0; pass < 4; pass++ {
		for _, p := range probes {
			switch dir := p.direction(); {
			case pass == 0 && dir == dirForward && p.SNAT != nil:
				addLocal(p.Out, p.SNAT.Addr)
			case pass == 1 && dir == dirOut:
				addLocal(p.Out, p.Src.Addr)
			case pass == 2 && dir == dirForward && p.DNAT != nil && !remote[p.Dst.Addr]:
				addLocal(p.In, p.Dst.Addr)
			case pass == 3 && dir == dirIn:
				addLocal(p.In, p.Dst.Addr)
			}
		}
	}
	// An interface that forwarded packets leave by needs an address of
	// their family, or masquerade has no source to take and drops them.
	// Without any evidence of the real one, a placeholder stands in.
	used := map[netip.Addr]bool{}
	for _, p := range probes {
		for _, e := range []*Endpoint{&p.Src, &p.Dst, p.SNAT, p.DNAT} {
			if e != nil {
				used[e.Addr] = true
			}
		}
	}
	for _, p := range probes {
		if p.direction() != dirForward {
			continue
		}
		i := t.iface(p.Out)
		if hasFamily(i.Addrs, p.is6()) {
			continue
		}
		for n := 1; n < maxPlaceholders; n++ {
			a := placeholder(n, p.is6())
			if !used[a] && !local[a] {
				addLocal(p.Out, a)
				break
			}
		}
	}
	routed := map[netip.Addr]bool{}
	addRoute := func(ifname string, a netip.Addr) {
		if local[a] || routed[a] || !unicast(a) {
			return
		}
		routed[a] = true
		i := t.iface(ifname)
		i.Routes = addPrefix(i.Routes, hostPrefix(a))
	}
	// Destinations first: a forwarded packet must leave where the probe
	// says; a route back to a source only carries a reject's answer.
	for _, p := range probes {
		if p.Out != "" {
			dst := p.Dst.Addr
			if p.DNAT != nil {
				dst = p.DNAT.Addr
			}
			addRoute(p.Out, dst)
		}
	}
	wan := map[string]bool{}
	for _, n := range names.WAN {
		wan[n] = true
	}
	for _, p := range probes {
		if p.direction() == dirForward && p.SNAT != nil {
			wan[p.Out] = true
		}
		if p.direction() == dirForward && p.DNAT != nil {
			wan[p.In] = true
		}
	}
	for _, p := range probes {
		if p.In != "" {
			addRoute(sourceSide(probes, p, wan), p.Src.Addr)
		}
	}
	for _, n := range names.Names {
		t.iface(n)
	}
	return t
}

// sourceSide is the interface the route back to p's source goes through:
// p's in interface, unless probes send from that address on both sides
// of the router (a spoofing probe): then a private address lives on the
// first LAN interface it comes in on, any other on the first WAN one.
func sourceSide(probes []Probe, p Probe, wan map[string]bool) string {
	if len(wan) == 0 {
		return p.In
	}
	private := p.Src.Addr.IsPrivate()
	for _, q := range probes {
		if q.In != "" && q.Src.Addr == p.Src.Addr && wan[q.In] != private {
			return q.In
		}
	}
	return p.In
}

// Placeholder addresses of inferred interfaces: 198.18.0.0/15 (RFC 2544)
// and fd00:f510::/32.
var (
	placeholder4 = netip.MustParsePrefix("198.18.0.0/15")
	placeholder6 = netip.MustParsePrefix("fd00:f510::/32")
)

// maxPlaceholders bounds the placeholder addresses: 198.18.0.0/15 holds
// 512 of them (one /24 each).
const maxPlaceholders = 512

func placeholder(n int, v6 bool) netip.Addr {
	if v6 {
		return netip.AddrFrom16([16]byte{0xfd, 0x00, 0xf5, 0x10, 0, 0, byte(n >> 8), byte(n), 15: 1})
	}
	return netip.AddrFrom4([4]byte{198, 18 + byte(n>>8), byte(n), 1})
}

func isPlaceholder(a netip.Addr) bool {
	return placeholder4.Contains(a) || placeholder6.Contains(a)
}

// hasFamily reports whether ps holds an address of the family.
func hasFamily(ps []netip.Prefix, v6 bool) bool {
	for _, p := range ps {
		if p.Addr().Is6() == v6 {
			return true
		}
	}
	return false
}

// unicast reports whether a can be an interface's address or a host
// route's destination: not multicast, broadcast, unspecified or loopback.
// A probe to a multicast or broadcast destination is received by the
// twin's interface as such, without any address for it.
func unicast(a netip.Addr) bool {
	return a.IsValid() && !a.IsMulticast() && !a.IsUnspecified() && !a.IsLoopback() &&
		a != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// ParseTopology reads a topology file (the --topology format). One statement
// per line, '#' starts a comment:
//
//	iface NAME [index N]     declare an interface (optional: its ifindex)
//	addr NAME PREFIX         a local address, e.g. 192.0.2.10/24 or 2001:db8::1/64
//	route NAME PREFIX        a destination reachable through NAME, e.g. 0.0.0.0/0
//
// addr and route declare the interface implicitly. Addresses without a
// prefix length are host addresses (/32, /128).
func ParseTopology(name string, r io.Reader) (Topology, error) {
	var t Topology
	var errs []error
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		body, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(body)
		if len(f) == 0 {
			continue
		}
		fail := func(exp, got string) {
			errs = append(errs, &parseError{File: name, Line: n, Expected: exp, Got: got})
		}
		arg := func(i int) string {
			if i < len(f) {
				return f[i]
			}
			return ""
		}
		if !validIfname(arg(1)) {
			fail("interface name after "+f[0], arg(1))
			continue
		}
		switch f[0] {
		case "iface":
			i := t.iface(f[1])
			switch {
			case len(f) == 2:
			case len(f) == 4 && f[2] == "index":
				idx, err := strconv.Atoi(f[3])
				if err != nil || idx <= 0 {
					fail("positive interface index", f[3])
					continue
				}
				i.Index = idx
			default:
				fail("end of line or index N", arg(2))
			}
		case "addr", "route":
			p, err := parsePrefix(arg(2))
			if err != nil || len(f) != 3 {
				fail("one address prefix like 192.0.2.10/24", strings.Join(f[2:], " "))
				continue
			}
			i := t.iface(f[1])
			if f[0] == "addr" {
				i.Addrs = addPrefix(i.Addrs, p)
			} else {
				i.Routes = addPrefix(i.Routes, p.Masked())
			}
		default:
			fail("iface, addr or route", f[0])
		}
	}
	if err := sc.Err(); err != nil {
		return t, fmt.Errorf("read topology %s: %w", name, err)
	}
	return t, errors.Join(errs...)
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return hostPrefix(a), nil
}

// maxInterfaces is how many interfaces a twin mirrors: the twin's MAC
// addresses number them in 15 bits (02:66:77:70+i>>8:i:01). Each costs a
// peer namespace and a veth pair.
const maxInterfaces = 32768

// validate checks that the topology can be built: unique interface names
// no longer than 15 bytes, at most maxInterfaces interfaces.
func (t Topology) validate() error {
	if len(t.Interfaces) == 0 {
		return errors.New("topology has no interfaces")
	}
	if len(t.Interfaces) > maxInterfaces {
		return fmt.Errorf("topology has %d interfaces, at most %d supported", len(t.Interfaces), maxInterfaces)
	}
	seen := map[string]bool{}
	for _, i := range t.Interfaces {
		if !validIfname(i.Name) || i.Name == "lo" {
			return fmt.Errorf("invalid interface name %q", i.Name)
		}
		if seen[i.Name] {
			return fmt.Errorf("interface %q declared twice", i.Name)
		}
		seen[i.Name] = true
		for _, a := range i.Addrs {
			if !unicast(a.Addr()) {
				return fmt.Errorf("interface %q: %s cannot be an interface address (multicast, broadcast, unspecified or loopback)", i.Name, a)
			}
		}
	}
	return nil
}
