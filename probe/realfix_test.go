package probe

import (
	"fmt"
	"strings"
	"testing"
)

// Real topologies of the example rulesets (the documented --topology form).
const (
	serverTopo    = "addr eth0 192.0.2.10/24\naddr eth0 2001:db8::10/64\n"
	routerTopo    = "addr lan0 10.0.0.1/24\naddr wan0 192.0.2.1/24\n"
	dualstackTopo = "addr eth0 192.0.2.20/24\naddr eth0 2001:db8:2::20/64\n"
)

func repeatProbes(t testing.TB, n int, format string) []Probe {
	t.Helper()
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, format+"\n", i)
	}
	return parseLines(t, b.String())
}

// TestICMPRejectsAreNotRateLimited: the twin must answer every rejected
// probe, however many came before from the same source (the kernel's ICMP
// error rate limit lives in the twin's namespace and is off there).
func TestICMPRejectsAreNotRateLimited(t *testing.T) {
	probes := append(repeatProbes(t, 10, "reject udp 203.0.113.9 -> 192.0.2.20:3344%d in eth0"),
		repeatProbes(t, 10, "reject udp [2001:db8:ffff::9] -> [2001:db8:2::20]:3345%d in eth0")...)
	outs := runDiff(t, "../testdata/examples/dualstack.nft", topoOf(t, dualstackTopo), Topology{}, probes, nil)
	requireAgreement(t, outs)
}

// dynsetRuleset remembers every ssh source in a dynamic set and drops the
// set's members: only a fresh set lets a second probe from one source in.
const dynsetRuleset = `table inet filter {
	set seen {
		type ipv4_addr
		flags dynamic
	}
	chain input {
		type filter hook input priority filter; policy accept;
		ip saddr @seen drop
		tcp dport 22 add @seen { ip saddr }
	}
}
`

// TestStateDoesNotCarryOver: every probe meets `limit` rules (burst 5: the
// 6th back-to-back probe used to be dropped) and dynamic sets as loaded,
// as a single real packet would, with either loader.
func TestStateDoesNotCarryOver(t *testing.T) {
	server := "../testdata/examples/server.nft"
	dynset := writeTemp(t, "dynset.nft", dynsetRuleset)
	pings := repeatProbes(t, 10, "accept icmp 203.0.113.9 -> 192.0.2.10 in eth0 type echo-request # %d")
	ssh := repeatProbes(t, 4, "accept tcp 203.0.113.9 -> 192.0.2.10:22 in eth0 # %d")
	for _, tc := range []struct {
		name   string
		file   string
		load   Loader
		probes []Probe
	}{
		{"limit/nft -f", server, nftFileLoader(server), pings},
		{"limit/slot layout", server, fileLoader(t, server), pings},
		{"dynset/nft -f", dynset, nftFileLoader(dynset), ssh},
		{"dynset/slot layout", dynset, fileLoader(t, dynset), ssh},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireAgreement(t, runDiff(t, tc.file, topoOf(t, serverTopo), Topology{}, tc.probes, tc.load))
		})
	}
}

// limitRuleset lets three pings a minute through (deterministic at test
// speed: no token comes back during the test).
const limitRuleset = `table inet filter {
	chain input {
		type filter hook input priority filter; policy drop;
		icmp type echo-request limit rate 1/minute burst 3 packets accept
	}
}
`

// TestSequentialKeepsLimitState: with Sequential the twin lets state carry
// over, like a real host receiving the packets back to back: past the
// burst, the limit drops. Without it every probe is accepted.
func TestSequentialKeepsLimitState(t *testing.T) {
	file := writeTemp(t, "limit.nft", limitRuleset)
	probes := repeatProbes(t, 6, "accept icmp 203.0.113.9 -> 192.0.2.10 in eth0 type echo-request # %d")
	for _, seq := range []bool{false, true} {
		t.Run(fmt.Sprintf("sequential=%v", seq), func(t *testing.T) {
			outs := runDiffOpt(t, file, topoOf(t, serverTopo), Topology{}, probes, nil, Options{Sequential: seq})
			for i, d := range outs {
				if !d.agree() {
					t.Errorf("twin and real packet disagree: %s", d)
				}
				want := Delivered
				if seq && i >= 3 {
					want = Dropped
				}
				if d.real.outcome != want {
					t.Errorf("probe %d: real packet %s, want %s (burst 3)", i, d.real.outcome, want)
				}
			}
		})
	}
}

