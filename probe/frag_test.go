package probe

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// fragTopo is a router: wan0 towards the internet, lan0 a connected LAN.
const fragTopo = `addr wan0 192.0.2.1/24
addr wan0 2001:db8::1/64
route wan0 0.0.0.0/0
route wan0 ::/0
addr lan0 10.0.0.1/24
addr lan0 fd00::1/64
`

// fragStateful uses conntrack (and nat), so defragmentation runs at
// priority -400: the raw chain at -450 sees each fragment, the filter
// chains only reassembled datagrams (their fragment matches never hit).
const fragStateful = `table inet raw {
	chain pre {
		type filter hook prerouting priority -450; policy accept;
		ip saddr 203.0.113.66 ip frag-off & 0x1fff != 0 drop
		ip saddr 203.0.113.67 ip frag-off & 0x2000 != 0 drop
		ip6 saddr 2001:db8:1::66 frag frag-off != 0 drop
		ip6 saddr 2001:db8:1::67 frag more-fragments 1 drop
		ip saddr 203.0.113.68 ip frag-off & 0x1fff != 0 meta l4proto udp drop
		ip6 saddr 2001:db8:1::68 exthdr frag exists meta l4proto udp drop
	}
}
table inet filter {
	chain input {
		type filter hook input priority 0; policy drop;
		ct state established,related accept
		ip frag-off & 0x3fff != 0 drop
		exthdr frag exists drop
		icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
		tcp dport 22 accept
		udp dport 53 accept
		icmp type echo-request accept
		icmpv6 type echo-request accept
	}
	chain forward {
		type filter hook forward priority 0; policy drop;
		ct state established,related accept
		ip frag-off & 0x3fff != 0 drop
		exthdr frag exists drop
		tcp dport 80 accept
		udp dport 5000 accept
	}
}
table ip nat {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		iifname "wan0" tcp dport 8080 dnat to 10.0.0.5:80
	}
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "wan0" masquerade
	}
}
`

const fragStatefulProbes = `accept tcp 203.0.113.5:40000 -> 192.0.2.1:22 in wan0 frag all
accept udp 203.0.113.5:40001 -> 192.0.2.1:53 in wan0 frag all
accept icmp 203.0.113.5 -> 192.0.2.1 in wan0 frag all
drop   tcp 203.0.113.5:40002 -> 192.0.2.1:23 in wan0 frag all
drop   tcp 203.0.113.66:40003 -> 192.0.2.1:22 in wan0 frag all  # raw drops the later fragment
drop   tcp 203.0.113.67:40004 -> 192.0.2.1:22 in wan0 frag all  # raw drops the first
drop   udp 203.0.113.68:40005 -> 192.0.2.1:53 in wan0 frag all  # meta l4proto on a later fragment
accept udp 203.0.113.68:40006 -> 192.0.2.1:53 in wan0           # unfragmented: raw lets it by
accept tcp 203.0.113.5:40007 -> 10.0.0.5:80 in wan0 out lan0 frag all
drop   tcp 203.0.113.5:40008 -> 10.0.0.5:81 in wan0 out lan0 frag all
accept tcp 203.0.113.5:40009 -> 192.0.2.1:8080 in wan0 out lan0 frag all dnat 10.0.0.5:80
accept udp 10.0.0.5:40010 -> 203.0.113.5:5000 in lan0 out wan0 frag all snat 192.0.2.1
accept tcp 203.0.113.5:40011 -> 10.0.0.5:80 in wan0 out lan0 frag all state established
drop   tcp 203.0.113.5:40012 -> 192.0.2.1:22 in wan0 frag first  # held by defrag
drop   tcp 203.0.113.5:40013 -> 192.0.2.1:22 in wan0 frag last
drop   tcp 203.0.113.5:40014 -> 10.0.0.5:80 in wan0 out lan0 frag first
drop   udp 203.0.113.5:40015 -> 10.0.0.5:5000 in wan0 out lan0 frag last
accept tcp 192.0.2.1:40016 -> 203.0.113.5:443 out wan0 frag all
accept tcp [2001:db8:1::5]:40017 -> [2001:db8::1]:22 in wan0 frag all
accept icmpv6 [2001:db8:1::5] -> [2001:db8::1] in wan0 frag all
drop   tcp [2001:db8:1::5]:40018 -> [2001:db8::1]:23 in wan0 frag all
drop   tcp [2001:db8:1::66]:40019 -> [2001:db8::1]:22 in wan0 frag all
drop   tcp [2001:db8:1::67]:40020 -> [2001:db8::1]:22 in wan0 frag all
drop   udp [2001:db8:1::68]:40021 -> [2001:db8::1]:53 in wan0 frag all
accept tcp [2001:db8:1::5]:40022 -> [fd00::5]:80 in wan0 out lan0 frag all
drop   udp [2001:db8:1::5]:40023 -> [fd00::5]:5001 in wan0 out lan0 frag all
drop   tcp [2001:db8:1::5]:40024 -> [2001:db8::1]:22 in wan0 frag first
drop   udp [2001:db8:1::5]:40025 -> [fd00::5]:5000 in wan0 out lan0 frag last
accept tcp [2001:db8::1]:40026 -> [2001:db8:1::5]:443 out wan0 frag all
`

