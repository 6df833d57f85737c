package features

import "regexp"

// Feature is one thing nf_tables may or may not support: a family and
// hook, an expression, a set type, an object type, flowtables.
type Feature struct {
	// Name is how fwslot and its users call it ("flowtable", "osf").
	Name string
	// Kind groups features: "family", "expression", "set", "object",
	// "flowtable", "chain".
	Kind string
	// Config is the kernel option that provides it.
	Config string
	// Ruleset is a tiny ruleset that uses it, inside one table of its
	// own named %s (Probe fills in a unique name). The device "fwp0"
	// exists where it loads.
	Ruleset string
	// Match finds the feature in a ruleset line nft could not process.
	Match *regexp.Regexp
}

func re(s string) *regexp.Regexp { return regexp.MustCompile(s) }

// chain wraps statements in a filter base chain of the given family and
// hook.
func chain(family, hook, stmts string) string {
	return "table " + family + " %s {\n chain c {\n  type filter hook " + hook + " priority 0;\n  " + stmts + "\n }\n}\n"
}

// natChain wraps statements in a nat base chain.
func natChain(family, hook, stmts string) string {
	return "table " + family + " %s {\n chain c {\n  type nat hook " + hook + " priority 0;\n  " + stmts + "\n }\n}\n"
}

// ingress wraps statements in a netdev ingress chain on fwp0.
func ingress(stmts string) string {
	return "table netdev %s {\n chain c {\n  type filter hook ingress device \"fwp0\" priority 0;\n  " + stmts + "\n }\n}\n"
}

// table wraps declarations in an inet table.
func table(decls string) string {
	return "table inet %s {\n " + decls + "\n}\n"
}

