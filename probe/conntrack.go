package probe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// nlAttrs builds netlink attributes.
type nlAttrs []byte

func (a *nlAttrs) put(typ uint16, data []byte) {
	n := 4 + len(data)
	var h [4]byte
	binary.NativeEndian.PutUint16(h[0:], uint16(n))
	binary.NativeEndian.PutUint16(h[2:], typ)
	*a = append(*a, h[:]...)
	*a = append(*a, data...)
	for len(*a)%4 != 0 {
		*a = append(*a, 0)
	}
}

func (a *nlAttrs) nest(typ uint16, inner nlAttrs) { a.put(typ|unix.NLA_F_NESTED, inner) }

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// ctnetlink attribute numbers (linux/netfilter/nfnetlink_conntrack.h).
const (
	ctaTupleOrig  = 1
	ctaTupleReply = 2
	ctaStatus     = 3
	ctaProtoinfo  = 4
	ctaTimeout    = 7
	ctaNATSrc     = 6
	ctaNATDst     = 13

	ctaNATv4MinIP      = 1
	ctaNATv4MaxIP      = 2
	ctaNATProto        = 3
	ctaNATv6MinIP      = 4
	ctaNATv6MaxIP      = 5
	ctaProtoNATPortMin = 1
	ctaProtoNATPortMax = 2
	ctaTupleIP         = 1
	ctaTupleProto      = 2
	ctaIPv4Src         = 1
	ctaIPv4Dst         = 2
	ctaIPv6Src         = 3
	ctaIPv6Dst         = 4
	ctaProtoNum        = 1
	ctaProtoSrc        = 2
	ctaProtoDst        = 3
	ctaICMPID          = 4
	ctaICMPType        = 5
	ctaICMPCode        = 6
	ctaICMPv6ID        = 7
	ctaICMPv6Type      = 8
	ctaICMPv6Code      = 9
	ctaProtoTCP        = 1
	ctaTCPState        = 1
	ctaTCPFlagsO       = 4
	ctaTCPFlagsR       = 5

	ipsSeenReply          = 1 << 1
	ipsAssured            = 1 << 2
	ipsConfirmed          = 1 << 3
	tcpConntrackEstab     = 3
	ipCTTCPFlagBeLiberal  = 0x08
	ctEstablishedLifetime = 300
)