// fragStateless uses no conntrack: nothing reassembles before the
// ruleset, so each fragment meets every chain on its own (IPv4 local
// delivery still reassembles before input; IPv6 only after it).
const fragStateless = `table inet filter {
	chain input {
		type filter hook input priority 0; policy drop;
		icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
		tcp dport 22 accept
		ip6 saddr 2001:db8:1::7 exthdr frag exists accept
	}
	chain forward {
		type filter hook forward priority 0; policy drop;
		tcp dport 80 accept
		ip frag-off & 0x1fff != 0 meta l4proto tcp accept
		ip6 saddr 2001:db8:1::7 frag frag-off != 0 accept
		udp dport 5000 accept
	}
}
`

const fragStatelessProbes = `accept tcp 203.0.113.5:40000 -> 192.0.2.1:22 in wan0 frag all
drop   tcp 203.0.113.5:40001 -> 192.0.2.1:22 in wan0 frag first   # reassembly before input holds it
drop   tcp [2001:db8:1::5]:40002 -> [2001:db8::1]:22 in wan0 frag all  # input sees the later fragment alone
accept tcp [2001:db8:1::7]:40003 -> [2001:db8::1]:22 in wan0 frag all
drop   tcp [2001:db8:1::7]:40004 -> [2001:db8::1]:22 in wan0 frag last  # accepted, then held
accept tcp 203.0.113.5:40005 -> 10.0.0.5:80 in wan0 out lan0 frag all
drop   udp 203.0.113.5:40006 -> 10.0.0.5:5000 in wan0 out lan0 frag all   # the later fragment has no port
accept udp 203.0.113.5:40007 -> 10.0.0.5:5000 in wan0 out lan0
accept tcp 203.0.113.5:40008 -> 10.0.0.5:80 in wan0 out lan0 frag first  # forwarded on its own
accept tcp 203.0.113.5:40009 -> 10.0.0.5:80 in wan0 out lan0 frag last
drop   udp 203.0.113.5:40010 -> 10.0.0.5:5000 in wan0 out lan0 frag last
drop   tcp [2001:db8:1::5]:40011 -> [fd00::5]:80 in wan0 out lan0 frag all
accept tcp [2001:db8:1::7]:40012 -> [fd00::5]:80 in wan0 out lan0 frag all
accept tcp [2001:db8:1::5]:40013 -> [fd00::5]:80 in wan0 out lan0 frag first
accept tcp 192.0.2.1:40014 -> 203.0.113.5:443 out wan0 frag all
`

// TestFragmentProbesMatchRealFragments sends fragment probes through the
// twin and the same fragments as real packets through a real router, with
// and without conntrack (defragmentation at -400, a raw chain at -450
// before it): every fate must agree and be the expected verdict, and
// explain's deciding rule must be the real trace's.
func TestFragmentProbesMatchRealFragments(t *testing.T) {
	cases := []struct{ name, ruleset, probes string }{
		{"conntrack", fragStateful, fragStatefulProbes},
		{"stateless", fragStateless, fragStatelessProbes},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			probes := parseLines(t, c.probes)
			file := writeTemp(t, c.name+".nft", c.ruleset)
			for _, twinTopo := range []struct {
				name string
				topo Topology
			}{{"topology", topoOf(t, fragTopo)}, {"inferred", Topology{}}} {
				outs := runDiff(t, file, topoOf(t, fragTopo), twinTopo.topo, probes, nil)
				requireAgreement(t, outs)
				agree := 0
				for _, d := range outs {
					switch {
					case !d.twin.Passed():
						t.Errorf("%s: %s: got %s %v %s\n%s", twinTopo.name, d.probe, d.twin.Got, d.twin.Err, d.twin.Failure, d.twin.Path)
					case twinTopo.name == "topology" && decision(d.twin.Path) != decision(d.realPath):
						t.Errorf("deciding rule differs: %s\n\ttwin: %s\n\treal: %s\n%s\n--- real path:\n%s", d.probe, decision(d.twin.Path), decision(d.realPath), d.twin.Path, d.realPath)
					case d.agree():
						agree++
					}
				}
				t.Logf("%s, %s: %d of %d fragment probes agree with real fragments", c.name, twinTopo.name, agree, len(outs))
			}
		})
	}
}

