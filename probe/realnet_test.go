package probe

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fwslot/fwslot/internal/nsutil"
)

// The real side of the differential tests: a router namespace with the
// ruleset loaded by plain `nft -f`, its interfaces with the topology's real
// prefixes, and one peer namespace per interface owning the addresses of the
// hosts on that side. Probe packets leave a peer's (or the router's) own IP
// stack, so routing, ARP and neighbour discovery are the kernel's; their fate
// is observed at the router's raw sockets (local delivery) and at the peers'
// packet sockets (forwarded, or a reject's answer). No trace table, no
// conntrack entries made up, nothing of the twin.

// realMark marks the packets the test sends itself; everything else a peer
// would say (RSTs and ICMP errors of its own stack) is dropped in the peer,
// so that the peers stay silent like hosts without listeners.
const realMark = 0x7771

type realIf struct {
	name  string
	ns    string
	cap   int // AF_PACKET on the peer's veth end
	send4 int // raw IPv4 send socket in the peer
	send6 int // raw IPv6 send socket in the peer
	gw4   netip.Addr
	gw6   netip.Addr
}

type realNet struct {
	router   string
	file     string
	stateful bool
	ifs      []*realIf
	byName   map[string]*realIf
	raw4     map[uint8]int
	raw6     map[uint8]int
	send4    int
	send6    int
	ct       *sockets
	buf, oob []byte
	fds      []int
	tr       *sockets      // nftrace listener in the router (realtrace_test.go)
	idx      *nftRuleIndex // the router's rules, to name the traced ones
	// wait is how long silence must last before a packet counts as dropped.
	wait time.Duration
	// sequential keeps state between packets: no reload, conntrack kept.
	sequential bool
	// unfilter flushes every filter and route base chain and sets its
	// policy to accept: connections of established probes are opened
	// under it, as if before the ruleset was loaded (NAT chains stay).
	unfilter string
}

func (rn *realNet) fd(fd int) int { rn.fds = append(rn.fds, fd); return fd }

// realHosts places every remote address the probes use on an interface:
// sources on their in interface, destinations (after dnat) on their out
// interface. Addresses of the router itself are left out.
func realHosts(topo Topology, probes []Probe) map[string][]netip.Addr {
	local := map[netip.Addr]bool{}
	for _, i := range topo.Interfaces {
		for _, a := range i.Addrs {
			local[a.Addr()] = true
		}
	}
	placed := map[netip.Addr]bool{}
	hosts := map[string][]netip.Addr{}
	put := func(ifname string, a netip.Addr) {
		if ifname == "" || local[a] || placed[a] || a.IsMulticast() {
			return
		}
		placed[a] = true
		hosts[ifname] = append(hosts[ifname], a)
	}
	for _, p := range probes {
		dst := p.Dst.Addr
		if p.DNAT != nil {
			dst = p.DNAT.Addr
		}
		put(p.Out, dst)
	}
	for _, p := range probes {
		put(p.In, p.Src.Addr)
	}
	return hosts
}

// gateway picks an address in p for the peer to own as the router's next
// hop: the last but one address of the prefix, avoiding taken ones.
func gateway(p netip.Prefix, taken map[netip.Addr]bool) netip.Addr {
	p = p.Masked()
	b := p.Addr().AsSlice()
	hostBits := p.Addr().BitLen() - p.Bits()
	for k := 1; k < 200 && k < 1<<min(hostBits, 16)-1; k++ {
		c := append([]byte(nil), b...)
		// set all host bits, then subtract k (broadcast minus k)
		for i := len(c)*8 - 1; i >= p.Bits(); i-- {
			c[i/8] |= 1 << (7 - i%8)
		}
		v := k
		for i := len(c) - 1; i >= 0 && v > 0; i-- {
			d := int(c[i]) - v%256
			v /= 256
			if d < 0 {
				d += 256
				v++
			}
			c[i] = byte(d)
		}
		a, _ := netip.AddrFromSlice(c)
		if !taken[a] && p.Contains(a) {
			return a
		}
	}
	return netip.Addr{}
}

// anyRoutes reports whether the topology names routes: then the real
// router routes exactly those (as the twin does), else a host route to
// every off-link host.
func anyRoutes(t Topology) bool {
	for _, i := range t.Interfaces {
		if len(i.Routes) > 0 {
			return true
		}
	}
	return false
}