// ipOnlyRuleset filters IPv4 input only: IPv6 packets and everything the
// host sends meet no base chain, and the kernel accepts them.
const ipOnlyRuleset = `table ip filter {
	chain input {
		type filter hook input priority filter; policy drop;
		tcp dport 22 accept
	}
}
`

// TestNoBaseChainAccepts: a packet that meets no base chain is accepted,
// with the path "(no base chain)", not an error.
func TestNoBaseChainAccepts(t *testing.T) {
	file := writeTemp(t, "iponly.nft", ipOnlyRuleset)
	probes := parseLines(t, `accept tcp [2001:db8:ffff::9] -> [2001:db8::10]:23 in eth0
accept icmpv6 [2001:db8:ffff::9] -> [2001:db8::10] in eth0
accept tcp 192.0.2.10 -> 203.0.113.9:443 out eth0
accept udp [2001:db8::10] -> [2001:db8:ffff::9]:53 out eth0
drop   tcp 203.0.113.9 -> 192.0.2.10:23 in eth0
accept tcp 203.0.113.9 -> 192.0.2.10:22 in eth0
`)
	outs := runDiff(t, file, topoOf(t, serverTopo), Topology{}, probes, nil)
	requireAgreement(t, outs)
	for _, d := range outs[:4] {
		if d.twin.Passed() && d.twin.Path.String() != "  (no base chain): accept\n" {
			t.Errorf("%s: path %q, want (no base chain)", d.probe, d.twin.Path.String())
		}
	}
}

// TestMulticastDestinations: multicast and broadcast destinations never
// become addresses of an inferred twin (ip refuses them and the whole run
// failed); the probes get the real packets' verdicts.
func TestMulticastDestinations(t *testing.T) {
	probes := parseLines(t, `accept icmpv6 [fe80::9] -> [ff02::1] in eth0 type echo-request
accept udp 192.0.2.9 -> 224.0.0.1:53 in eth0
accept udp [2001:db8:2::9] -> [2001:db8:2::20]:53 in eth0
drop   tcp 198.51.100.9 -> 192.0.2.20:25 in eth0
`)
	topo := InferTopology(probes)
	for _, i := range topo.Interfaces {
		for _, a := range i.Addrs {
			if a.Addr().IsMulticast() {
				t.Errorf("inferred multicast address %s on %s", a, i.Name)
			}
		}
		for _, r := range i.Routes {
			if r.Addr().IsMulticast() {
				t.Errorf("inferred route to multicast %s on %s", r, i.Name)
			}
		}
	}
	requireAgreement(t, runDiff(t, "../testdata/examples/dualstack.nft", topoOf(t, dualstackTopo), Topology{}, probes, nil))
}

// dmzRuleset forwards everything and dnats port 80 of a public host on the
// lan to a private web server.
const dmzRuleset = `table ip nat {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		iifname "wan0" ip daddr 198.51.100.80 tcp dport 80 dnat to 10.0.0.5
	}
}
table inet filter {
	chain forward {
		type filter hook forward priority filter; policy drop;
		iifname "wan0" oifname "lan0" accept
	}
}
`

// TestDNATOriginalDestinationStaysRemote: the original destination of a
// dnat probe is a host behind the router when other probes forward to it;
// an inferred twin must not make it a local address.
func TestDNATOriginalDestinationStaysRemote(t *testing.T) {
	file := writeTemp(t, "dmz.nft", dmzRuleset)
	probes := parseLines(t, `accept tcp 203.0.113.9 -> 198.51.100.80:80 in wan0 out lan0 dnat 10.0.0.5:80
accept tcp 203.0.113.9 -> 198.51.100.80:443 in wan0 out lan0
accept udp 203.0.113.9 -> 198.51.100.80:53 in wan0 out lan0
`)
	real := topoOf(t, "addr lan0 10.0.0.1/24\naddr lan0 198.51.100.1/24\naddr wan0 192.0.2.1/24\n")
	outs := runDiff(t, file, real, Topology{}, probes, nil)
	requirePassed(t, outs)
}

