package probe

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"time"
)

// Frag says which fragments of a probe's datagram are sent. A fragment
// probe describes the whole datagram (addresses, ports, flags as without
// `frag`); the kernel decides what each fragment meets:
//
//   - With conntrack in use in the packet's family (the ruleset matches
//     `ct`, or has a nat chain), defragmentation at priority -400 (in
//     prerouting and output) reassembles the datagram: chains below -400
//     see each fragment, every later chain sees the reassembled datagram,
//     without fragment bits (`ip frag-off`) or fragment header
//     (`exthdr frag`). A forwarded datagram is fragmented again on output.
//   - Without conntrack each fragment goes through every chain on its own;
//     a non-first fragment carries no transport header, so rules on ports,
//     flags or icmp types never match it (`meta l4proto` does). IPv4
//     reassembles before the input hook; IPv6 after it, so an IPv6 input
//     chain sees each fragment.
//
// A datagram counts as delivered when the reassembled datagram reaches a
// local socket, as forwarded when every byte it carries left through the
// out interface; a lone fragment (first or last) is never delivered: the
// kernel holds it for reassembly and discards it at the timeout, so a lone
// fragment is forwarded (no conntrack, forward chain accepts) or dropped.
type Frag string

// The fragment kinds a probe can send.
const (
	FragNone  Frag = ""
	FragAll   Frag = "all"   // every fragment: the first (transport header), then the last
	FragFirst Frag = "first" // the first fragment alone (offset 0, more fragments)
	FragLast  Frag = "last"  // the last fragment alone (offset > 0, no transport header)
)

func parseFrag(s string) (Frag, bool) {
	switch f := Frag(s); f {
	case FragAll, FragFirst, FragLast:
		return f, true
	}
	return "", false
}

// lone reports whether only one fragment of the datagram is sent.
func (f Frag) lone() bool { return f == FragFirst || f == FragLast }

// fragIDFor is the fragment identification of a probe with tag: never 0
// (an IPv4 raw socket replaces ID 0 with its own). Fragments are the one
// place a probe's identity shows in a header: the kernel needs it to
// reassemble.
func fragIDFor(tag uint32) uint32 {
	id := tag & 0xffff
	if id == 0 {
		id = 1
	}
	return 0xf5000000 | id
}

// fragSplit is where the first fragment ends in the transport segment l4:
// after the transport header and the probe's marker, on an 8-byte boundary
// (fragment offsets count 8-byte units).
func fragSplit(proto uint8, l4 []byte) int {
	at := markerAt(proto, l4)
	if at < 0 {
		at = 0
	}
	return (at + 8 + 7) &^ 7
}

// fragment is one fragment of a datagram: where its bytes start in the
// transport segment, and whether more follow.
type fragment struct {
	off, end int
	more     bool
}

// fragmentsOf is which fragments of the datagram spec s sends.
func fragmentsOf(s pktSpec, l4len int, split int) []fragment {
	first := fragment{off: 0, end: split, more: true}
	last := fragment{off: split, end: l4len}
	switch s.frag {
	case FragFirst:
		return []fragment{first}
	case FragLast:
		return []fragment{last}
	}
	return []fragment{first, last}
}

// buildPackets returns the IP packets a probe sends: one, or its
// fragments in order.
func buildPackets(s pktSpec) [][]byte {
	if s.frag == FragNone {
		return [][]byte{buildIP(s)}
	}
	l4 := buildL4(s)
	var out [][]byte
	for _, f := range fragmentsOf(s, len(l4), fragSplit(s.proto, l4)) {
		out = append(out, buildFragment(s, l4[f.off:f.end], f.off, f.more))
	}
	return out
}

