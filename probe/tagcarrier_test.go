package probe

import "testing"

// TestTagInNoMatchableHeader: fwslot's per-probe tag used to ride in the
// IPv4 ID, the IPv6 flow label and the ICMP echo id (with the top bit
// set), so a rule on those fields judged fwslot's tag, not the probe. The
// tag is now a payload marker: the headers are the probe's own.
func TestTagInNoMatchableHeader(t *testing.T) {
	const ruleset = `table inet filter {
	chain input {
		type filter hook input priority 0; policy accept;
		icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
		ip id & 0x8000 == 0x8000 drop
		ip6 flowlabel & 0x80000 == 0x80000 drop
		icmp id & 0x8000 == 0x8000 drop
		icmpv6 id & 0x8000 == 0x8000 drop
		ip id != 0 drop
		ip6 flowlabel != 0 drop
	}
	chain output {
		type filter hook output priority 0; policy accept;
		ip id & 0x8000 == 0x8000 drop
		ip6 flowlabel & 0x80000 == 0x80000 drop
	}
}
`
	probes := parseLines(t, `accept tcp 203.0.113.5 -> 192.0.2.10:22 in eth0
accept udp 203.0.113.5 -> 192.0.2.10:53 in eth0
accept icmp 203.0.113.5 -> 192.0.2.10 in eth0
accept icmpv6 [2001:db8:1::5] -> [2001:db8::10] in eth0
accept tcp [2001:db8:1::5] -> [2001:db8::10]:22 in eth0
accept esp 203.0.113.5 -> 192.0.2.10 in eth0
accept icmp 203.0.113.1 -> 192.0.2.10 in eth0 state related
accept tcp 192.0.2.10 -> 203.0.113.5:443 out eth0
accept udp [2001:db8::10] -> [2001:db8:1::5]:53 out eth0
`)
	file := writeTemp(t, "tag.nft", ruleset)
	outs := runDiff(t, file, topoOf(t, grammarTopo), topoOf(t, grammarTopo), probes, nil)
	requirePassed(t, outs)
}
