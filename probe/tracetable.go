package probe

import (
	"fmt"
	"net/netip"
	"strings"
)

// probeMatches are the trace table's matches for probe packets: the
// payload marker (probeMagic) where each protocol carries it (see
// markerAt), the initiate tag of an SCTP INIT, and the marker in the
// packet a related ICMP error quotes.
var probeMatches = []string{
	"meta l4proto tcp @th,96,4 5 @th,160,32 0x6677736c",
	"meta l4proto { udp, icmp, ipv6-icmp, esp, igmp } @th,64,32 0x6677736c",
	"meta l4proto gre @th,32,32 0x6677736c",
	"meta l4proto sctp @th,96,8 1 @th,128,4 1",
	"icmp type { destination-unreachable, time-exceeded, parameter-problem } @th,288,32 0x6677736c",
	"icmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem } @th,448,32 0x6677736c",
	"meta l4proto != { tcp, udp, icmp, ipv6-icmp, esp, igmp, gre, sctp } @th,0,32 0x6677736c",
}

// fragTraceChains trace every fragment from the first hook on (priority
// INT_MIN), before defragmentation (-400) reassembles them and before any
// chain of the ruleset: a fragment carries no marker the -350 chains could
// see (only its datagram does, once reassembled), and chains below -400
// see each fragment. The twin and its peers carry no other traffic, and
// probes go one at a time.
const fragTraceChains = `	chain fragpre {
		type filter hook prerouting priority -2147483648; policy accept;
		ip frag-off & 0x3fff != 0 meta nftrace set 1
		meta nfproto ipv6 exthdr frag exists meta nftrace set 1
	}
	chain fragout {
		type filter hook output priority -2147483648; policy accept;
		ip frag-off & 0x3fff != 0 meta nftrace set 1
		meta nfproto ipv6 exthdr frag exists meta nftrace set 1
	}
`

// installTrace (re)creates the trace table: nftrace for probe packets
// (recognised by their payload marker, never by a header field) at
// prerouting and output priority -350; arriving probe packets then go to
// chain marks, which sets the entry mark of the probe being sent (see
// setEntryMark).
func (tw *Twin) installTrace() error {
	var b strings.Builder
	fmt.Fprintf(&b, "add table inet %[1]s\ndelete table inet %[1]s\ntable inet %[1]s {\n", traceTable)
	b.WriteString("\tchain marks {\n")
	if tw.entryMark != 0 {
		fmt.Fprintf(&b, "\t\tmeta mark set 0x%x\n", tw.entryMark)
	}
	b.WriteString("\t}\n")
	writeTraceChains(&b, " goto marks")
	b.WriteString("}\n")
	if _, err := nftOutput(tw.ns, b.String(), "-f", "-"); err != nil {
		return fmt.Errorf("install trace table: %w", err)
	}
	return nil
}

// writeTraceChains writes the chains of a trace table: nftrace for probe
// packets (recognised by their payload marker) at prerouting and output
// priority -350, arriving ones then sent on by preAction, and the
// fragment chains.
func writeTraceChains(b *strings.Builder, preAction string) {
	for _, c := range []struct{ name, hook, action string }{{"pre", "prerouting", preAction}, {"out", "output", ""}} {
		fmt.Fprintf(b, "\tchain %s {\n\t\ttype filter hook %s priority -350; policy accept;\n", c.name, c.hook)
		for _, m := range probeMatches {
			b.WriteString("\t\t" + m + " meta nftrace set 1" + c.action + "\n")
		}
		b.WriteString("\t}\n")
	}
	b.WriteString(fragTraceChains)
}

// setEntryMark makes arriving probe packets carry mark from prerouting on
// (probes go one at a time, so one rule serves the probe being sent).
func (tw *Twin) setEntryMark(mark uint32) error {
	if mark == tw.entryMark {
		return nil
	}
	cmd := fmt.Sprintf("flush chain inet %s marks\n", traceTable)
	if mark != 0 {
		cmd += fmt.Sprintf("add rule inet %s marks meta mark set 0x%x\n", traceTable, mark)
	}
	if _, err := nftOutput(tw.ns, cmd, "-f", "-"); err != nil {
		return fmt.Errorf("set the entry mark 0x%x: %w", mark, err)
	}
	tw.entryMark = mark
	return nil
}

// frameDst is the Ethernet destination a sender puts on a packet to dst:
// the group's multicast MAC for a multicast destination (the kernel then
// sees it as PACKET_MULTICAST, which it never forwards, even after DNAT),
// else the twin's own MAC.
func frameDst(dst netip.Addr, twinMAC []byte) []byte {
	switch {
	case dst.Is4() && dst.IsMulticast():
		a := dst.As4()
		return []byte{0x01, 0x00, 0x5e, a[1] & 0x7f, a[2], a[3]}
	case dst.Is6() && dst.IsMulticast():
		a := dst.As16()
		return []byte{0x33, 0x33, a[12], a[13], a[14], a[15]}
	}
	return twinMAC
}