// TestMasqueradeAddressOnTheOutInterface: the snat address of a masquerade
// probe belongs to the out interface even when an earlier probe reaches it
// from the lan; masquerade takes its source from there.
func TestMasqueradeAddressOnTheOutInterface(t *testing.T) {
	probes := parseLines(t, `accept tcp 10.0.0.7 -> 10.0.0.1:22 in lan0
accept tcp 10.0.0.7 -> 192.0.2.1:53 in lan0
accept tcp 10.1.0.7 -> 203.0.113.9:443 in lan0 out wan0 snat 192.0.2.1
accept udp 10.1.0.7 -> 203.0.113.53:53 in lan0 out wan0 snat 192.0.2.1
accept tcp 10.0.0.7 -> 203.0.113.9:443 in lan0 out wan0 snat 192.0.2.1
`)
	outs := runDiff(t, "../testdata/examples/router.nft", topoOf(t, routerTopo), Topology{}, probes, nil)
	requirePassed(t, outs)
}

// TestOnLinkHostsWithRealPrefixes: with the documented --topology form
// (real prefix lengths), hosts on a connected prefix are reached without
// neighbour discovery failing: forwarded packets leave, rejects answer.
func TestOnLinkHostsWithRealPrefixes(t *testing.T) {
	for _, name := range []string{"server", "router", "dualstack"} {
		t.Run(name, func(t *testing.T) {
			base := "../testdata/examples/" + name
			topo := readTopologyFile(t, base+".topology")
			probes := loadProbes(t, base+".probes")
			probes = append(probes, onLinkProbes[name]...)
			outs := runDiff(t, base+".nft", topo, topo, probes, nil)
			for _, d := range outs {
				if d.probe.State == StateEstablished {
					continue // item of its own (NAT of established flows)
				}
				if !d.agree() {
					t.Errorf("twin and real packet disagree: %s", d)
				}
				if !d.twin.Passed() {
					t.Errorf("%s: %s %v %s", d.probe, d.twin.Got, d.twin.Err, d.twin.Failure)
				}
			}
		})
	}
}

// onLinkProbes reach hosts of the examples' connected prefixes.
var onLinkProbes = map[string][]Probe{
	"server": mustParse(`reject tcp 192.0.2.77 -> 192.0.2.10:113 in eth0
accept tcp 192.0.2.10 -> 192.0.2.77:443 out eth0
accept tcp [2001:db8::77] -> [2001:db8::10]:443 in eth0
`),
	"router": mustParse(`accept tcp 10.0.0.8 -> 192.0.2.99:443 in lan0 out wan0 snat 192.0.2.1
reject tcp 10.0.0.8 -> 192.0.2.99:25 in lan0 out wan0
accept udp 10.0.0.8 -> 10.0.0.1:53 in lan0
`),
	"dualstack": mustParse(`reject udp 192.0.2.77 -> 192.0.2.20:33434 in eth0
reject udp [2001:db8:2::77] -> [2001:db8:2::20]:33435 in eth0
accept udp [2001:db8:2::20] -> [2001:db8:2::77]:53 out eth0
`),
}

func mustParse(src string) []Probe {
	ps, err := Parse("onlink.probes", strings.NewReader(src))
	if err != nil {
		panic(err)
	}
	return ps
}

// TestEstablishedNATFlows: a `state established` probe of a NATed flow is
// translated like a real packet of that flow: a reply to a source-natted
// lan client is forwarded to the client (not delivered to the router), an
// established port forward reaches the inside host. ICMP echo and udp too.
func TestEstablishedNATFlows(t *testing.T) {
	probes := parseLines(t, `accept tcp 203.0.113.9:443 -> 192.0.2.1:40005 in wan0 out lan0 state established dnat 10.0.0.7:40005
accept udp 203.0.113.53:53 -> 192.0.2.1:40006 in wan0 out lan0 state established dnat 10.0.0.7:40006
accept tcp 203.0.113.9:40013 -> 192.0.2.1:8080 in wan0 out lan0 state established dnat 10.0.0.5:80
accept tcp 10.0.0.5:80 -> 203.0.113.9:40014 in lan0 out wan0 state established snat 192.0.2.1:8080
accept icmp 203.0.113.9 -> 192.0.2.1 in wan0 out lan0 type echo-reply state established dnat 10.0.0.7
accept tcp 10.0.0.7:40015 -> 203.0.113.9:443 in lan0 out wan0 state established snat 192.0.2.1
`)
	for _, twinTopo := range []Topology{{}, readTopologyFile(t, "../testdata/examples/router.topology")} {
		outs := runDiff(t, "../testdata/examples/router.nft", topoOf(t, routerTopo), twinTopo, probes, nil)
		requirePassed(t, outs)
	}
}