// TestFragmentGrammar: the frag option and the fragment probes fwslot
// refuses because it cannot judge them like a real packet.
func TestFragmentGrammar(t *testing.T) {
	cases := []struct {
		line string
		want Frag
		err  string
	}{
		{"accept tcp 1.2.3.4 -> 5.6.7.8:22 in eth0 frag all", FragAll, ""},
		{"accept udp [2001:db8::1] -> [2001:db8::2]:53 in eth0 frag first", FragFirst, ""},
		{"drop icmp 1.2.3.4 -> 5.6.7.8 in eth0 frag last", FragLast, ""},
		{"accept tcp 1.2.3.4 -> 5.6.7.8:22 in eth0 out eth1 frag all dnat 10.0.0.1", FragAll, ""},
		{"accept tcp 1.2.3.4 -> 5.6.7.8:22 in eth0 frag some", "", "frag all, first or last"},
		{"accept esp 1.2.3.4 -> 5.6.7.8 in eth0 frag all", "", "frag only for tcp, udp, icmp or icmpv6"},
		{"accept icmp 1.2.3.4 -> 5.6.7.8 in eth0 type destination-unreachable frag all", "", "not for an icmp error"},
		{"accept tcp 1.2.3.4 -> 5.6.7.8:22 in eth0 state invalid frag all", "", "state new or established"},
		{"accept tcp 1.2.3.4 -> 5.6.7.8:22 in eth0 mark 7 frag all", "", "no mark on an arriving fragment"},
		{"accept tcp 1.2.3.4 -> 5.6.7.8:22 out eth0 mark 7 frag all", FragAll, ""},
		{"accept tcp 1.2.3.4 -> 5.6.7.8:22 in eth0 out eth1 frag first dnat 10.0.0.1", "", "lone fragment"},
		{"accept tcp 1.2.3.4 -> 5.6.7.8:22 in eth0 state established frag last", "", "lone fragment never reaches conntrack"},
	}
	for _, c := range cases {
		ps, err := Parse("t.probes", strings.NewReader(c.line))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "t.probes:1:") {
				t.Errorf("%s: got error %v, want one at its line saying %q", c.line, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.line, err)
			continue
		}
		if ps[0].Frag != c.want {
			t.Errorf("%s: frag %q, want %q", c.line, ps[0].Frag, c.want)
		}
		back, err := ParseLine(ps[0].String()[len(ps[0].Verdict)+1:])
		if err != nil || back.Frag != c.want {
			t.Errorf("%s: String %q does not parse back: %v", c.line, ps[0].String(), err)
		}
	}
}

