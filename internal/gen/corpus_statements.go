package gen

// statementFeatures lists the statements, sets, maps, objects, nat and
// chain layouts the generated corpus covers. Each feature becomes one
// ruleset per family in fams.
var statementFeatures = []feature{
	// Statements.
	{name: "counter-log", fams: "ip ip6 inet bridge arp netdev", rules: `
		counter
		counter packets 10 bytes 1000
		log
		log prefix "in: " level info
		log prefix "warn " level warn flags all
		log group 2 snaplen 64 queue-threshold 4
		log level emerg
		log level audit`},
	{name: "log-flags", fams: "ip ip6 inet", rules: `
		log flags tcp sequence,options
		log flags ip options
		log flags skuid
		log flags ether
		log prefix "drop " flags all drop`},
	{name: "limit", fams: "ip ip6 inet bridge arp netdev", rules: `
		limit rate 10/second accept
		limit rate 100/minute burst 50 packets accept
		limit rate over 5/hour drop
		limit rate 1/day counter
		limit rate 1 mbytes/second accept
		limit rate over 10 kbytes/second burst 100 kbytes drop`},
	{name: "quota", fams: "ip ip6 inet bridge netdev", rules: `
		quota 100 mbytes counter
		quota over 1000 mbytes drop
		quota until 10 kbytes accept
		quota over 512 kbytes used 12 kbytes drop`},
	{name: "reject", fams: "ip inet", rules: `
		tcp dport 1 reject with tcp reset
		udp dport 2 reject
		tcp dport 3 reject with icmp type host-unreachable
		tcp dport 4 reject with icmp type net-unreachable
		tcp dport 5 reject with icmp type admin-prohibited
		tcp dport 6 reject with icmp type port-unreachable`},
	{name: "reject6", fams: "ip6 inet", rules: `
		tcp dport 1 reject with tcp reset
		udp dport 2 reject
		tcp dport 3 reject with icmpv6 type no-route
		tcp dport 4 reject with icmpv6 type admin-prohibited
		tcp dport 5 reject with icmpv6 type addr-unreachable
		tcp dport 6 reject with icmpv6 type port-unreachable`},
	{name: "reject-icmpx", fams: "inet", rules: `
		tcp dport 7 reject with icmpx type no-route
		tcp dport 8 reject with icmpx type admin-prohibited
		tcp dport 9 reject with icmpx type host-unreachable
		reject with icmpx type port-unreachable`},
	{name: "reject-netdev", fams: "netdev", rules: `
		tcp dport 1 reject with tcp reset
		meta protocol ip udp dport 2 reject with icmpx type port-unreachable`},
	{name: "verdicts", fams: "ip ip6 inet bridge arp netdev", decl: `
		chain sub { counter; return; }
		chain sub2 { meta mark 1 accept; continue; }`, rules: `
		meta mark 1 accept
		meta mark 2 drop
		meta mark 3 jump sub
		meta mark 4 goto sub2
		meta mark 5 continue
		meta mark 6 return
		meta mark vmap { 7 : jump sub, 8 : goto sub2, 9 : accept }`},
	{name: "dup", fams: "ip", chain: "filter prerouting 0", rules: `
		dup to 10.0.0.1
		dup to 10.0.0.2 device "eth1"
		dup to ip saddr map { 192.0.2.1 : 10.0.0.3 }`},
	{name: "dup6", fams: "ip6", chain: "filter prerouting 0", rules: `
		dup to 2001:db8::1
		dup to 2001:db8::2 device "eth1"`},
	{name: "dup-fwd-netdev", fams: "netdev", rules: `
		ether type arp dup to "eth1"
		ip saddr 192.0.2.1 fwd to "eth1"
		fwd to meta mark map { 1 : "eth0", 2 : "eth1" }
		ip daddr 192.0.2.2 fwd ip to 192.0.2.254 device "eth1"`},
	{name: "tproxy", fams: "ip", chain: "filter prerouting -150", rules: `
		meta l4proto tcp tproxy to 127.0.0.1:8080
		meta l4proto udp tproxy to :5353
		meta l4proto tcp tproxy to 127.0.0.1 meta mark set 1 accept`},
	{name: "tproxy6", fams: "ip6", chain: "filter prerouting -150", rules: `
		meta l4proto tcp tproxy to [::1]:8080
		meta l4proto udp tproxy to :5353`},
	{name: "tproxy-inet", fams: "inet", chain: "filter prerouting -150", rules: `
		meta l4proto tcp tproxy ip to 127.0.0.1:8080
		meta l4proto tcp tproxy ip6 to [::1]:8080
		meta l4proto udp tproxy to :53`},
	{name: "synproxy", fams: "ip ip6 inet", decl: `
		synproxy sp1 { mss 1460; wscale 7; timestamp sack-perm; }
		synproxy sp2 { mss 1400; wscale 5; }`, rules: `
		tcp dport 80 ct state invalid,untracked synproxy mss 1460 wscale 7 timestamp sack-perm
		tcp dport 443 ct state invalid,untracked synproxy name "sp1"
		tcp dport 8443 ct state invalid,untracked synproxy name tcp dport map { 8443 : "sp2" }`},
	{name: "notrack", fams: "ip ip6 inet", chain: "filter prerouting -300", rules: `
		udp dport 53 notrack
		tcp dport 80 notrack
		meta l4proto udp notrack counter`},
	// NAT.
	{name: "nat-snat", fams: "ip", chain: "nat postrouting 100", rules: `
		oifname "eth0" masquerade
		oifname "eth1" masquerade random,persistent
		meta l4proto udp ip saddr 10.0.0.0/8 masquerade to :1024-2048
		ip saddr 10.1.0.0/16 snat to 192.0.2.1
		ip saddr 10.2.0.0/16 snat to 192.0.2.1-192.0.2.10
		meta l4proto tcp ip saddr 10.3.0.0/16 snat to 192.0.2.1:1024-2048 fully-random
		ip saddr 10.4.0.0/16 snat to ip saddr map { 10.4.0.1 : 192.0.2.2 }
		ip saddr 10.5.0.0/16 snat ip prefix to ip saddr map { 10.5.0.0/24 : 192.0.3.0/24 }`},
	{name: "nat-dnat", fams: "ip", chain: "nat prerouting -100", rules: `
		tcp dport 80 dnat to 10.0.0.1
		tcp dport 8080 dnat to 10.0.0.1:80
		tcp dport 81 dnat to 10.0.0.1-10.0.0.4
		tcp dport 82 dnat to 10.0.0.1:8000-8100
		tcp dport 83 redirect
		tcp dport 84 redirect to :8084
		udp dport 85 redirect to :8085-8090 random
		dnat to tcp dport map { 8081 : 10.0.0.2, 8082 : 10.0.0.3 }
		dnat ip to tcp dport map { 9000 : 10.0.0.5 . 22 }
		dnat to numgen inc mod 2 map { 0 : 10.0.0.6, 1 : 10.0.0.7 }
		dnat to jhash ip saddr mod 2 map { 0 : 10.0.0.8, 1 : 10.0.0.9 }`},
	{name: "nat-ip6", fams: "ip6", chain: "nat postrouting 100", rules: `
		oifname "eth0" masquerade
		ip6 saddr fd00::/64 snat to 2001:db8::1
		meta l4proto tcp ip6 saddr fd01::/64 snat to [2001:db8::1]:1024-2048
		ip6 saddr fd02::/64 snat ip6 prefix to ip6 saddr map { fd02::/64 : 2001:db8:2::/64 }`},
	{name: "nat-ip6-dnat", fams: "ip6", chain: "nat prerouting -100", rules: `
		tcp dport 80 dnat to [2001:db8::10]:8080
		tcp dport 81 dnat to 2001:db8::11
		tcp dport 82 redirect to :8082`},
	{name: "nat-inet", fams: "inet", chain: "nat prerouting -100", rules: `
		tcp dport 80 dnat ip to 10.0.0.1:8080
		tcp dport 80 dnat ip6 to [2001:db8::1]:8080
		tcp dport 81 redirect to :8081
		meta nfproto ipv4 tcp dport 82 dnat ip to ip daddr map { 192.0.2.1 : 10.0.0.2 }`},
	{name: "nat-inet-post", fams: "inet", chain: "nat postrouting 100", rules: `
		oifname "eth0" masquerade
		ip saddr 10.0.0.0/8 snat ip to 192.0.2.1
		ip6 saddr fd00::/8 snat ip6 to 2001:db8::1
		meta l4proto tcp masquerade to :10000-20000 random`},
	{name: "nat-input-output", fams: "ip", chain: "nat output -100", rules: `
		tcp dport 80 dnat to 127.0.0.1:8080
		ip daddr 192.0.2.1 udp dport 53 redirect to :5353`},
	// Sets, maps and concatenations.
	{name: "set-types", fams: "ip ip6 inet bridge netdev", decl: `
		set s_port { type inet_service; elements = { 22, 80, 443 }; }
		set s_proto { type inet_proto; elements = { tcp, udp }; }
		set s_mark { type mark; elements = { 0x1, 0x2 }; }
		set s_ifname { type ifname; elements = { "eth0", "eth1" }; }
		set s_ether { type ether_addr; elements = { 00:11:22:33:44:55 }; }
		set s_time { type time; flags interval; elements = { 1 - 100 }; }`, rules: `
		tcp dport @s_port counter
		meta l4proto @s_proto counter
		meta mark @s_mark counter
		iifname @s_ifname counter
		ether saddr @s_ether counter`},
	{name: "set-addr", fams: "ip inet bridge netdev", decl: `
		set a4 { type ipv4_addr; elements = { 192.0.2.1, 192.0.2.2 }; }
		set a4i { type ipv4_addr; flags interval; elements = { 10.0.0.0/8, 172.16.0.0-172.16.255.255 }; }
		set a4m { type ipv4_addr; flags interval; auto-merge; elements = { 192.168.0.0/24, 192.168.1.0/24 }; }
		set a4c { type ipv4_addr; flags constant; elements = { 198.51.100.1 }; }
		set empty4 { type ipv4_addr; }`, rules: `
		ip saddr @a4 accept
		ip saddr @a4i counter
		ip daddr @a4m drop
		ip daddr != @a4c counter
		ip saddr @empty4 drop`},
	{name: "set-addr6", fams: "ip6 inet", decl: `
		set a6 { type ipv6_addr; elements = { 2001:db8::1, 2001:db8::2 }; }
		set a6i { type ipv6_addr; flags interval; elements = { 2001:db8:1::/48, fe80::/10 }; }`, rules: `
		ip6 saddr @a6 accept
		ip6 daddr @a6i counter`},
	{name: "set-typeof", fams: "ip inet", decl: `
		set t1 { typeof ip saddr; elements = { 192.0.2.1 }; }
		set t2 { typeof tcp dport; elements = { 22, 80 }; }
		set t3 { typeof ip saddr . tcp dport; elements = { 192.0.2.1 . 22 }; }
		set t4 { typeof meta mark; elements = { 1 }; }
		map t5 { typeof ip saddr : meta mark; elements = { 192.0.2.1 : 0x1 }; }`, rules: `
		ip saddr @t1 counter
		tcp dport @t2 counter
		ip saddr . tcp dport @t3 accept
		meta mark @t4 counter
		meta mark set ip saddr map @t5`},
	{name: "concat", fams: "ip inet", decl: `
		set c1 { type ipv4_addr . inet_proto . inet_service; elements = { 192.0.2.1 . tcp . 22, 192.0.2.2 . udp . 53 }; }
		set c2 { type ifname . ipv4_addr; flags interval; elements = { "eth0" . 10.0.0.0/8 }; }
		set c3 { type ipv4_addr . ipv4_addr; flags interval; elements = { 10.0.0.0/8 . 192.168.0.0/16 }; }
		set c4 { type mark . inet_service; elements = { 0x1 . 80 }; }`, rules: `
		ip saddr . meta l4proto . th dport @c1 accept
		iifname . ip saddr @c2 counter
		ip saddr . ip daddr @c3 drop
		meta mark . tcp dport @c4 counter
		ip saddr . tcp dport { 192.0.2.3 . 22, 192.0.2.4 . 80 } accept
		ip saddr . ip daddr vmap { 10.0.0.1 . 10.0.0.2 : accept, 10.0.0.3 . 10.0.0.4 : drop }`},
	{name: "concat6", fams: "ip6 inet", decl: `
		set c6 { type ipv6_addr . inet_service; elements = { 2001:db8::1 . 22 }; }
		set c6i { type ipv6_addr . ipv6_addr; flags interval; elements = { 2001:db8::/32 . fd00::/8 }; }`, rules: `
		ip6 saddr . tcp dport @c6 accept
		ip6 saddr . ip6 daddr @c6i drop`},
	{name: "maps", fams: "ip inet", decl: `
		map m_mark { type inet_service : mark; elements = { 22 : 0x1, 80 : 0x2 }; }
		map m_int { type ipv4_addr : mark; flags interval; elements = { 10.0.0.0/8 : 0x10 }; }
		map m_if { type ifname : mark; elements = { "eth0" : 0x100 }; }
		map m_addr { type ipv4_addr : ipv4_addr; elements = { 192.0.2.1 : 10.0.0.1 }; }
		map m_prio { type mark : classid; elements = { 1 : 1:2 }; }`, rules: `
		meta mark set tcp dport map @m_mark
		meta mark set ip saddr map @m_int
		meta mark set iifname map @m_if
		ct mark set tcp dport map { 22 : 0x5, 443 : 0x6 }
		meta priority set meta mark map @m_prio
		meta mark set ip saddr . tcp dport map { 192.0.2.1 . 22 : 0x7 }`},
	{name: "vmaps", fams: "ip ip6 inet bridge netdev", decl: `
		chain sshc { counter; accept; }
		chain webc { counter; accept; }
		map vm { type inet_service : verdict; elements = { 22 : jump sshc, 80 : goto webc, 25 : drop }; }
		map vmi { type mark : verdict; flags interval; elements = { 1-10 : accept, 11-20 : drop }; }
		map vmc { type ifname . inet_proto : verdict; elements = { "eth0" . tcp : jump sshc }; }`, rules: `
		tcp dport vmap @vm
		meta mark vmap @vmi
		iifname . meta l4proto vmap @vmc
		tcp dport vmap { 8080 : jump webc, 8443 : accept }
		meta l4proto vmap { tcp : continue, udp : return }`},
	{name: "set-timeouts", fams: "ip inet", decl: `
		set st { type ipv4_addr; flags timeout; timeout 1h; elements = { 192.0.2.1, 192.0.2.2 timeout 10m }; }
		set st2 { type ipv4_addr; flags dynamic,timeout; timeout 30s; gc-interval 10s; size 1024; }
		set st3 { type ipv4_addr . inet_service; flags timeout; elements = { 192.0.2.3 . 22 timeout 1d }; }
		map mt { type ipv4_addr : mark; flags timeout; elements = { 10.0.0.1 timeout 1h : 0x1 }; }`, rules: `
		ip saddr @st drop
		ip saddr @st2 counter
		ip saddr . tcp dport @st3 accept
		meta mark set ip saddr map @mt`},
	{name: "set-stmts", fams: "ip inet", decl: `
		set seen { type ipv4_addr; flags dynamic; size 65535; }
		set seen_t { type ipv4_addr; flags dynamic,timeout; timeout 1m; }
		set blk { type ipv4_addr; flags dynamic,timeout; timeout 5m; }
		set cnt { type ipv4_addr; flags dynamic; size 4096; }
		map mdyn { type ipv4_addr : mark; flags dynamic,timeout; timeout 1h; }`, rules: `
		add @seen { ip saddr }
		update @seen_t { ip saddr timeout 30s }
		tcp flags syn add @blk { ip saddr timeout 1m }
		ip saddr @blk drop
		delete @seen { ip saddr }
		update @cnt { ip saddr counter }
		update @cnt { ip saddr counter quota over 10 mbytes }
		add @seen_t { ip saddr limit rate 10/second }
		update @mdyn { ip saddr : meta mark }`},
	{name: "set-stmts6", fams: "ip6 inet", decl: `
		set seen6 { type ipv6_addr; flags dynamic,timeout; timeout 10m; }
		set flows6 { type ipv6_addr . inet_service; flags dynamic; }`, rules: `
		update @seen6 { ip6 saddr }
		add @flows6 { ip6 saddr . tcp dport limit rate over 10/second counter }
		ip6 saddr @seen6 counter`},
	{name: "meters", fams: "ip inet", rules: `
		meter m1 { ip saddr limit rate 10/second } accept
		meter m2 size 1024 { ip saddr . tcp dport timeout 10s limit rate over 5/second } drop
		tcp flags syn meter m3 { ip saddr counter }
		meter m4 { ip daddr timeout 1m counter } drop`},
	{name: "meters6", fams: "ip6 inet", rules: `
		meter m6 { ip6 saddr limit rate 10/second } accept
		meter m7 size 256 { ip6 saddr . tcp dport timeout 1m limit rate over 20/minute } drop`},
	{name: "set-counters", fams: "ip inet", decl: `
		set sc { type ipv4_addr; counter; elements = { 192.0.2.1, 192.0.2.2 }; }
		set sq { type ipv4_addr; flags dynamic; counter; }`, rules: `
		ip saddr @sc counter
		update @sq { ip saddr }`},
	// Named objects and object maps.
	{name: "objects", fams: "ip ip6 inet bridge netdev", decl: `
		counter c1 { }
		counter c2 { packets 10 bytes 1000; }
		quota q1 { 100 mbytes; }
		quota q2 { over 1000 mbytes used 12 mbytes; }
		limit l1 { rate 10/second; }
		limit l2 { rate over 1 mbytes/second burst 512 kbytes; }
		limit l3 { rate 100/minute burst 20 packets; }`, rules: `
		counter name "c1"
		counter name "c2" accept
		quota name "q1"
		quota name "q2" drop
		limit name "l1" accept
		limit name "l2" drop
		limit name "l3" counter`},
	{name: "objmaps", fams: "ip inet", decl: `
		counter ca { }
		counter cb { }
		quota qa { over 10 mbytes; }
		limit la { rate 1/second; }
		map mc { type ipv4_addr : counter; elements = { 192.0.2.1 : "ca", 192.0.2.2 : "cb" }; }
		map mq { type inet_service : quota; elements = { 22 : "qa" }; }
		map ml { type ipv4_addr : limit; flags interval; elements = { 10.0.0.0/8 : "la" }; }`, rules: `
		counter name ip saddr map @mc
		quota name tcp dport map @mq
		limit name ip saddr map @ml
		counter name ip daddr map { 192.0.2.9 : "ca" }`},
	{name: "objects-samename", fams: "ip inet", decl: `
		counter x { }
		quota x { over 10 mbytes; }
		limit x { rate 10/second; }
		ct helper x { type "ftp" protocol tcp; }
		map mcx { type ipv4_addr : counter; elements = { 192.0.2.1 : "x" }; }
		map mqx { type ipv4_addr : quota; elements = { 192.0.2.1 : "x" }; }`, rules: `
		counter name "x"
		quota name "x"
		limit name "x" accept
		counter name ip saddr map @mcx
		quota name ip saddr map @mqx
		tcp dport 21 ct helper set "x"`},
	// Chains.
	{name: "binding-chains", fams: "ip ip6 inet bridge netdev", decl: `
		chain named { jump { meta mark 1 counter; }; counter; }`, rules: `
		meta mark 2 jump { counter; accept; }
		meta mark 3 goto { meta mark 4 accept; drop; }
		meta mark 5 jump named
		meta mark 6 jump { meta mark set 7; jump named; }`},
	{name: "chains-deep", fams: "ip inet", decl: `
		chain l1 { jump l2; }
		chain l2 { meta mark 1 goto l3; jump l3; }
		chain l3 { meta mark vmap { 2 : jump l4, 3 : goto l4 }; }
		chain l4 { counter; return; }
		chain unused { drop; }`, rules: `
		jump l1
		meta mark 9 goto l4`},
	{name: "hooks", fams: "ip ip6 inet", chain: "filter forward 0", decl: `
		chain pre { type filter hook prerouting priority raw; policy accept; notrack; }
		chain out { type route hook output priority mangle; policy accept; meta mark set 1; }
		chain post { type filter hook postrouting priority 100; policy accept; counter; }
		chain inp { type filter hook input priority security; policy drop; ct state established accept; }`, rules: `
		ct state established,related accept
		counter drop`},
	{name: "hooks-bridge", fams: "bridge", chain: "filter forward 0", decl: `
		chain pre { type filter hook prerouting priority -300; policy accept; counter; }
		chain inp { type filter hook input priority 0; policy accept; counter; }
		chain out { type filter hook output priority 0; policy accept; counter; }
		chain post { type filter hook postrouting priority 300; policy accept; counter; }`, rules: `
		ether type ip counter
		vlan id 10 drop`},
	{name: "hooks-netdev", fams: "netdev", decl: `
		chain eg { type filter hook egress device "eth1" priority 0; policy accept; counter; }
		chain ig2 { type filter hook ingress devices = { "eth0", "eth1" } priority 10; policy accept; counter; }`, rules: `
		ip saddr 192.0.2.1 drop`},
	{name: "hooks-arp", fams: "arp", chain: "filter output 0", decl: `
		chain inp { type filter hook input priority 0; policy drop; arp operation request accept; }`, rules: `
		arp operation reply counter`},
	{name: "hooks-ingress-inet", fams: "inet", chain: "filter ingress 0", rules: `
		ip saddr 192.0.2.1 drop
		counter`},
	{name: "comments-policies", fams: "ip ip6 inet", decl: `
		chain cc { comment "a commented chain"; counter comment "counted"; }
		set sc { type inet_service; comment "a set comment"; elements = { 22 comment "ssh", 80 }; }`, rules: `
		tcp dport 22 accept comment "ssh"
		tcp dport @sc jump cc comment "via set"`},
	{name: "interval-ports", fams: "ip ip6 inet", decl: `
		set pr { type inet_service; flags interval; elements = { 1-1023, 8000-8999 }; }
		map pm { type inet_service : mark; flags interval; elements = { 1-1023 : 0x1, 1024-65535 : 0x2 }; }`, rules: `
		tcp dport @pr accept
		meta mark set tcp dport map @pm
		udp dport { 1-100, 200-300 } drop
		tcp dport != 1000-2000 counter`},
	{name: "bitwise-shift", fams: "ip inet", rules: `
		meta mark set meta mark and 0xff00 or 0x1
		meta mark set meta mark xor 0x5
		ip saddr & 255.255.255.0 == 192.0.2.0 counter`},
	{name: "iif-oif", fams: "ip ip6 inet netdev", rules: `
		iif "lo" accept
		iif { "eth0", "eth1" } counter
		iifname "veth*" drop
		iiftype ether counter
		meta iif vmap { "eth0" : accept, "eth1" : drop }`},
	{name: "misc-matches", fams: "ip inet", rules: `
		sctp chunk data exists counter
		sctp chunk init num-inbound-streams 1 counter
		tcp option mptcp subtype 1 counter
		meta l4proto tcp tcp option 254 exists counter
		ct label 1 counter
		ct label set 2
		meta secpath exists counter
		ct original ip saddr . ct original ip daddr { 192.0.2.1 . 192.0.2.2 } counter
		meta iifkind "veth" counter
		ether type 8021q vlan id 5 counter
		tcp dport 9 reject with icmp type frag-needed`},
	{name: "nat-concat", fams: "ip", chain: "nat prerouting -100", decl: `
		map dn { typeof ip daddr . tcp dport : ip daddr . tcp dport; elements = { 192.0.2.1 . 80 : 10.0.0.1 . 8080 }; }
		map dr { type ipv4_addr : interval ipv4_addr; flags interval; elements = { 192.0.2.0/28 : 10.0.0.1-10.0.0.10 }; }`, rules: `
		dnat ip to ip daddr . tcp dport map @dn
		dnat to ip daddr map @dr
		dnat ip to ip saddr . tcp dport map { 192.0.2.9 . 22 : 10.0.0.9 . 2222 }`},
	{name: "set-policy-size", fams: "ip ip6 inet", decl: `
		set sp { type inet_service; policy memory; elements = { 1, 2, 3 }; }
		set ss { type inet_service; size 16; policy performance; elements = { 4 }; }
		set ea { type inet_service; flags interval; elements = { 10-20 }; auto-merge; }`, rules: `
		tcp dport @sp counter
		udp dport @ss counter
		tcp dport @ea drop`},
}