// TestMasqueradeWithoutAddressEvidence: forwarded probes through a
// masquerading interface that no probe gives an address are forwarded, as
// real packets are (masquerade used to find no source and drop them). The
// source is the twin's placeholder: without snat or a topology file the
// real address is unknown.
func TestMasqueradeWithoutAddressEvidence(t *testing.T) {
	probes := parseLines(t, `accept tcp 10.1.0.7 -> 203.0.113.9:443 in lan0 out wan0
accept udp 10.1.0.7 -> 203.0.113.9:53 in lan0 out wan0
accept icmp 10.1.0.7 -> 203.0.113.9 in lan0 out wan0 type echo-request
`)
	for _, d := range runDiff(t, "../testdata/examples/router.nft", topoOf(t, routerTopo), Topology{}, probes, nil) {
		if d.twin.Err != nil || d.twin.Outcome != d.real.outcome || !d.twin.Passed() {
			t.Errorf("twin and real packet disagree: %s", d)
			continue
		}
		if got := d.twin.Seen.Src.Addr; got != mustAddr("198.18.1.1") {
			t.Errorf("%s: masqueraded to %s, want the placeholder 198.18.1.1", d.probe, got)
		}
	}
}

// TestNeighbourDiscoveryBlockedByTheRuleset: router.nft drops ICMPv6
// neighbour discovery (its input accepts none), so a real router never
// reaches an on-link IPv6 host although its forward chain accepts the
// packet, and no IPv6 host on its links (nor the wan gateway) can resolve
// the router's address to send to it. The twin no longer pins such
// neighbours: the probe is dropped, with the reason on its path. Hosts on
// dualstack.nft, which accepts ND, are still reached.
func TestNeighbourDiscoveryBlockedByTheRuleset(t *testing.T) {
	topo := topoOf(t, routerTopo+"addr lan0 2001:db8:10::1/64\naddr wan0 2001:db8:20::1/64\nroute wan0 ::/0\n")
	probes := parseLines(t, `drop udp [2001:db8:20::1]:41001 -> [2001:db8:20::c]:53 out wan0
drop tcp [2001:db8:10::c]:41000 -> [2001:db8:20::c]:443 in lan0 out wan0
drop tcp [2001:db8:10::c]:41004 -> [2001:db8:10::1]:22 in lan0
drop tcp [2001:db8:ffff::9]:41005 -> [2001:db8:20::1]:22 in wan0 state established
accept tcp 10.0.0.12:41002 -> 192.0.2.12:443 in lan0 out wan0
`)
	outs := runDiff(t, "../testdata/examples/router.nft", topo, topo, probes, nil)
	requireAgreement(t, outs)
	for i, want := range []string{
		"(neighbour discovery of 2001:db8:20::c on wan0 fails: the ruleset drops its neighbour advertisements): drop",
		"(neighbour discovery of this host from 2001:db8:10::c on lan0 fails: the ruleset drops its neighbour solicitations, so the packet is never sent): drop",
		"(neighbour discovery of this host from 2001:db8:10::c on lan0 fails",
		"(neighbour discovery of this host from fe80::2 on wan0 fails",
	} {
		if !strings.Contains(outs[i].twin.Path.String(), want) {
			t.Errorf("%s: path lacks %q:\n%s", outs[i].probe, want, outs[i].twin.Path)
		}
	}
	ds := topoOf(t, dualstackTopo)
	requireAgreement(t, runDiff(t, "../testdata/examples/dualstack.nft", ds, ds,
		parseLines(t, "accept udp [2001:db8:2::20]:41003 -> [2001:db8:2::77]:53 out eth0\n"), nil))
}