// buildFragment is one fragment: the IP header (IPv6 with a fragment
// header) and data, the bytes of the transport segment from offset off.
func buildFragment(s pktSpec, data []byte, off int, more bool) []byte {
	ttl := s.ttl
	if ttl == 0 {
		ttl = 64
	}
	fo := uint16(off / 8)
	if s.src.Is4() {
		if more {
			fo |= 0x2000
		}
		return append(ipv4Header(s, ttl, len(data), uint16(s.fragID), fo), data...)
	}
	b := make([]byte, 48, 48+len(data))
	binary.BigEndian.PutUint32(b[0:], 6<<28|uint32(s.dscp)<<22)
	binary.BigEndian.PutUint16(b[4:], uint16(8+len(data)))
	b[6] = 44 // fragment header
	b[7] = ttl
	src, dst := s.src.As16(), s.dst.As16()
	copy(b[8:], src[:])
	copy(b[24:], dst[:])
	b[40] = s.proto
	fo <<= 3
	if more {
		fo |= 1
	}
	binary.BigEndian.PutUint16(b[42:], fo)
	binary.BigEndian.PutUint32(b[44:], s.fragID)
	return append(b, data...)
}

// fragInfo is what a parsed packet says about fragmentation.
type fragInfo struct {
	isFrag bool   // a fragment (IPv4 offset or MF set; IPv6 fragment header)
	id     uint32 // IPv4 ID (also when not a fragment) or IPv6 fragment identification
	off    int    // bytes of the datagram's transport segment before this fragment
	more   bool
	length int // bytes of the transport segment this packet carries
}

// fragAcc collects the fragments of one datagram seen leaving through one
// interface.
type fragAcc struct {
	first  *pktInfo // the fragment at offset 0, if seen
	parts  [][2]int // byte ranges seen
	tagged bool     // a fragment carried the probe's marker
}

// covers reports whether the ranges seen cover [from, to).
func (a *fragAcc) covers(from, to int) bool {
	for pos := from; pos < to; {
		next := pos
		for _, r := range a.parts {
			if r[0] <= pos && r[1] > next {
				next = r[1]
			}
		}
		if next == pos {
			return false
		}
		pos = next
	}
	return true
}

// fragKey names a datagram's fragments leaving through an interface.
func fragKey(via string, id uint32) string { return via + "/" + strconv.FormatUint(uint64(id), 10) }

// forwardedFragment records a fragment seen leaving through via and
// reports whether every byte the probe sent has now left through one
// interface; then it returns the packet to report (the first fragment
// where seen, with the ports after NAT).
func (o *observation) forwardedFragment(pk pktInfo, via string) (*pktInfo, bool) {
	if o.spec.frag == FragNone || !pk.frag.isFrag || pk.proto != o.spec.proto || pk.v6 != o.spec.src.Is6() {
		return nil, false
	}
	if o.frags == nil {
		o.frags = map[string]*fragAcc{}
	}
	k := fragKey(via, pk.frag.id)
	a := o.frags[k]
	if a == nil {
		a = &fragAcc{}
		o.frags[k] = a
	}
	p := pk
	if pk.frag.off == 0 {
		a.first = &p
	}
	if pk.tag == o.spec.tag && pk.frag.off == 0 {
		a.tagged = true
	}
	a.parts = append(a.parts, [2]int{pk.frag.off, pk.frag.off + pk.frag.length})
	// Ours: the marker rode in its first fragment, or the identification
	// is the probe's own (a fragment forwarded as it came).
	if !a.tagged && pk.frag.id != o.spec.fragID&o.idMask() {
		return nil, false
	}
	l4 := buildL4(o.spec)
	from, to := 0, len(l4)
	split := fragSplit(o.spec.proto, l4)
	switch o.spec.frag {
	case FragFirst:
		to = split
	case FragLast:
		from = split
	}
	if !a.covers(from, to) {
		return nil, false
	}
	if a.first != nil {
		return a.first, true
	}
	return &p, true
}

// idMask is the width of the fragment identification in the probe's family.
func (o *observation) idMask() uint32 {
	if o.spec.src.Is6() {
		return 0xffffffff
	}
	return 0xffff
}

// ownFragment reports whether a traced packet is one of the probe's
// fragments, or its datagram reassembled (IPv4 keeps the identification).
func (o *observation) ownFragment(pk pktInfo) bool {
	if o.spec.frag == FragNone || pk.proto != o.spec.proto || pk.src != o.spec.src || pk.dst != o.spec.dst {
		return false
	}
	return pk.frag.id == o.spec.fragID&o.idMask() && (pk.frag.isFrag || !pk.v6)
}