// TestFragmentsCarryTheDatagram: the fragments of a probe, parsed like
// the wire's, carry the datagram's transport segment exactly, the first
// one the marker; a lone fragment is just that part.
func TestFragmentsCarryTheDatagram(t *testing.T) {
	for _, line := range []string{
		"tcp 203.0.113.5:40000 -> 192.0.2.1:22 in wan0",
		"udp 203.0.113.5:40000 -> 192.0.2.1:53 in wan0",
		"icmp 203.0.113.5 -> 192.0.2.1 in wan0",
		"tcp [2001:db8::5]:40000 -> [2001:db8::1]:22 in wan0",
		"icmpv6 [2001:db8::5] -> [2001:db8::1] in wan0",
	} {
		for _, f := range []Frag{FragAll, FragFirst, FragLast} {
			p, err := ParseLine(line + " frag " + string(f))
			if err != nil {
				t.Fatal(err)
			}
			spec := specFor(3, p)
			l4 := buildL4(spec)
			split := fragSplit(spec.proto, l4)
			pkts := buildPackets(spec)
			var got []byte
			start := -1
			for i, b := range pkts {
				pk, ok := parseIP(b)
				if !ok || !pk.frag.isFrag || pk.frag.id != spec.fragID&map[bool]uint32{true: 0xffffffff, false: 0xffff}[p.is6()] || pk.proto != spec.proto {
					t.Fatalf("%s frag %s: packet %d parses as %+v", line, f, i, pk)
				}
				if start < 0 {
					start = pk.frag.off
				}
				if pk.frag.off == 0 && pk.tag != spec.tag {
					t.Errorf("%s frag %s: first fragment without the marker", line, f)
				}
				got = append(got, b[len(b)-pk.frag.length:]...)
				if pk.frag.more != (pk.frag.off+pk.frag.length < len(l4)) {
					t.Errorf("%s frag %s: more-fragments %v at %d+%d of %d", line, f, pk.frag.more, pk.frag.off, pk.frag.length, len(l4))
				}
			}
			want := map[Frag][]byte{FragAll: l4, FragFirst: l4[:split], FragLast: l4[split:]}[f]
			if !bytes.Equal(got, want) || (f == FragLast) != (start == split) || split >= len(l4) {
				t.Errorf("%s frag %s: fragments carry %x from %d, want %x (split %d)", line, f, got, start, want, split)
			}
		}
	}
}

// fragVariants derives fragment probes from generated ones for the
// differential tester: every fifth probe that a fragment probe can be
// made of, sent again as its fragments (all, all, first, last in turn).
// They are added after the generated probes, so those stay as they were.
func fragVariants(probes []Probe) []Probe {
	kinds := []Frag{FragAll, FragAll, FragFirst, FragLast}
	var out []Probe
	n := 0
	for _, p := range probes {
		if p.Dst.Addr.IsMulticast() || (p.Proto == ICMPv6 && p.ICMPType >= 130) {
			continue
		}
		f := kinds[(n/5)%len(kinds)]
		q := p
		q.Frag = f
		if checkFrag(q, func(string, string) error { return errFragRefused }) != nil {
			if f == FragAll {
				continue
			}
			if q.Frag = FragAll; checkFrag(q, func(string, string) error { return errFragRefused }) != nil {
				continue
			}
		}
		n++
		if n%5 != 0 {
			continue
		}
		q.Text = q.String()
		out = append(out, q)
	}
	return out
}

var errFragRefused = errors.New("refused")

// TestFragmentIDsNeverRepeatInATwin: a lone fragment waits in the twin's
// reassembly queue for up to a minute. Each Probe call numbers its probes
// from 0, so a later call's fragments used to carry the same
// identification and were reassembled with the one left waiting (IPv4
// keys its queues by protocol too, so there it only met a fragment of
// the same shape): an accepted IPv6 datagram came out dropped.
func TestFragmentIDsNeverRepeatInATwin(t *testing.T) {
	requireRoot(t)
	file := writeTemp(t, "conntrack.nft", fragStateful)
	tw, err := NewTwin(t.Context(), topoOf(t, fragTopo), nftFileLoader(file))
	if err != nil {
		t.Fatal(err)
	}
	defer tw.Close()
	for _, c := range []struct{ lone, whole string }{
		{"tcp 203.0.113.5:40000 -> 192.0.2.1:22 in wan0 frag last", "tcp 203.0.113.5:40000 -> 192.0.2.1:22 in wan0 frag all"},
		// IPv6 reassembles by addresses and identification alone: a
		// udp datagram's fragments meet the tcp fragment left waiting.
		{"tcp [2001:db8:1::5]:40000 -> [2001:db8::1]:22 in wan0 frag last", "udp [2001:db8:1::5]:40000 -> [2001:db8::1]:53 in wan0 frag all"},
	} {
		for _, step := range []struct {
			line string
			want Verdict
		}{{c.lone, Drop}, {c.whole, Accept}, {c.whole, Accept}} {
			p, err := ParseLine(step.line)
			if err != nil {
				t.Fatal(err)
			}
			res, err := tw.Probe(t.Context(), []Probe{p}, nil, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if r := res[0]; r.Err != nil || r.Got != step.want {
				t.Errorf("%s: got %s (%v), want %s\n%s", step.line, r.Got, r.Err, step.want, r.Path)
			}
		}
	}
}