func connected(ifc Interface, a netip.Addr) bool {
	for _, p := range ifc.Addrs {
		if p.Masked().Contains(a) {
			return true
		}
	}
	return false
}

// newRealNet builds the real topology for a ruleset file and the probes'
// hosts. Everything is removed when the test ends.
func newRealNet(t testing.TB, topo Topology, hosts map[string][]netip.Addr, file string) *realNet {
	t.Helper()
	rn := &realNet{byName: map[string]*realIf{}, raw4: map[uint8]int{}, raw6: map[uint8]int{},
		buf: make([]byte, 1<<16), oob: make([]byte, 512), file: file, wait: 60 * time.Millisecond}
	t.Cleanup(func() {
		for _, fd := range rn.fds {
			unix.Close(fd)
		}
		for _, ri := range rn.ifs {
			if err := nsutil.Delete(ri.ns); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
		if rn.router != "" {
			if err := nsutil.Delete(rn.router); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"limit rate", "quota", "meter", "update @", "add @", "ct count", "counter"} {
		if strings.Contains(string(src), w) {
			rn.stateful = true
		}
	}
	if rn.router, err = nsutil.Create("fwp-r-"); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// The twin's router settings: real hosts rate-limit ICMP errors too,
	// and the comparison must not depend on how many rejects came before.
	must(nsutil.Do(rn.router, func() error { return writeSysctls(routerSysctls()) }))
	var rb, routes strings.Builder
	taken := map[netip.Addr]bool{}
	for _, ifc := range topo.Interfaces {
		for _, a := range ifc.Addrs {
			taken[a.Addr()] = true
		}
		for _, h := range hosts[ifc.Name] {
			taken[h] = true
		}
	}
	for i, ifc := range topo.Interfaces {
		ri := &realIf{name: ifc.Name, cap: -1, send4: -1, send6: -1}
		rn.ifs = append(rn.ifs, ri)
		rn.byName[ifc.Name] = ri
		if ri.ns, err = nsutil.Create("fwp-q-"); err != nil {
			t.Fatal(err)
		}
		must(nsutil.Do(ri.ns, func() error { return writeSysctls(hostSysctls()) }))
		idx := ""
		if ifc.Index > 0 {
			idx = fmt.Sprintf(" index %d", ifc.Index)
		}
		fmt.Fprintf(&rb, "link add %s%s type veth peer name veth0 netns %s\nlink set %s up\n", ifc.Name, idx, ri.ns, ifc.Name)
		var pb strings.Builder
		pb.WriteString("link set veth0 up\n")
		var r4, r6 netip.Addr
		for _, a := range ifc.Addrs {
			if a.Addr().Is4() {
				fmt.Fprintf(&rb, "addr add %s dev %s\n", a, ifc.Name)
				if !r4.IsValid() {
					r4, ri.gw4 = a.Addr(), gateway(a, taken)
				}
			} else {
				fmt.Fprintf(&rb, "addr add %s dev %s nodad\n", a, ifc.Name)
				if !r6.IsValid() {
					r6, ri.gw6 = a.Addr(), gateway(a, taken)
				}
			}
		}
		if !r4.IsValid() {
			r4, ri.gw4 = netip.AddrFrom4([4]byte{169, 254, byte(i), 1}), netip.AddrFrom4([4]byte{169, 254, byte(i), 2})
			fmt.Fprintf(&rb, "addr add %s/24 dev %s\n", r4, ifc.Name)
		}
		if !r6.IsValid() {
			r6, ri.gw6 = netip.MustParseAddr("fe80::1"), netip.MustParseAddr("fe80::2")
			fmt.Fprintf(&rb, "addr add %s/64 dev %s nodad\n", r6, ifc.Name)
		}
		taken[ri.gw4], taken[ri.gw6] = true, true
		if ri.gw4.IsLinkLocalUnicast() {
			fmt.Fprintf(&pb, "addr add %s/24 dev veth0\n", ri.gw4)
		} else {
			fmt.Fprintf(&pb, "addr add %s/32 dev veth0\n", ri.gw4)
		}
		fmt.Fprintf(&pb, "addr add %s/64 dev veth0 nodad\n", ri.gw6)
		for _, h := range hosts[ifc.Name] {
			if h.Is4() {
				fmt.Fprintf(&pb, "addr add %s/32 dev veth0\n", h)
			} else {
				fmt.Fprintf(&pb, "addr add %s/128 dev veth0 nodad\n", h)
			}
			if !connected(ifc, h) && len(ifc.Routes) == 0 && !anyRoutes(topo) {
				gw := ri.gw4
				if h.Is6() {
					gw = ri.gw6
				}
				fmt.Fprintf(&routes, "route replace %s via %s dev %s onlink\n", hostPrefix(h), gw, ifc.Name)
			}
		}
		for _, r := range ifc.Routes {
			gw := ri.gw4
			if r.Addr().Is6() {
				gw = ri.gw6
			}
			fmt.Fprintf(&routes, "route replace %s via %s dev %s onlink\n", r, gw, ifc.Name)
		}
		fmt.Fprintf(&pb, "route add 0.0.0.0/0 via %s dev veth0 onlink\nroute add ::/0 via %s dev veth0 onlink\n", r4, r6)
		must(ipBatch(rn.router, rb.String()))
		rb.Reset()
		must(ipBatch(ri.ns, pb.String()))
		// The peer's own stack stays silent: only the test's packets leave.
		_, err := nftOutputNamed(ri.ns, peerQuiet, "-f", "-")
		must(err)
	}
	must(ipBatch(rn.router, routes.String()))
	must(nftInNamed(rn.router, "-I", filepath.Dir(file), "-f", file)) // relative includes as source.Load reads them
	must(rn.readFilterChains())
	rn.openSockets(t)
	rn.openTrace(t)
	return rn
}

// peerQuiet keeps a peer's own stack from answering what reaches it.
var peerQuiet = fmt.Sprintf(`table inet fwq {
	chain out {
		type filter hook output priority -500; policy accept;
		meta mark 0x%x accept
		meta l4proto { tcp, udp, icmp, sctp } drop
		icmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem, echo-request, echo-reply } drop
	}
}
`, realMark)

// routerQuiet keeps the router's own stack from closing a connection the
// test is setting up (a RST for a SYN-ACK no socket waits for). It is only
// in place while an established probe's connection is being set up.
//
// Its `ct state` match keeps conntrack running while the filter chains are
// flushed (their own ct matches gone, the kernel would stop tracking).
var routerQuiet = fmt.Sprintf(`table inet fwq {
	chain out {
		type filter hook output priority -500; policy accept;
		ct state established counter
		meta mark 0x%x accept
		tcp flags & rst == rst drop
		icmp type destination-unreachable drop
		icmpv6 type destination-unreachable drop
	}
}
`, realMark)

func (rn *realNet) openSockets(t testing.TB) {
	t.Helper()
	err := nsutil.Do(rn.router, func() error {
		for _, p := range probeProtos {
			if p != 58 {
				fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(p))
				if err != nil {
					return fmt.Errorf("raw socket: %w", err)
				}
				rn.raw4[p] = rn.fd(fd)
			}
			if p != 1 {
				fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(p))
				if err != nil {
					return fmt.Errorf("raw socket: %w", err)
				}
				rn.raw6[p] = rn.fd(fd)
				if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1); err != nil {
					return err
				}
			}
		}
		var err error
		if rn.send4, rn.send6, err = rawSenders(); err != nil {
			return err
		}
		rn.fd(rn.send4)
		rn.fd(rn.send6)
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
		if err != nil {
			return fmt.Errorf("conntrack socket: %w", err)
		}
		rn.fd(fd)
		if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			return err
		}
		tv := unix.Timeval{Sec: 2}
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return err
		}
		rn.ct = &sockets{ct: fd}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, ri := range rn.ifs {
		err := nsutil.Do(ri.ns, func() error {
			ifc, err := net.InterfaceByName("veth0")
			if err != nil {
				return err
			}
			fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
			if err != nil {
				return err
			}
			ri.cap = rn.fd(fd)
			if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifc.Index}); err != nil {
				return err
			}
			if ri.send4, ri.send6, err = rawSenders(); err != nil {
				return err
			}
			rn.fd(ri.send4)
			rn.fd(ri.send6)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// rawSenders opens IPPROTO_RAW sockets (header included) marked realMark.
func rawSenders() (int, int, error) {
	s4, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		return -1, -1, fmt.Errorf("raw send socket: %w", err)
	}
	s6, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		unix.Close(s4)
		return -1, -1, fmt.Errorf("raw send socket: %w", err)
	}
	_ = unix.SetsockoptInt(s6, unix.IPPROTO_IPV6, ipv6HdrIncl, 1)
	for _, fd := range []int{s4, s6} {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, realMark); err != nil {
			unix.Close(s4)
			unix.Close(s6)
			return -1, -1, fmt.Errorf("SO_MARK: %w", err)
		}
	}
	return s4, s6, nil
}