// checkFrag refuses the fragment probes whose fate fwslot cannot judge
// like a real packet's: fail closed, at the probe's line.
func checkFrag(p Probe, where func(exp, got string) error) error {
	if p.Frag == FragNone {
		return nil
	}
	switch {
	case p.Proto != TCP && p.Proto != UDP && !p.Proto.isICMP():
		return where("frag only for tcp, udp, icmp or icmpv6", string(p.Proto))
	case p.Proto.isICMP() && isICMPError(p.Proto.number(), p.ICMPType):
		return where("frag not for an icmp error type (an error quotes a packet: send it whole)", "frag")
	case p.State != StateNew && p.State != StateEstablished:
		return where("frag only with state new or established", string(p.State))
	case p.Mark != 0 && p.In != "":
		return where("no mark on an arriving fragment probe (the twin sets an entry mark after defragmentation, so chains before it would not see it)", "mark")
	case p.Frag.lone() && (p.SNAT != nil || p.DNAT != nil):
		return where("no snat or dnat with a lone fragment (nat works on reassembled datagrams)", "frag "+string(p.Frag))
	case p.Frag.lone() && p.State == StateEstablished:
		return where("frag all with state established (a lone fragment never reaches conntrack)", "frag "+string(p.Frag))
	}
	return nil
}

// addFragEvent keeps the trace events of a fragment probe: every fragment
// and the reassembled datagram have traces of their own (the kernel
// traces each packet, and reassembly makes a new one), so the events of
// every trace that carries one of them are kept, in order.
func (o *observation) addFragEvent(ev traceEvent) {
	if o.traceIDs == nil {
		o.traceIDs = map[uint32]bool{}
	}
	if ev.hasHdr && !o.traceIDs[ev.id] {
		if !o.ownTraced(ev) {
			return
		}
		o.traceIDs[ev.id], o.traceID, o.haveID = true, ev.id, true
	}
	if o.traceIDs[ev.id] {
		o.events = append(o.events, ev)
	}
}

// ownTraced reports whether a traced packet is the probe's: one of its
// fragments or its datagram. The trace carries at most 40 bytes of
// network header, so an IPv6 fragment's trace lacks its fragment header
// (and identification), and a later IPv6 fragment's is cut shorter still
// (20 bytes on 6.18: the kernel finds no transport header to end it at).
// Such a trace is the probe's by the next header 44 and what it shows of
// the addresses (the twin carries no other traffic, and probes go one at
// a time).
func (o *observation) ownTraced(ev traceEvent) bool {
	if n := ev.nethdr; len(n) >= 8 && n[0]>>4 == 6 && n[6] == 44 {
		addrs := append(o.spec.src.AsSlice(), o.spec.dst.AsSlice()...)
		shown := n[8:]
		return o.spec.src.Is6() && bytes.HasPrefix(addrs, shown[:min(len(shown), len(addrs))])
	}
	pk, ok := parseIP(append(append([]byte(nil), ev.nethdr...), ev.thdr...))
	return ok && (o.ownFragment(pk) || o.picks(pk))
}

// fragQuiet is how long a lone fragment's trace must stay silent before
// the probe counts it as held: the kernel handles an injected packet (and
// forwards it) synchronously in the sender's softirq, as DropGrace
// assumes, so silence this long after its last event means the fragment
// waits in a reassembly queue, where it stays until the timeout (30 s
// for IPv4, 60 s for IPv6) and is discarded.
const fragQuiet = 20 * time.Millisecond

// heldUntil is when a lone fragment's fate is known if nothing more
// happens: fragQuiet after its last trace event (ok false: not a lone
// fragment, or no event yet).
func (o *observation) heldUntil(now time.Time) (time.Time, bool) {
	if !o.spec.frag.lone() || len(o.events) == 0 {
		return time.Time{}, false
	}
	if len(o.events) != o.nEvents {
		o.nEvents, o.lastEvent = len(o.events), now
	}
	return o.lastEvent.Add(fragQuiet), true
}

// nextFragID is the fragment identification of the twin's next fragment
// probe. A lone fragment waits in a reassembly queue for up to a minute,
// and a later probe's fragments with its identification and addresses
// would be reassembled with it: identifications never repeat within a
// twin (65535 fragment probes in IPv4 before they wrap, far beyond what
// the queue's timeout keeps).
func (tw *Twin) nextFragID() uint32 {
	tw.fragSeq++
	return fragIDFor(tw.fragSeq)
}