// ctRequest sends one ctnetlink request and waits for its acknowledgement.
func (s *sockets) ctRequest(msgType uint16, family uint8, attrs nlAttrs) error {
	s.ctSeq++
	msg := make([]byte, unix.SizeofNlMsghdr+4, unix.SizeofNlMsghdr+4+len(attrs))
	msg = append(msg, attrs...)
	flags := uint16(unix.NLM_F_REQUEST | unix.NLM_F_ACK)
	if msgType == nfnlSubsysCT<<8|ipctnlMsgCTNew {
		flags |= unix.NLM_F_CREATE | unix.NLM_F_EXCL
	}
	binary.NativeEndian.PutUint32(msg[0:], uint32(len(msg)))
	binary.NativeEndian.PutUint16(msg[4:], msgType)
	binary.NativeEndian.PutUint16(msg[6:], flags)
	binary.NativeEndian.PutUint32(msg[8:], s.ctSeq)
	msg[16] = family
	if err := unix.Sendto(s.ct, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("ctnetlink send: %w", err)
	}
	buf := make([]byte, 8192)
	for {
		n, _, err := unix.Recvfrom(s.ct, buf, 0)
		if err != nil {
			return fmt.Errorf("ctnetlink receive: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return fmt.Errorf("ctnetlink parse: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != s.ctSeq || m.Header.Type != unix.NLMSG_ERROR {
				continue
			}
			if len(m.Data) < 4 {
				return fmt.Errorf("ctnetlink: short error message")
			}
			if code := int32(binary.NativeEndian.Uint32(m.Data)); code != 0 {
				if msgType == nfnlSubsysCT<<8|ipctnlMsgCTDel && syscall.Errno(-code) == unix.ENOENT {
					return nil // flushing an empty table
				}
				return fmt.Errorf("ctnetlink: %w", syscall.Errno(-code))
			}
			return nil
		}
	}
}

// ctFlush removes every conntrack entry of the twin, so no probe's state
// leaks into the next.
func (s *sockets) ctFlush() error {
	if err := s.ctRequest(nfnlSubsysCT<<8|ipctnlMsgCTDel, unix.AF_UNSPEC, nil); err != nil {
		return fmt.Errorf("flush conntrack: %w", err)
	}
	return nil
}

// ctFlow is the connection a `state established` probe belongs to: its
// original tuple as the opening packet had it, and the NAT the router
// applied to that packet (zero Addr: none).
type ctFlow struct {
	src, dst     netip.Addr
	sport, dport uint16 // ports, or icmp id in sport
	icmpType     uint8  // type of the original direction's packets
	snat, dnat   Endpoint
}

// flowFor reads the connection of an established probe. A probe in the
// reply direction (see replyDirection) answers a packet its destination
// sent: with a dnat expectation D the probe is the answer to a connection
// that D opened and the router source-natted to the probe's destination
// (a masquerade reply). A probe in the original direction opened the
// connection itself, with the snat and dnat it expects (an established
// port forward).
func flowFor(sp pktSpec, p Probe) ctFlow {
	if !replyDirection(p) {
		f := ctFlow{src: sp.src, dst: sp.dst, sport: sp.sport, dport: sp.dport, icmpType: sp.icmpType}
		if p.SNAT != nil {
			f.snat = *p.SNAT
		}
		if p.DNAT != nil {
			f.dnat = *p.DNAT
		}
		return f
	}
	f := ctFlow{src: sp.dst, dst: sp.src, sport: sp.dport, dport: sp.sport}
	switch sp.proto {
	case 1:
		f.icmpType = 8
	case 58:
		f.icmpType = 128
	}
	if p.DNAT != nil { // the opener was D, seen by the world as the probe's destination
		f.src = p.DNAT.Addr
		if p.DNAT.Port != 0 && sp.proto != 1 && sp.proto != 58 {
			f.sport = p.DNAT.Port
		}
		f.snat = Endpoint{Addr: sp.dst, Port: sp.dport}
	}
	if p.SNAT != nil { // the opener addressed S, which the router sent to the probe's source
		f.dst = p.SNAT.Addr
		if p.SNAT.Port != 0 && sp.proto != 1 && sp.proto != 58 {
			f.dport = p.SNAT.Port
		}
		f.dnat = Endpoint{Addr: sp.src, Port: sp.sport}
	}
	return f
}

// ctEstablish inserts an established conntrack entry for the probe's
// connection (see flowFor). With NAT the kernel computes the entry's reply
// tuple from the mapping, exactly as for a connection it translated
// itself, so the probe's packet is translated like a real one.
func (s *sockets) ctEstablish(sp pktSpec, p Probe) error {
	icmp := sp.proto == 1 || sp.proto == 58
	tuple := func(src, dst netip.Addr, sport, dport uint16, icmpType uint8) nlAttrs {
		var ip, proto, t nlAttrs
		if src.Is4() {
			ip.put(ctaIPv4Src, src.AsSlice())
			ip.put(ctaIPv4Dst, dst.AsSlice())
		} else {
			ip.put(ctaIPv6Src, src.AsSlice())
			ip.put(ctaIPv6Dst, dst.AsSlice())
		}
		proto.put(ctaProtoNum, []byte{sp.proto})
		switch sp.proto {
		case 1:
			proto.put(ctaICMPID, be16(sport))
			proto.put(ctaICMPType, []byte{icmpType})
			proto.put(ctaICMPCode, []byte{0})
		case 58:
			proto.put(ctaICMPv6ID, be16(sport))
			proto.put(ctaICMPv6Type, []byte{icmpType})
			proto.put(ctaICMPv6Code, []byte{0})
		default:
			proto.put(ctaProtoSrc, be16(sport))
			proto.put(ctaProtoDst, be16(dport))
		}
		t.nest(ctaTupleIP, ip)
		t.nest(ctaTupleProto, proto)
		return t
	}
	f := flowFor(sp, p)
	if icmp {
		f.sport = sp.sport // the echo id of the probe's packets
	}
	var replyType uint8
	switch {
	case sp.proto == 1 && f.icmpType == 8:
		replyType = 0
	case sp.proto == 58 && f.icmpType == 128:
		replyType = 129
	case icmp:
		return fmt.Errorf("state established needs an echo-request or echo-reply for %s", protoName(sp.proto))
	case sp.proto == 132:
		return fmt.Errorf("state established is not supported for sctp")
	}
	var a nlAttrs
	if icmp {
		a.nest(ctaTupleOrig, tuple(f.src, f.dst, f.sport, 0, f.icmpType))
		a.nest(ctaTupleReply, tuple(f.dst, f.src, f.sport, 0, replyType))
	} else {
		a.nest(ctaTupleOrig, tuple(f.src, f.dst, f.sport, f.dport, 0))
		a.nest(ctaTupleReply, tuple(f.dst, f.src, f.dport, f.sport, 0))
	}
	nat := func(typ uint16, e Endpoint) {
		var n nlAttrs
		if e.Addr.Is4() {
			n.put(ctaNATv4MinIP, e.Addr.AsSlice())
			n.put(ctaNATv4MaxIP, e.Addr.AsSlice())
		} else {
			n.put(ctaNATv6MinIP, e.Addr.AsSlice())
			n.put(ctaNATv6MaxIP, e.Addr.AsSlice())
		}
		if e.Port != 0 && !icmp {
			var pr nlAttrs
			pr.put(ctaProtoNATPortMin, be16(e.Port))
			pr.put(ctaProtoNATPortMax, be16(e.Port))
			n.nest(ctaNATProto, pr)
		}
		a.nest(typ, n)
	}
	if f.snat.Addr.IsValid() {
		nat(ctaNATSrc, f.snat)
	}
	if f.dnat.Addr.IsValid() {
		nat(ctaNATDst, f.dnat)
	}
	statusAt := len(a)
	a.put(ctaStatus, be32(ipsSeenReply|ipsAssured|ipsConfirmed))
	a.put(ctaTimeout, be32(ctEstablishedLifetime))
	if sp.proto == 6 {
		var tcp, pi nlAttrs
		tcp.put(ctaTCPState, []byte{tcpConntrackEstab})
		tcp.put(ctaTCPFlagsO, []byte{ipCTTCPFlagBeLiberal, ipCTTCPFlagBeLiberal})
		tcp.put(ctaTCPFlagsR, []byte{ipCTTCPFlagBeLiberal, ipCTTCPFlagBeLiberal})
		pi.nest(ctaProtoTCP, tcp)
		a.nest(ctaProtoinfo, pi)
	}
	family := uint8(unix.AF_INET)
	if sp.src.Is6() {
		family = unix.AF_INET6
	}
	err := s.ctRequest(nfnlSubsysCT<<8|ipctnlMsgCTNew, family, a)
	if errors.Is(err, unix.EBUSY) {
		// Kernels differ on whether a created entry is already marked
		// confirmed; the status may not flip that bit either way.
		copy(a[statusAt+4:], be32(ipsSeenReply|ipsAssured))
		err = s.ctRequest(nfnlSubsysCT<<8|ipctnlMsgCTNew, family, a)
	}
	if err != nil {
		if f.snat.Addr.IsValid() || f.dnat.Addr.IsValid() {
			return fmt.Errorf("insert established conntrack entry with NAT (does the ruleset have a nat chain for this family?): %w", err)
		}
		return fmt.Errorf("insert established conntrack entry: %w", err)
	}
	return nil
}

func protoName(p uint8) string {
	switch p {
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 1:
		return "icmp"
	case 58:
		return "icmpv6"
	case 132:
		return "sctp"
	}
	return fmt.Sprintf("protocol %d", p)
}

// replyDirection reports whether a `state established` probe is read as a
// packet of the connection's reply direction: a tcp/udp/sctp packet from a
// lower port to a higher one (a server answering, 443 -> 40000), or an
// echo-reply. Otherwise the probe's own packet opened the connection.
func replyDirection(p Probe) bool {
	switch p.Proto {
	case ICMP:
		return p.ICMPType == 0
	case ICMPv6:
		return p.ICMPType == 129
	}
	return p.Src.Port != 0 && p.Dst.Port != 0 && p.Src.Port < p.Dst.Port
}
