package gen

// matchFeatures lists the matches the generated corpus covers (payload,
// exthdr, meta, ct, rt, socket, fib, xfrm, osf, numgen, hash). Each
// feature becomes one ruleset per family in fams.
var matchFeatures = []feature{
	// Payload matches, header by header.
	{name: "payload-ip", fams: "ip inet bridge netdev", rules: `
		ip saddr 192.0.2.1 counter
		ip daddr 10.0.0.0/8 accept
		ip daddr != { 10.0.0.0/8, 192.168.0.0/16 } counter
		ip protocol tcp counter
		ip ttl 64 counter
		ip ttl != 1 counter
		ip dscp cs1 counter
		ip ecn ce counter
		ip length 100-200 counter
		ip id 1234 counter
		ip frag-off & 0x1fff != 0 drop
		ip version 4 counter
		ip hdrlength 5 counter
		ip checksum 0x1234 counter
		ip saddr 10.1.0.0-10.1.0.255 counter`},
	{name: "payload-ip6", fams: "ip6 inet bridge netdev", rules: `
		ip6 saddr 2001:db8::1 counter
		ip6 daddr 2001:db8::/32 accept
		ip6 daddr != { 2001:db8:1::/48, fe80::/10 } counter
		ip6 nexthdr tcp counter
		ip6 hoplimit 255 counter
		ip6 flowlabel 12345 counter
		ip6 dscp af11 counter
		ip6 ecn not-ect counter
		ip6 length 1280 counter
		ip6 version 6 counter`},
	{name: "payload-tcp", fams: "ip ip6 inet bridge netdev", rules: `
		tcp sport 1024-65535 counter
		tcp dport { 22, 80, 443 } accept
		tcp flags & (syn | ack) == syn counter
		tcp flags syn counter
		tcp flags != rst counter
		tcp sequence 1 counter
		tcp ackseq 2 counter
		tcp window 1024 counter
		tcp checksum 1 counter
		tcp urgptr 0 counter
		tcp doff 5 counter`},
	{name: "payload-udp", fams: "ip ip6 inet netdev", rules: `
		udp sport 53 counter
		udp dport { 53, 123 } accept
		udp length 8 counter
		udp checksum 0 counter
		udplite dport 5000 counter
		udplite csumcov 8 counter`},
	{name: "payload-sctp-dccp", fams: "ip ip6 inet", rules: `
		sctp sport 5000 counter
		sctp dport 5001 counter
		sctp vtag 1 counter
		sctp checksum 1 counter
		dccp sport 1 counter
		dccp dport 2 counter
		dccp type request counter`},
	{name: "payload-icmp", fams: "ip inet netdev", rules: `
		icmp type echo-request counter accept
		icmp type { echo-reply, destination-unreachable, time-exceeded } accept
		icmp code 0 counter
		icmp id 1 counter
		icmp sequence 2 counter
		icmp checksum 3 counter
		icmp mtu 1500 counter
		icmp gateway 1 counter`},
	{name: "payload-icmpv6", fams: "ip6 inet netdev", rules: `
		icmpv6 type nd-neighbor-solicit accept
		icmpv6 type { nd-router-advert, nd-neighbor-advert, echo-request } accept
		icmpv6 code 0 counter
		icmpv6 id 1 counter
		icmpv6 sequence 2 counter
		icmpv6 mtu 1280 counter
		icmpv6 max-delay 1 counter`},
	{name: "payload-ipsec-headers", fams: "ip ip6 inet", rules: `
		ah spi 1 counter
		esp spi 100 counter
		esp sequence 2 counter
		comp cpi 1 counter`},
	{name: "payload-igmp", fams: "ip inet", rules: `
		igmp type membership-query counter
		igmp type membership-report-v3 accept
		igmp checksum 1 counter`},
	{name: "payload-th-raw", fams: "ip ip6 inet netdev", rules: `
		th dport 53 counter
		th sport 1 counter
		meta l4proto { tcp, udp } th dport 443 accept
		@nh,16,16 0x1234 counter
		@th,0,16 80 counter
		@ll,0,8 1 counter
		@nh,64,32 != 0 counter`},
	{name: "payload-ether-vlan", fams: "bridge netdev", rules: `
		ether saddr 00:11:22:33:44:55 counter
		ether daddr ff:ff:ff:ff:ff:ff counter
		ether type ip counter
		ether type vlan vlan id 10 counter
		vlan id 10 vlan pcp 3 counter
		vlan id 20 vlan cfi 1 counter
		vlan type ip6 counter`},
	{name: "payload-arp", fams: "arp bridge netdev", rules: `
		arp htype 1 counter
		arp ptype ip counter
		arp hlen 6 counter
		arp plen 4 counter
		arp operation request counter
		arp operation { reply, rrequest } accept
		arp saddr ip 192.0.2.1 counter
		arp daddr ip 192.0.2.0/24 counter
		arp saddr ether 00:11:22:33:44:55 counter
		arp daddr ether ff:ff:ff:ff:ff:ff drop`},
	{name: "payload-set", fams: "ip inet bridge", rules: `
		ip ttl set 64
		ip dscp set cs3
		ip ecn set ect1`},
	{name: "payload-set6", fams: "ip6 inet", rules: `
		ip6 hoplimit set 64
		ip6 dscp set af21
		ip6 flowlabel set 0`},
	{name: "payload-set-ports", fams: "ip inet", chain: "filter prerouting 0", rules: `
		tcp dport 8080 tcp dport set 80
		udp sport 5353 udp sport set 53
		ether saddr set 00:11:22:33:44:55`},
	// Extension headers and options.
	{name: "exthdr-ip6", fams: "ip6 inet", rules: `
		exthdr hbh exists counter
		exthdr frag missing counter
		hbh nexthdr tcp counter
		hbh hdrlength 0 counter
		rt type 0 counter
		rt seg-left 0 counter
		rt nexthdr udp counter
		frag more-fragments 1 counter
		frag id 1 counter
		frag frag-off 0 counter
		dst nexthdr udp counter
		mh type binding-update counter
		srh last-entry 0 counter
		srh tag 1 counter`},
	{name: "exthdr-ipopt", fams: "ip inet", rules: `
		ip option rr exists counter
		ip option lsrr exists drop
		ip option ssrr exists drop
		ip option ra exists counter
		ip option rr ptr 4 counter`},
	{name: "exthdr-tcpopt", fams: "ip ip6 inet", rules: `
		tcp option maxseg size 1460 counter
		tcp option maxseg size < 536 drop
		tcp option sack-perm exists counter
		tcp option window count 7 counter
		tcp option timestamp tsval 1 counter
		tcp option sack0 left 1 counter
		tcp option sack exists counter
		tcp option eol exists counter
		tcp option nop exists counter`},
	{name: "exthdr-tcpopt-set", fams: "ip ip6 inet", chain: "filter forward 0", rules: `
		tcp flags syn tcp option maxseg size set 1360
		tcp flags syn tcp option maxseg size set rt mtu`},
	// meta.
	{name: "meta-match", fams: "ip ip6 inet bridge netdev", rules: `
		meta length 100-1500 counter
		meta mark 0x10 counter
		meta mark & 0xff00 == 0x100 counter
		meta iif "lo" accept
		meta iifname "eth*" counter
		meta iifname { "eth0", "eth1" } counter
		meta iiftype ether counter
		meta pkttype host counter
		meta pkttype { broadcast, multicast } drop
		meta cpu 0 counter
		meta iifgroup 0 counter
		meta random > 100 counter
		meta priority 1:2 counter
		meta l4proto tcp counter
		meta protocol ip counter
		meta time "2022-01-01 00:00" - "2032-01-01 00:00" counter
		meta day { "Monday", "Friday" } counter
		meta hour "08:00" - "18:00" counter`},
	{name: "meta-match-local", fams: "ip ip6 inet", chain: "filter output 0", rules: `
		meta oif "lo" accept
		meta oifname "eth1" counter
		meta oiftype loopback accept
		meta skuid 0 counter
		meta skgid 0 counter
		meta skuid { 0, 1000 } counter
		meta oifgroup 0 counter
		meta cgroup 1 counter
		meta rtclassid 1 counter`},
	{name: "meta-sdif", fams: "ip ip6 inet", rules: `
		meta sdif 0 counter
		meta sdifname "lo" counter`},
	{name: "meta-nfproto", fams: "inet", rules: `
		meta nfproto ipv4 meta mark set 0x4
		meta nfproto ipv6 counter
		meta nfproto vmap { ipv4 : accept, ipv6 : continue }`},
	{name: "meta-set", fams: "ip ip6 inet bridge netdev", rules: `
		meta mark set 0x10
		meta mark set meta mark | 0x100
		meta mark set meta mark & 0xffff0000 | 0x20
		meta priority set 1:2
		meta nftrace set 1`},
	{name: "meta-set-prerouting", fams: "ip ip6 inet bridge", chain: "filter prerouting 0", rules: `
		meta pkttype set host
		meta pkttype set broadcast
		meta mark set 0x1`},
	{name: "meta-set-ct", fams: "ip ip6 inet", rules: `
		meta mark set ct mark
		ct mark set meta mark`},
	// conntrack.
	{name: "ct-match", fams: "ip ip6 inet", rules: `
		ct state established,related accept
		ct state invalid drop
		ct state vmap { new : continue, untracked : accept }
		ct direction original counter
		ct status dnat counter
		ct status { snat, dnat } counter
		ct mark 0x1 counter
		ct expiration < 1m counter
		ct helper "ftp" counter
		ct l3proto ipv4 counter
		ct protocol tcp counter
		ct bytes > 1000000 counter
		ct packets < 10 counter
		ct original bytes > 100 counter
		ct avgpkt > 1000 counter
		ct zone 1 counter
		ct original zone 2 counter
		ct id 1 counter
		ct count over 10 drop
		ct count 5 accept`},
	{name: "ct-match-addr", fams: "ip inet", rules: `
		ct original ip saddr 192.0.2.1 counter
		ct reply ip daddr 10.0.0.0/8 counter`},
	{name: "ct-match-addr6", fams: "ip6 inet", rules: `
		ct original ip6 saddr 2001:db8::1 counter
		ct reply ip6 daddr 2001:db8::/64 counter`},
	{name: "ct-set", fams: "ip ip6 inet", chain: "filter prerouting -300", rules: `
		ct mark set 0x1
		ct mark set meta mark
		ct mark set ct mark | 0x10
		ct zone set 1
		ct original zone set 2
		ct zone set meta mark map { 1 : 1, 2 : 2 }
		ct event set new,related,destroy
		notrack`},
	{name: "set-ctstate", fams: "ip ip6 inet", decl: `
		set s_ctstate { type ct_state; elements = { established, related }; }
		map m_ctstate { type ct_state : verdict; elements = { invalid : drop, new : continue }; }`, rules: `
		ct state @s_ctstate accept
		ct state vmap @m_ctstate`},
	{name: "ct-helper-obj", fams: "ip inet", chain: "filter prerouting 0", decl: `
		ct helper h_ftp { type "ftp" protocol tcp; l3proto inet; }
		ct helper h_sip { type "sip" protocol udp; }
		ct helper h_tftp { type "tftp" protocol udp; }
		ct helper h_irc { type "irc" protocol tcp; }`, rules: `
		tcp dport 21 ct helper set "h_ftp"
		udp dport 5060 ct helper set "h_sip"
		udp dport 69 ct helper set "h_tftp"
		tcp dport 6667 ct helper set "h_irc"
		ct helper set udp dport map { 69 : "h_tftp", 5060 : "h_sip" }`},
	{name: "ct-timeout-obj", fams: "ip ip6 inet", chain: "filter prerouting 0", decl: `
		ct timeout t_tcp { protocol tcp; l3proto ip; policy = { established: 100, close: 5 }; }
		ct timeout t_udp { protocol udp; l3proto ip; policy = { unreplied: 10, replied: 30 }; }`, rules: `
		tcp dport 22 ct timeout set "t_tcp"
		udp dport 53 ct timeout set "t_udp"`},
	{name: "ct-expect-obj", fams: "ip inet", chain: "filter prerouting 0", decl: `
		ct expectation e_tcp { protocol tcp; dport 5432; timeout 1m; size 12; l3proto ip; }
		ct expectation e_udp { protocol udp; dport 69; timeout 30s; size 4; l3proto ip; }`, rules: `
		tcp dport 5431 ct expectation set "e_tcp"
		udp dport 70 ct expectation set "e_udp"`},
	// rt, socket, fib, xfrm, osf, numgen, hash.
	{name: "rt", fams: "ip inet", chain: "filter postrouting 0", rules: `
		rt classid 1 counter
		rt ip nexthop 192.0.2.1 counter
		rt mtu 1500 counter
		rt ipsec exists counter
		rt ipsec missing counter`},
	{name: "rt6", fams: "ip6 inet", chain: "filter postrouting 0", rules: `
		rt classid 1 counter
		rt ip6 nexthop 2001:db8::1 counter
		rt mtu 1280 counter`},
	{name: "socket", fams: "ip ip6 inet", chain: "filter prerouting -150", rules: `
		socket transparent 1 accept
		socket transparent 0 counter
		socket mark 0x1 counter
		socket wildcard 0 counter
		meta l4proto tcp socket transparent 1 meta mark set 1 accept`},
	{name: "fib", fams: "ip ip6 inet", chain: "filter prerouting 0", rules: `
		fib saddr . iif oif missing drop
		fib daddr type local accept
		fib daddr . iif type { local, broadcast } counter
		fib saddr oif "eth0" counter
		fib daddr type vmap { unicast : continue, blackhole : drop }
		fib saddr . mark oif exists counter`},
	{name: "fib-netdev", fams: "netdev", rules: `
		fib saddr . iif oif missing drop
		fib daddr type local counter`},
	{name: "xfrm", fams: "ip inet", chain: "filter prerouting 0", rules: `
		ipsec in reqid 1 counter
		ipsec in spi 100 counter
		ipsec in ip saddr 192.0.2.1 counter
		ipsec in ip daddr 192.0.2.0/24 counter
		ipsec in spnum 1 ip saddr 10.0.0.1 counter`},
	{name: "xfrm-out", fams: "ip6 inet", chain: "filter postrouting 0", rules: `
		ipsec out reqid 1 counter
		ipsec out spi 100 counter
		ipsec out ip6 daddr 2001:db8::1 counter`},
	{name: "osf", fams: "ip inet", chain: "filter prerouting 0", rules: `
		osf name "Linux" counter
		osf ttl loose name "Windows" drop
		osf ttl skip name "FreeBSD" counter
		osf ttl skip version "Linux:3.0" accept
		osf name { "Linux", "MacOs" } counter
		osf name vmap { "Linux" : accept, "Windows" : drop }`},
	{name: "numgen", fams: "ip ip6 inet", chain: "filter prerouting 0", rules: `
		meta mark set numgen inc mod 2
		meta mark set numgen random mod 10 offset 5
		numgen inc mod 4 0 counter
		meta mark set numgen inc mod 2 map { 0 : 0x10, 1 : 0x20 }
		numgen random mod 2 vmap { 0 : accept, 1 : drop }`},
	{name: "hash", fams: "ip inet", chain: "filter prerouting 0", rules: `
		meta mark set jhash ip saddr mod 2
		meta mark set jhash ip saddr . tcp dport mod 10 seed 0xdead offset 100
		meta mark set symhash mod 2
		meta mark set symhash mod 4 offset 10
		jhash ip saddr . ip daddr mod 2 vmap { 0 : accept, 1 : drop }
		ct mark set jhash ip saddr mod 100`},
	{name: "hash6", fams: "ip6", chain: "filter prerouting 0", rules: `
		meta mark set jhash ip6 saddr mod 2
		meta mark set jhash ip6 saddr . ip6 daddr mod 8 seed 0x1
		meta mark set symhash mod 3`},
}
