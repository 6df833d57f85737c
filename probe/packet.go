package probe

import (
	"encoding/binary"
	"hash/crc32"
	"net/netip"
)

// pktSpec is everything needed to build one probe packet.
type pktSpec struct {
	src, dst     netip.Addr
	proto        uint8
	sport, dport uint16
	flags        uint8 // tcp
	icmpType     uint8 // icmp, icmpv6
	icmpCode     uint8
	tag          uint32 // identifies the probe: carried in the payload marker (see markerAt)
	seq, ack     uint32 // tcp sequence and acknowledgement numbers; 0: derived from tag
	ttl          uint8  // IPv4 TTL or IPv6 hop limit; 0: 64
	dscp         uint8
	badCsum      bool     // a wrong transport checksum (state invalid)
	quote        *pktSpec // the packet an ICMP error quotes (state related)
	frag         Frag     // send the datagram's fragments (see Frag)
	fragID       uint32   // their identification (fragIDFor)
}

var probePayload = []byte("fwslot probe")

// probeMagic starts the marker that identifies a probe packet: the 4 bytes
// "fwsl" and the probe's 32-bit tag, the first payload bytes after the
// transport header (TCP, UDP, ICMP echo and bare errors, ESP, GRE, IGMP,
// other protocols at offset 0; a related ICMP error carries it in the udp
// payload of the packet it quotes). Headers carry no tag, so every header
// field a rule can match is the probe's own or a fixed value. SCTP
// carries the tag in its INIT chunk's initiate tag instead (an INIT must
// be the only chunk).
const probeMagic = 0x6677736c

// marker is the payload prefix of a probe packet with tag.
func marker(tag uint32) []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, probeMagic), tag)
}

// withMarker is the probe payload: marker then text.
func withMarker(tag uint32) []byte { return append(marker(tag), probePayload...) }

// ipv4Header is the IPv4 header of s for n bytes of payload, with
// identification id and flags/fragment offset fo, checksummed; it has
// room for the payload to be appended.
func ipv4Header(s pktSpec, ttl uint8, n int, id, fo uint16) []byte {
	b := make([]byte, 20, 20+n)
	b[0] = 0x45
	b[1] = s.dscp << 2
	binary.BigEndian.PutUint16(b[2:], uint16(20+n))
	binary.BigEndian.PutUint16(b[4:], id)
	binary.BigEndian.PutUint16(b[6:], fo)
	b[8] = ttl
	b[9] = s.proto
	src, dst := s.src.As4(), s.dst.As4()
	copy(b[12:], src[:])
	copy(b[16:], dst[:])
	binary.BigEndian.PutUint16(b[10:], ^csumAdd(0, b))
	return b
}

// buildIP returns the IP packet (header included) for a probe.
func buildIP(s pktSpec) []byte {
	l4 := buildL4(s)
	ttl := s.ttl
	if ttl == 0 {
		ttl = 64
	}
	var b []byte
	if s.src.Is4() {
		b = ipv4Header(s, ttl, len(l4), 0, 0x4000) // DF; ID 0
	} else {
		b = make([]byte, 40, 40+len(l4))
		binary.BigEndian.PutUint32(b[0:], 6<<28|uint32(s.dscp)<<22) // flow label 0
		binary.BigEndian.PutUint16(b[4:], uint16(len(l4)))
		b[6] = s.proto
		b[7] = ttl
		src, dst := s.src.As16(), s.dst.As16()
		copy(b[8:], src[:])
		copy(b[24:], dst[:])
	}
	return append(b, l4...)
}

