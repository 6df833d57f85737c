package probe

import (
	"encoding/binary"
	"errors"
	"fmt"
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
	ctaTupleIP    = 1
	ctaTupleProto = 2
	ctaIPv4Src    = 1
	ctaIPv4Dst    = 2
	ctaIPv6Src    = 3
	ctaIPv6Dst    = 4
	ctaProtoNum   = 1
	ctaProtoSrc   = 2
	ctaProtoDst   = 3
	ctaICMPID     = 4
	ctaICMPType   = 5
	ctaICMPCode   = 6
	ctaICMPv6ID   = 7
	ctaICMPv6Type = 8
	ctaICMPv6Code = 9
	ctaProtoTCP   = 1
	ctaTCPState   = 1
	ctaTCPFlagsO  = 4
	ctaTCPFlagsR  = 5

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

// ctEstablish inserts an established conntrack entry whose original
// direction is the probe packet's tuple, so the packet is seen as part of
// an established connection. NAT is not part of the entry.
func (s *sockets) ctEstablish(sp pktSpec) error {
	tuple := func(src, dst [2]uint16, a, b []byte, icmpType uint8) nlAttrs {
		var ip, proto, t nlAttrs
		if len(a) == 4 {
			ip.put(ctaIPv4Src, a)
			ip.put(ctaIPv4Dst, b)
		} else {
			ip.put(ctaIPv6Src, a)
			ip.put(ctaIPv6Dst, b)
		}
		proto.put(ctaProtoNum, []byte{sp.proto})
		switch sp.proto {
		case 1:
			proto.put(ctaICMPID, be16(src[0]))
			proto.put(ctaICMPType, []byte{icmpType})
			proto.put(ctaICMPCode, []byte{0})
		case 58:
			proto.put(ctaICMPv6ID, be16(src[0]))
			proto.put(ctaICMPv6Type, []byte{icmpType})
			proto.put(ctaICMPv6Code, []byte{0})
		default:
			proto.put(ctaProtoSrc, be16(src[0]))
			proto.put(ctaProtoDst, be16(dst[0]))
		}
		t.nest(ctaTupleIP, ip)
		t.nest(ctaTupleProto, proto)
		return t
	}
	var replyType uint8
	switch {
	case sp.proto == 1 && sp.icmpType == 8:
		replyType = 0
	case sp.proto == 58 && sp.icmpType == 128:
		replyType = 129
	case sp.proto == 1 || sp.proto == 58:
		return fmt.Errorf("state established needs an echo-request for %s", protoName(sp.proto))
	case sp.proto == 132:
		return fmt.Errorf("state established is not supported for sctp")
	}
	src, dst := sp.src.AsSlice(), sp.dst.AsSlice()
	id := uint16(sp.tag)
	var a nlAttrs
	if sp.proto == 1 || sp.proto == 58 {
		a.nest(ctaTupleOrig, tuple([2]uint16{id}, [2]uint16{}, src, dst, sp.icmpType))
		a.nest(ctaTupleReply, tuple([2]uint16{id}, [2]uint16{}, dst, src, replyType))
	} else {
		a.nest(ctaTupleOrig, tuple([2]uint16{sp.sport}, [2]uint16{sp.dport}, src, dst, 0))
		a.nest(ctaTupleReply, tuple([2]uint16{sp.dport}, [2]uint16{sp.sport}, dst, src, 0))
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
