package probe

import (
	"testing"
)

// grammarRuleset matches what real rulesets match besides ports: other IP
// protocols, icmp codes, related and invalid connection states, TTL/hop
// limit and DSCP. Each probe below is decided by one of its rules.
const grammarRuleset = `table inet filter {
	chain input {
		type filter hook input priority 0; policy drop;
		icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
		icmp type destination-unreachable icmp code 4 accept
		icmp type destination-unreachable icmp code 1 reject
		ct state invalid counter drop
		ct state established,related accept
		meta l4proto esp accept
		ip protocol gre accept
		meta l4proto 99 accept
		ip protocol igmp ip ttl 1 accept
		icmpv6 type packet-too-big accept
		ip dscp cs1 udp dport 5000 accept
		ip6 dscp af41 udp dport 5000 accept
		ip6 hoplimit 255 icmpv6 type nd-router-advert accept
		tcp dport 22 accept
	}
	chain output {
		type filter hook output priority 0; policy accept;
		ct state invalid drop
	}
}
`

const grammarTopo = "iface eth0\naddr eth0 192.0.2.10/24\naddr eth0 2001:db8::10/64\nroute eth0 0.0.0.0/0\nroute eth0 ::/0\n"

// TestGrammarMatchesWhatRulesetsMatch sends the new grammar's packets
// through the twin and as real packets: every fate must agree and be the
// expected verdict.
func TestGrammarMatchesWhatRulesetsMatch(t *testing.T) {
	probes := parseLines(t, `accept esp 203.0.113.5 -> 192.0.2.10 in eth0
drop   ah 203.0.113.5 -> 192.0.2.10 in eth0
accept 47 203.0.113.5 -> 192.0.2.10 in eth0
accept 99 203.0.113.5 -> 192.0.2.10 in eth0
drop   98 203.0.113.5 -> 192.0.2.10 in eth0
accept esp [2001:db8:1::5] -> [2001:db8::10] in eth0
accept igmp 192.0.2.77 -> 192.0.2.10 in eth0 ttl 1
drop   igmp 192.0.2.77 -> 192.0.2.10 in eth0 ttl 2
accept icmp 203.0.113.1 -> 192.0.2.10 in eth0 type destination-unreachable code 4
drop   icmp 203.0.113.1 -> 192.0.2.10 in eth0 type destination-unreachable code 1  # reject: no error answers an error
accept icmp 203.0.113.1 -> 192.0.2.10 in eth0 state related type destination-unreachable code 3
accept icmp 203.0.113.1 -> 192.0.2.10 in eth0 state related type time-exceeded
accept icmpv6 [2001:db8:1::1] -> [2001:db8::10] in eth0 state related
accept icmpv6 [2001:db8:1::1] -> [2001:db8::10] in eth0 state related type packet-too-big
drop   icmpv6 [2001:db8:1::1] -> [2001:db8::10] in eth0 type time-exceeded
accept udp 203.0.113.5 -> 192.0.2.10:5000 in eth0 dscp cs1
drop   udp 203.0.113.5 -> 192.0.2.10:5000 in eth0 dscp af41
drop   udp 203.0.113.5 -> 192.0.2.10:5000 in eth0
accept udp [2001:db8:1::5] -> [2001:db8::10]:5000 in eth0 dscp af41
accept udp [2001:db8:1::5] -> [2001:db8::10]:5000 in eth0 dscp 34
accept icmpv6 [fe80::1] -> [2001:db8::10] in eth0 type nd-router-advert hoplimit 255
drop   icmpv6 [fe80::1] -> [2001:db8::10] in eth0 type nd-router-advert hoplimit 64
accept tcp 203.0.113.5 -> 192.0.2.10:22 in eth0
drop   tcp 203.0.113.5 -> 192.0.2.10:22 in eth0 state invalid
drop   udp 203.0.113.5:53 -> 192.0.2.10:40000 in eth0 state invalid
drop   icmp 203.0.113.5 -> 192.0.2.10 in eth0 state invalid type echo-reply
accept udp 203.0.113.5:53 -> 192.0.2.10:40000 in eth0 state established
drop   tcp 192.0.2.10:40000 -> 203.0.113.5:443 out eth0 state invalid
accept tcp 192.0.2.10:40000 -> 203.0.113.5:443 out eth0
`)
	file := writeTemp(t, "grammar.nft", grammarRuleset)
	outs := runDiff(t, file, topoOf(t, grammarTopo), topoOf(t, grammarTopo), probes, nil)
	requirePassed(t, outs)
}

// TestMulticastIsNotForwardedAfterDNAT: a packet to a multicast group
// arrives in a multicast Ethernet frame, and the kernel never forwards
// such a frame, even when a port forward rewrites its destination. The
// twin used to inject it to its own MAC, so it forwarded what a real
// router drops.
func TestMulticastIsNotForwardedAfterDNAT(t *testing.T) {
	probes := parseLines(t, `drop tcp 203.0.113.25:41103 -> 224.0.0.1:8080 in wan0 flags ACK
drop tcp 203.0.113.25:41104 -> 224.0.0.1:8080 in wan0
accept tcp 203.0.113.25:41105 -> 192.0.2.1:8080 in wan0 out lan0 dnat 10.0.0.5:80
`)
	outs := runDiff(t, "../testdata/examples/router.nft", topoOf(t, routerTopo), readTopologyFile(t, "../testdata/examples/router.topology"), probes, nil)
	requirePassed(t, outs)
}