func buildL4(s pktSpec) []byte {
	var b []byte
	csumAt := -1
	switch s.proto {
	case 6:
		b = make([]byte, 20, 28)
		b = append(b, marker(s.tag)...)
		if s.frag != FragNone {
			// Data after the marker: the first fragment ends after it.
			b = append(b, probePayload...)
		}
		binary.BigEndian.PutUint16(b[0:], s.sport)
		binary.BigEndian.PutUint16(b[2:], s.dport)
		seq, ack := s.seq, s.ack
		if seq == 0 {
			seq = 0x10000000 | s.tag
		}
		if ack == 0 {
			ack = 0x20000000 | s.tag
		}
		binary.BigEndian.PutUint32(b[4:], seq)
		if s.flags&FlagACK != 0 {
			binary.BigEndian.PutUint32(b[8:], ack)
		}
		b[12] = 5 << 4
		b[13] = s.flags
		binary.BigEndian.PutUint16(b[14:], 64240)
		csumAt = 16
	case 17:
		b = make([]byte, 8, 8+8+len(probePayload))
		b = append(b, withMarker(s.tag)...)
		binary.BigEndian.PutUint16(b[0:], s.sport)
		binary.BigEndian.PutUint16(b[2:], s.dport)
		binary.BigEndian.PutUint16(b[4:], uint16(len(b)))
		csumAt = 6
	case 1, 58:
		b = make([]byte, 8, 8+len(probePayload))
		b[0], b[1] = s.icmpType, s.icmpCode
		if s.quote != nil {
			// An ICMP error: the quoted packet, and an MTU where the
			// type carries one.
			switch {
			case s.proto == 58 && s.icmpType == 2:
				binary.BigEndian.PutUint32(b[4:], 1280)
			case s.proto == 1 && s.icmpType == 3 && s.icmpCode == 4:
				binary.BigEndian.PutUint16(b[6:], 576)
			}
			b = append(b, buildIP(*s.quote)...)
		} else {
			b = append(b, withMarker(s.tag)...)
			binary.BigEndian.PutUint16(b[4:], s.sport) // echo id: chosen per probe like a source port
			binary.BigEndian.PutUint16(b[6:], 1)
		}
		csumAt = 2
	case 132:
		// Common header plus an INIT chunk.
		b = make([]byte, 32)
		binary.BigEndian.PutUint16(b[0:], s.sport)
		binary.BigEndian.PutUint16(b[2:], s.dport)
		b[12] = 1 // INIT
		binary.BigEndian.PutUint16(b[14:], 20)
		binary.BigEndian.PutUint32(b[16:], 0x10000000|s.tag) // initiate tag
		binary.BigEndian.PutUint32(b[20:], 65535)            // a_rwnd
		binary.BigEndian.PutUint16(b[24:], 1)
		binary.BigEndian.PutUint16(b[26:], 1)
		binary.BigEndian.PutUint32(b[28:], 1) // initial TSN
		binary.LittleEndian.PutUint32(b[8:], crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
		return b
	case 2: // IGMPv2 membership report for the destination group
		b = make([]byte, 8)
		b[0] = 0x16
		if s.dst.Is4() {
			d := s.dst.As4()
			copy(b[4:], d[:])
		}
		b = append(b, marker(s.tag)...)
		binary.BigEndian.PutUint16(b[2:], ^csumAdd(0, b))
		return b
	case 47: // GRE without options carrying an IPv4 payload
		return append([]byte{0, 0, 0x08, 0}, withMarker(s.tag)...)
	case 50: // ESP: SPI, sequence number, opaque payload
		b = binary.BigEndian.AppendUint32(nil, 0x100)
		b = binary.BigEndian.AppendUint32(b, 1)
		return append(b, withMarker(s.tag)...)
	default:
		return withMarker(s.tag)
	}
	var sum uint32
	if s.proto != 1 { // ICMPv4 has no pseudo header
		sum = pseudoSum(s.src, s.dst, s.proto, len(b))
	}
	c := ^csumAdd(sum, b)
	if c == 0 && s.proto == 17 {
		c = 0xffff
	}
	if s.badCsum {
		c++
		if c == 0 {
			c = 2
		}
	}
	binary.BigEndian.PutUint16(b[csumAt:], c)
	return b
}

func pseudoSum(src, dst netip.Addr, proto uint8, n int) uint32 {
	sum := uint32(csumAdd(0, src.AsSlice()))
	sum += uint32(csumAdd(0, dst.AsSlice()))
	return sum + uint32(proto) + uint32(n)
}

// csumAdd adds b to a ones' complement sum and folds it to 16 bits.
func csumAdd(sum uint32, b []byte) uint16 {
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}

// pktInfo is a parsed packet seen on the wire or by a raw socket.
type pktInfo struct {
	v6           bool
	src, dst     netip.Addr
	proto        uint8
	tag          uint32
	sport, dport uint16 // ports, or icmp id in sport
	tcpFlags     uint8
	icmpType     uint8
	icmpCode     uint8
	inner        *pktInfo // the packet quoted in an ICMP error
	frag         fragInfo
}

// parseIP parses an IP packet; ok is false for anything that is not a
// complete IPv4 or IPv6 header.
func parseIP(b []byte) (p pktInfo, ok bool) {
	if len(b) < 1 {
		return p, false
	}
	var l4 []byte
	switch b[0] >> 4 {
	case 4:
		ihl := int(b[0]&0x0f) * 4
		if len(b) < 20 || ihl < 20 || len(b) < ihl {
			return p, false
		}
		p.src = netip.AddrFrom4([4]byte(b[12:16]))
		p.dst = netip.AddrFrom4([4]byte(b[16:20]))
		p.proto = b[9]
		l4 = b[ihl:]
		fo := binary.BigEndian.Uint16(b[6:])
		p.frag = fragInfo{isFrag: fo&0x3fff != 0, id: uint32(binary.BigEndian.Uint16(b[4:])),
			off: int(fo&0x1fff) * 8, more: fo&0x2000 != 0, length: len(l4)}
		if tot := int(binary.BigEndian.Uint16(b[2:])); tot >= ihl && tot <= len(b) {
			p.frag.length = tot - ihl
		}
	case 6:
		if len(b) < 40 {
			return p, false
		}
		p.v6 = true
		p.src = netip.AddrFrom16([16]byte(b[8:24]))
		p.dst = netip.AddrFrom16([16]byte(b[24:40]))
		p.proto = b[6]
		l4 = b[40:]
		if p.proto == 44 && len(l4) >= 8 { // a fragment header
			fo := binary.BigEndian.Uint16(l4[2:])
			p.proto = l4[0]
			p.frag = fragInfo{isFrag: true, id: binary.BigEndian.Uint32(l4[4:]), off: int(fo>>3) * 8, more: fo&1 != 0}
			l4 = l4[8:]
			p.frag.length = len(l4)
			if pl := int(binary.BigEndian.Uint16(b[4:])); pl >= 8 && 40+pl <= len(b) {
				p.frag.length = pl - 8
			}
		}
	default:
		return p, false
	}
	if p.frag.off == 0 { // a later fragment carries no transport header
		parseL4(&p, l4)
	}
	return p, true
}

// markerAt is where a probe packet's marker starts in the transport
// segment l4 (-1: this protocol has none there).
func markerAt(proto uint8, l4 []byte) int {
	switch proto {
	case 6:
		if len(l4) < 13 {
			return -1
		}
		return int(l4[12]>>4) * 4
	case 17, 1, 58, 50, 2:
		return 8
	case 47:
		return 4
	case 132:
		return -1
	}
	return 0
}

// tagOf reads the probe tag from a transport segment (ok false: no marker).
func tagOf(proto uint8, l4 []byte) (uint32, bool) {
	if proto == 132 { // SCTP: the initiate tag of an INIT chunk
		if len(l4) >= 20 && l4[12] == 1 && l4[16]>>4 == 1 {
			return binary.BigEndian.Uint32(l4[16:]) & 0x0fffffff, true
		}
		return 0, false
	}
	at := markerAt(proto, l4)
	if at < 0 || len(l4) < at+8 || binary.BigEndian.Uint32(l4[at:]) != probeMagic {
		return 0, false
	}
	return binary.BigEndian.Uint32(l4[at+4:]), true
}

// parseL4 fills ports, flags and icmp fields (and the quoted packet of an
// ICMP error), and the probe tag, from a transport segment.
func parseL4(p *pktInfo, l4 []byte) {
	if t, ok := tagOf(p.proto, l4); ok {
		p.tag = t
	}
	switch p.proto {
	case 6, 17, 132:
		if len(l4) >= 4 {
			p.sport = binary.BigEndian.Uint16(l4[0:])
			p.dport = binary.BigEndian.Uint16(l4[2:])
		}
		if p.proto == 6 && len(l4) >= 14 {
			p.tcpFlags = l4[13]
		}
	case 1, 58:
		if len(l4) >= 8 {
			p.icmpType, p.icmpCode = l4[0], l4[1]
			p.sport = binary.BigEndian.Uint16(l4[4:])
			if isICMPError(p.proto, p.icmpType) {
				if in, ok := parseIP(l4[8:]); ok {
					p.inner = &in
				}
			}
		}
	}
}

func isICMPError(proto, typ uint8) bool {
	if proto == 1 {
		return typ == 3 || typ == 11 || typ == 12
	}
	return typ >= 1 && typ <= 4
}

// isUnreachable reports whether p is an ICMP or ICMPv6 destination
// unreachable (the answer of `reject` with icmp).
func (p pktInfo) isUnreachable() bool {
	return (p.proto == 1 && p.icmpType == 3) || (p.proto == 58 && p.icmpType == 1)
}