// sendFrom sends an IP packet from the router (ifname "") or from the peer
// of ifname, through that namespace's own routing and neighbour tables.
func (rn *realNet) sendFrom(ifname string, sp pktSpec) error {
	s4, s6 := rn.send4, rn.send6
	if ifname != "" {
		ri := rn.byName[ifname]
		if ri == nil {
			return fmt.Errorf("no interface %s in the real topology", ifname)
		}
		s4, s6 = ri.send4, ri.send6
	}
	for _, pkt := range buildPackets(sp) {
		var err error
		if sp.dst.Is6() {
			err = unix.Sendto(s6, pkt, 0, &unix.SockaddrInet6{Addr: sp.dst.As16()})
		} else {
			err = unix.Sendto(s4, pkt, 0, &unix.SockaddrInet4{Addr: sp.dst.As4()})
		}
		if err != nil && !errors.Is(err, unix.EPERM) {
			return fmt.Errorf("send from %q: %w", ifname, err)
		}
	}
	return nil
}

// realSeen is what became of one real packet.
type realSeen struct {
	outcome Outcome
	pk      *pktInfo
	via     string
	events  []traceEvent // the packet's own nftrace in the router
}

// watch waits for the packet tagged sp.tag (or its answer): delivered to
// the router, captured at a peer, or answered; silence for rn.wait means
// dropped. from is where it was sent ("" for the router).
func (rn *realNet) watch(sp pktSpec, from string) (realSeen, error) {
	o := &observation{spec: sp}
	o.probe.Src, o.probe.Dst = Endpoint{Addr: sp.src, Port: sp.sport}, Endpoint{Addr: sp.dst, Port: sp.dport}
	deadline := time.Now().Add(rn.wait)
	var seen realSeen
	for {
		if err := rn.readRouter(o, from); err != nil {
			return seen, err
		}
		if err := rn.readPeers(o, from); err != nil {
			return seen, err
		}
		if err := rn.readRouter(o, from); err != nil {
			return seen, err
		}
		if err := rn.readTrace(o); err != nil {
			return seen, err
		}
		switch {
		case o.delivered != nil:
			return realSeen{outcome: Delivered, pk: o.delivered, events: o.events}, nil
		case o.forwarded != nil:
			return realSeen{outcome: Forwarded, pk: o.forwarded, via: o.via, events: o.events}, nil
		case o.rejected != nil:
			return realSeen{outcome: Rejected, pk: o.rejected, events: o.events}, nil
		}
		if !time.Now().Before(deadline) {
			return realSeen{outcome: Dropped, events: o.events}, nil
		}
		time.Sleep(time.Millisecond)
	}
}

func (rn *realNet) readRouter(o *observation, from string) error {
	return drainRaw(rn.raw4, rn.raw6, rn.buf, rn.oob, func(pk pktInfo, v6NoHeader bool) {
		if o != nil {
			rn.local(o, pk, v6NoHeader, from)
		}
	})
}

func (rn *realNet) local(o *observation, pk pktInfo, v6NoHeader bool, from string) {
	switch {
	case o.isAnswer(pk):
		if from == "" && o.rejected == nil {
			o.rejected = &pk
		}
	case from != "" && o.isProbe(pk, v6NoHeader):
		// A router's own packet looping back is not a delivery.
		if o.delivered == nil && (!v6NoHeader || pk.dst == o.spec.dst || !pk.dst.IsValid()) {
			o.delivered = &pk
		}
	}
}

func (rn *realNet) readPeers(o *observation, from string) error {
	for _, ri := range rn.ifs {
		if err := drainPeer(ri.cap, rn.buf, o, ri.name, ri.name != from); err != nil {
			return err
		}
	}
	return nil
}