// All lists the features Probe tries, in the order reports list them.
var All = []Feature{
	// Families and hooks.
	{"family ip", "family", "CONFIG_NF_TABLES_IPV4", chain("ip", "input", "accept"), nil},
	{"family ip6", "family", "CONFIG_NF_TABLES_IPV6", chain("ip6", "input", "accept"), nil},
	{"family inet", "family", "CONFIG_NF_TABLES_INET", chain("inet", "input", "accept"), nil},
	{"family arp", "family", "CONFIG_NF_TABLES_ARP", chain("arp", "input", "accept"), re(`\bhook\s+(input|output)\b`)},
	{"family bridge", "family", "CONFIG_NF_TABLES_BRIDGE", chain("bridge", "forward", "accept"), nil},
	{"netdev ingress", "family", "CONFIG_NF_TABLES_NETDEV", ingress("accept"), re(`\bhook\s+ingress\b`)},
	{"netdev egress", "family", "CONFIG_NETFILTER_EGRESS", "table netdev %s {\n chain c {\n  type filter hook egress device \"fwp0\" priority 0;\n }\n}\n", re(`\bhook\s+egress\b`)},
	{"inet ingress", "family", "CONFIG_NF_TABLES_INET (kernel 5.10)", "table inet %s {\n chain c {\n  type filter hook ingress device \"fwp0\" priority 0;\n }\n}\n", re(`\bhook\s+ingress\b`)},
	{"nat chains", "chain", "CONFIG_NFT_NAT", natChain("ip", "prerouting", "accept"), re(`\btype\s+nat\b`)},
	{"route chains", "chain", "CONFIG_NF_TABLES_IPV4", "table ip %s {\n chain c {\n  type route hook output priority 0;\n }\n}\n", re(`\btype\s+route\b`)},

	// Expressions.
	{"payload", "expression", "CONFIG_NF_TABLES", chain("inet", "input", "tcp dport 22 ip saddr 192.0.2.1 accept"), nil},
	{"payload mangling", "expression", "CONFIG_NF_TABLES", chain("ip", "input", "ip dscp set cs1"), re(`\b(dscp|ttl|hoplimit)\s+set\b`)},
	{"meta", "expression", "CONFIG_NF_TABLES", chain("inet", "input", "meta mark 1 meta l4proto tcp accept"), nil},
	{"ct", "expression", "CONFIG_NFT_CT", chain("inet", "input", "ct state established,related accept"), re(`\bct\s+(state|status|mark|zone|direction|expiration|helper|label|original|reply|id)\b`)},
	{"notrack", "expression", "CONFIG_NFT_CT", "table inet %s {\n chain c {\n  type filter hook prerouting priority -300;\n  notrack\n }\n}\n", re(`\bnotrack\b`)},
	{"rt", "expression", "CONFIG_NF_TABLES", chain("ip", "output", "rt nexthop 192.0.2.1 accept"), re(`\brt\s+(nexthop|classid|mtu|ipsec)\b`)},
	{"socket", "expression", "CONFIG_NFT_SOCKET", chain("inet", "input", "socket transparent 1 accept"), re(`\bsocket\s+(transparent|mark|wildcard|cgroupv2)\b`)},
	{"fib", "expression", "CONFIG_NFT_FIB_INET", "table inet %s {\n chain c {\n  type filter hook prerouting priority 0;\n  fib daddr type local accept\n }\n}\n", re(`\bfib\b`)},
	{"exthdr", "expression", "CONFIG_NF_TABLES", chain("inet", "input", "tcp option maxseg size 1400 accept"), re(`\b(tcp option|exthdr|ip option|sctp chunk)\b`)},
	{"osf", "expression", "CONFIG_NFT_OSF", chain("inet", "input", "osf name \"Linux\" accept"), re(`\bosf\b`)},
	{"xfrm", "expression", "CONFIG_NFT_XFRM", chain("inet", "input", "ipsec in reqid 1 accept"), re(`\bipsec\b`)},
	{"numgen", "expression", "CONFIG_NFT_NUMGEN", chain("inet", "input", "meta mark set numgen inc mod 2"), re(`\bnumgen\b`)},
	{"hash", "expression", "CONFIG_NFT_HASH", chain("ip", "input", "meta mark set jhash ip saddr mod 2"), re(`\b(jhash|symhash)\b`)},
	{"tproxy", "expression", "CONFIG_NFT_TPROXY", "table ip %s {\n chain c {\n  type filter hook prerouting priority -150;\n  meta l4proto tcp tproxy to 127.0.0.1:1234\n }\n}\n", re(`\btproxy\b`)},
	{"synproxy", "expression", "CONFIG_NFT_SYNPROXY", chain("inet", "input", "tcp dport 80 synproxy mss 1460 wscale 7"), re(`\bsynproxy\b`)},
	{"dup", "expression", "CONFIG_NFT_DUP_IPV4", chain("ip", "input", "dup to 192.0.2.1"), re(`\bdup\b`)},
	{"fwd", "expression", "CONFIG_NFT_FWD_NETDEV", ingress("fwd to \"fwp0\""), re(`\bfwd\b`)},
	{"queue", "expression", "CONFIG_NFT_QUEUE", chain("inet", "input", "queue num 1 bypass"), re(`\bqueue\b`)},
	{"log", "expression", "CONFIG_NFT_LOG", chain("inet", "input", "log prefix \"x\""), re(`\blog\b`)},
	{"limit", "expression", "CONFIG_NFT_LIMIT", chain("inet", "input", "limit rate 10/second accept"), re(`\blimit\s+rate\b`)},
	{"quota", "expression", "CONFIG_NFT_QUOTA", chain("inet", "input", "quota over 10 mbytes drop"), re(`\bquota\b`)},
	{"counter", "expression", "CONFIG_NF_TABLES", chain("inet", "input", "counter accept"), re(`\bcounter\b`)},
	{"connlimit", "expression", "CONFIG_NFT_CONNLIMIT", chain("inet", "input", "ct count over 10 drop"), re(`\bct\s+count\b`)},
	{"last", "expression", "CONFIG_NF_TABLES (kernel 5.14)", chain("inet", "input", "last used never"), re(`\blast\b`)},
	{"inner", "expression", "CONFIG_NF_TABLES (kernel 6.2)", chain("inet", "input", "udp dport 4789 vxlan ip saddr 192.0.2.1 accept"), re(`\b(vxlan|geneve|gre|gretap)\b`)},
	{"tunnel", "expression", "CONFIG_NFT_TUNNEL", chain("inet", "input", "tunnel path exists accept"), re(`\btunnel\b`)},
	{"reject", "expression", "CONFIG_NFT_REJECT", chain("inet", "input", "reject with icmpx type port-unreachable"), re(`\breject\b`)},
	{"nat", "expression", "CONFIG_NFT_NAT", natChain("ip", "prerouting", "tcp dport 80 dnat to 192.0.2.1"), re(`\b(dnat|snat)\b`)},
	{"masquerade", "expression", "CONFIG_NFT_MASQ", natChain("ip", "postrouting", "masquerade"), re(`\bmasquerade\b`)},
	{"redirect", "expression", "CONFIG_NFT_REDIR", natChain("ip", "prerouting", "tcp dport 80 redirect to :8080"), re(`\bredirect\b`)},
	{"flow offload", "expression", "CONFIG_NFT_FLOW_OFFLOAD", "table inet %s {\n flowtable f { hook ingress priority 0; devices = { fwp0 }; }\n chain c {\n  type filter hook forward priority 0;\n  ip protocol tcp flow add @f\n }\n}\n", re(`\bflow\s+(add|offload)\b`)},

	// Sets and maps.
	{"sets", "set", "CONFIG_NF_TABLES", table("set s { type ipv4_addr; elements = { 192.0.2.1 }; }"), re(`\bset\b`)},
	{"interval sets", "set", "CONFIG_NF_TABLES", table("set s { type ipv4_addr; flags interval; elements = { 192.0.2.0/24 }; }"), re(`\binterval\b`)},
	{"timeout sets", "set", "CONFIG_NF_TABLES", table("set s { type ipv4_addr; flags timeout; timeout 1m; }"), re(`\btimeout\b`)},
	{"dynamic sets", "set", "CONFIG_NF_TABLES", table("set s { type ipv4_addr; flags dynamic; }\n chain c {\n  type filter hook input priority 0;\n  update @s { ip saddr }\n }"), re(`\b(dynamic|update\s+@|add\s+@|meter)\b`)},
	{"concatenations", "set", "CONFIG_NF_TABLES (kernel 5.6 for intervals)", table("set s { type ipv4_addr . inet_service; flags interval; elements = { 192.0.2.0/24 . 22-23 }; }"), re(`\s\.\s`)},
	{"maps", "set", "CONFIG_NF_TABLES", table("map m { type ipv4_addr : mark; elements = { 192.0.2.1 : 1 }; }\n chain c {\n  type filter hook input priority 0;\n  meta mark set ip saddr map @m\n }"), re(`\bmap\b`)},
	{"verdict maps", "set", "CONFIG_NF_TABLES", table("map v { type ipv4_addr : verdict; elements = { 192.0.2.1 : accept }; }\n chain c {\n  type filter hook input priority 0;\n  ip saddr vmap @v\n }"), re(`\bvmap\b|:\s*verdict\b`)},

	// Named objects.
	{"counter objects", "object", "CONFIG_NF_TABLES", table("counter o { }"), re(`\bcounter\b`)},
	{"quota objects", "object", "CONFIG_NFT_QUOTA", table("quota o { 25 mbytes }"), re(`\bquota\b`)},
	{"limit objects", "object", "CONFIG_NFT_LIMIT", table("limit o { rate 10/second }"), re(`\blimit\b`)},
	{"ct helper", "object", "CONFIG_NFT_CT, CONFIG_NF_CONNTRACK_FTP", table("ct helper o { type \"ftp\" protocol tcp; }"), re(`\bct\s+helper\b`)},
	{"ct timeout", "object", "CONFIG_NFT_CT, CONFIG_NF_CONNTRACK_TIMEOUT", table("ct timeout o { protocol tcp; l3proto ip; policy = { established: 100 }; }"), re(`\bct\s+timeout\b`)},
	{"ct expectation", "object", "CONFIG_NFT_CT (kernel 5.3)", table("ct expectation o { protocol tcp; dport 21; timeout 10s; size 8; l3proto ip; }"), re(`\bct\s+expectation\b`)},
	{"synproxy objects", "object", "CONFIG_NFT_SYNPROXY", table("synproxy o { mss 1460; wscale 7; }"), re(`\bsynproxy\b`)},
	{"secmark", "object", "CONFIG_NETWORK_SECMARK and an LSM with secmark (SELinux, Smack)", table("secmark o { \"system_u:object_r:ssh_server_packet_t:s0\" }"), re(`\bsecmark\b`)},
	{"tunnel objects", "object", "CONFIG_NFT_TUNNEL", table("tunnel o { id 10; ip saddr 192.0.2.1; ip daddr 192.0.2.2; }"), re(`\btunnel\b`)},

	// Flowtables.
	{"flowtable", "flowtable", "CONFIG_NF_FLOW_TABLE", table("flowtable f { hook ingress priority 0; devices = { fwp0 }; }"), re(`\bflowtable\b`)},
}
