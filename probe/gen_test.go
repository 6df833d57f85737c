package probe

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// rulesetFacts is what the packet generator reads from a ruleset file: the
// ports it names, the addresses and prefixes it names, the interfaces that
// source-nat on the way out, and its port forwards.
type rulesetFacts struct {
	ports    []uint16
	addrs    []netip.Addr
	natOut   map[string]bool
	forwards []portForward
	fwdPorts []uint16 // every port a dnat rule matches, with or without its interface
}

type portForward struct {
	iface string
	proto Proto
	port  uint16
}

var (
	reInclude  = regexp.MustCompile(`(?m)^\s*include\s+"([^"/][^"]*)"`)
	reDefine   = regexp.MustCompile(`(?m)^\s*define\s+(\w+)\s*=\s*(.+?)\s*$`)
	rePorts    = regexp.MustCompile(`[ds]port\s+(\{[^}]*\}|[0-9][0-9-]*)`)
	reNumber   = regexp.MustCompile(`[0-9]+(-[0-9]+)?`)
	reV4       = regexp.MustCompile(`\b([0-9]{1,3}(\.[0-9]{1,3}){3})(/[0-9]+)?`)
	reV6       = regexp.MustCompile(`\b(2001:db8[0-9a-f:]*)(/[0-9]+)?`)
	reOifname  = regexp.MustCompile(`oifname\s+"?([\w.-]+)"?`)
	reIifname  = regexp.MustCompile(`iifname\s+"?([\w.-]+)"?`)
	reJumpTo   = regexp.MustCompile(`\b(?:jump|goto)\s+([\w.-]+)`)
	reDNATPort = regexp.MustCompile(`(tcp|udp)\s+dport\s+([0-9]+)\b[^#]*?\bdnat\b`)
)

// readFacts reads a ruleset file, defines expanded.
func readFacts(t testing.TB, file string) rulesetFacts {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	// The files it includes (relative globs, as nft -I DIR reads them).
	for _, m := range reInclude.FindAllStringSubmatch(text, -1) {
		files, _ := filepath.Glob(filepath.Join(filepath.Dir(file), m[1]))
		for _, f := range files {
			if b, err := os.ReadFile(f); err == nil {
				text += "\n" + string(b)
			}
		}
	}
	for _, m := range reDefine.FindAllStringSubmatch(text, -1) {
		text = strings.ReplaceAll(text, "$"+m[1], m[2])
	}
	f := rulesetFacts{natOut: map[string]bool{}}
	seen := map[uint16]bool{}
	addPort := func(p int) {
		if p > 0 && p < 65536 && !seen[uint16(p)] {
			seen[uint16(p)] = true
			f.ports = append(f.ports, uint16(p))
		}
	}
	for _, m := range rePorts.FindAllStringSubmatch(text, -1) {
		for _, n := range reNumber.FindAllString(m[1], -1) {
			lo, hi, isRange := strings.Cut(n, "-")
			a, _ := strconv.Atoi(lo)
			addPort(a)
			if isRange {
				b, _ := strconv.Atoi(hi)
				addPort(b)
				addPort((a + b) / 2)
			}
		}
	}
	// Chains that source-nat, by name (a rough split at "chain NAME {").
	natChains := map[string]bool{}
	for _, part := range strings.Split(text, "chain ")[1:] {
		name, rest, _ := strings.Cut(part, " ")
		if i := strings.Index(rest, "\n\t}"); i >= 0 {
			rest = rest[:i]
		}
		if strings.Contains(rest, "masquerade") || strings.Contains(rest, " snat ") {
			natChains[name] = true
		}
	}
	for _, line := range strings.Split(text, "\n") {
		body, _, _ := strings.Cut(line, "#")
		for _, m := range reV4.FindAllStringSubmatch(body, -1) {
			if a, err := netip.ParseAddr(m[1]); err == nil {
				f.addrs = append(f.addrs, hostIn(a, m[3]))
			}
		}
		for _, m := range reV6.FindAllStringSubmatch(body, -1) {
			if a, err := netip.ParseAddr(m[1]); err == nil {
				f.addrs = append(f.addrs, hostIn(a, m[2]))
			}
		}
		if strings.Contains(body, "masquerade") || strings.Contains(body, "snat") {
			if m := reOifname.FindStringSubmatch(body); m != nil {
				f.natOut[m[1]] = true
			}
		}
		// fw4 style: oifname "eth1" jump srcnat_wan, the masquerade in there.
		if m := reJumpTo.FindStringSubmatch(body); m != nil && natChains[m[1]] {
			if o := reOifname.FindStringSubmatch(body); o != nil {
				f.natOut[o[1]] = true
			}
		}
		if m := reDNATPort.FindStringSubmatch(body); m != nil {
			p, _ := strconv.Atoi(m[2])
			f.fwdPorts = append(f.fwdPorts, uint16(p))
			if im := reIifname.FindStringSubmatch(body); im != nil {
				f.forwards = append(f.forwards, portForward{iface: im[1], proto: Proto(m[1]), port: uint16(p)})
			}
		}
	}
	return f
}

// hostIn turns a prefix into a host inside it (address 7 of a network).
func hostIn(a netip.Addr, bits string) netip.Addr {
	if bits == "" {
		return a
	}
	n, _ := strconv.Atoi(bits[1:])
	p := netip.PrefixFrom(a, n).Masked()
	if n >= a.BitLen()-3 {
		return a
	}
	b := p.Addr().AsSlice()
	b[len(b)-1] |= 7
	h, _ := netip.AddrFromSlice(b)
	return h
}

// generator makes packets for one ruleset and its real topology.
type generator struct {
	r      *rand.Rand
	topo   Topology
	facts  rulesetFacts
	hosts  map[string][]netip.Addr // remote hosts by interface
	ifaces []string
	sport  uint16
}

// newGenerator places the hosts: those of the example probes where they
// use them, the ruleset's addresses and one extra on-link host per
// connected prefix on the interface that reaches them (connected prefix,
// else a route of the topology); addresses nothing reaches are left out.
func newGenerator(seed uint64, topo Topology, facts rulesetFacts, probes []Probe) *generator {
	g := &generator{r: rand.New(rand.NewPCG(seed, 0x5eed)), topo: topo, facts: facts, hosts: map[string][]netip.Addr{}, sport: 41000}
	local := map[netip.Addr]bool{}
	for _, i := range topo.Interfaces {
		g.ifaces = append(g.ifaces, i.Name)
		for _, a := range i.Addrs {
			local[a.Addr()] = true
		}
	}
	placed := map[netip.Addr]bool{}
	place := func(a netip.Addr) {
		if placed[a] || local[a] || !unicast(a) || a.IsLinkLocalUnicast() {
			return
		}
		if ifc := g.reaching(a); ifc != "" {
			placed[a] = true
			g.hosts[ifc] = append(g.hosts[ifc], a)
		}
	}
	for _, p := range probes {
		place(p.Src.Addr)
		place(p.Dst.Addr)
		if p.DNAT != nil {
			place(p.DNAT.Addr)
		}
	}
	for _, a := range facts.addrs {
		place(a)
	}
	for _, i := range topo.Interfaces {
		for _, a := range i.Addrs {
			place(hostIn(a.Addr(), "/"+strconv.Itoa(a.Bits())).Next().Next().Next().Next().Next())
		}
	}
	return g
}

// reaching returns the interface through which the topology reaches a.
func (g *generator) reaching(a netip.Addr) string {
	for _, i := range g.topo.Interfaces {
		if connected(i, a) {
			return i.Name
		}
	}
	for _, i := range g.topo.Interfaces {
		for _, r := range i.Routes {
			if r.Contains(a) {
				return i.Name
			}
		}
	}
	return ""
}

func pick[T any](r *rand.Rand, l []T) T { return l[r.IntN(len(l))] }

func (g *generator) routerAddrs(ifname string, v6 bool) []netip.Addr {
	var out []netip.Addr
	for _, i := range g.topo.Interfaces {
		for _, a := range i.Addrs {
			if a.Addr().Is6() == v6 && (ifname == "" || i.Name == ifname) {
				out = append(out, a.Addr())
			}
		}
	}
	return out
}

func (g *generator) hostsOf(ifname string, v6 bool) []netip.Addr {
	var out []netip.Addr
	for _, h := range g.hosts[ifname] {
		if h.Is6() == v6 {
			out = append(out, h)
		}
	}
	return out
}

func ep(a netip.Addr, port uint16) string {
	if port == 0 {
		return Endpoint{Addr: a}.String()
	}
	return netip.AddrPortFrom(a, port).String()
}

// one returns the text of one generated probe (dummy verdict "accept").
func (g *generator) one() string {
	r := g.r
	g.sport++
	sport := g.sport
	v6 := r.IntN(3) == 0
	if len(g.routerAddrs("", v6)) == 0 {
		v6 = !v6
	}
	port := func() uint16 {
		if len(g.facts.ports) > 0 && r.IntN(10) < 7 {
			return pick(r, g.facts.ports)
		}
		return pick(r, []uint16{21, 23, 25, 110, 161, 3306, 5432, 8443, 9999})
	}
	in := pick(r, g.ifaces)
	// NAT flows first: a port forward, or a reply to a source-natted
	// client, new or established.
	if len(g.facts.natOut) > 0 && !v6 && r.IntN(4) == 0 {
		var wan, lan string
		for _, i := range g.ifaces {
			if g.facts.natOut[i] {
				wan = i
			} else {
				lan = i
			}
		}
		wanAddrs, wanHosts, lanHosts := g.routerAddrs(wan, false), g.hostsOf(wan, false), g.hostsOf(lan, false)
		if wan != "" && lan != "" && len(wanAddrs) > 0 && len(wanHosts) > 0 && len(lanHosts) > 0 {
			w, h, l := wanAddrs[0], pick(r, wanHosts), pick(r, lanHosts)
			switch r.IntN(4) {
			case 0: // masqueraded client's reply
				svc := pick(r, []uint16{443, 80, 53})
				return fmt.Sprintf("accept tcp %s -> %s in %s out %s state established dnat %s", ep(h, svc), ep(w, sport), wan, lan, ep(l, sport))
			case 1: // established client flow going out
				return fmt.Sprintf("accept udp %s -> %s in %s out %s state established snat %s", ep(l, sport), ep(h, 53), lan, wan, w)
			case 2: // a port forward, new
				if len(g.facts.forwards) > 0 {
					pf := pick(r, g.facts.forwards)
					return fmt.Sprintf("accept %s %s -> %s in %s out %s", pf.proto, ep(h, sport), ep(w, pf.port), pf.iface, lan)
				}
			default: // masqueraded ping's reply
				return fmt.Sprintf("accept icmp %s -> %s in %s out %s type echo-reply state established dnat %s", h, w, wan, lan, l)
			}
		}
	}
	// Plain packets: to the host, through it, from it.
	var src, dst netip.Addr
	var dir string
	switch k := r.IntN(10); {
	case k < 5 || len(g.ifaces) == 1 && k < 8:
		srcs, dsts := g.hostsOf(in, v6), g.routerAddrs("", v6)
		if len(srcs) == 0 || len(dsts) == 0 {
			return g.one()
		}
		src, dst, dir = pick(r, srcs), pick(r, dsts), "in "+in
		if r.IntN(15) == 0 { // all-nodes multicast
			dst = netip.MustParseAddr("224.0.0.1")
			if v6 {
				dst = netip.MustParseAddr("ff02::1")
			}
		}
	case k < 8:
		out := pick(r, g.ifaces)
		srcs, dsts := g.hostsOf(in, v6), g.hostsOf(out, v6)
		if out == in || len(srcs) == 0 || len(dsts) == 0 {
			return g.one()
		}
		src, dst, dir = pick(r, srcs), pick(r, dsts), "in "+in+" out "+out
	default:
		srcs, dsts := g.routerAddrs(in, v6), g.hostsOf(in, v6)
		if len(srcs) == 0 || len(dsts) == 0 {
			return g.one()
		}
		src, dst, dir = pick(r, srcs), pick(r, dsts), "out "+in
	}
	icmp := "icmp"
	if v6 {
		icmp = "icmpv6"
	}
	hop := "ttl"
	if v6 {
		hop = "hoplimit"
	}
	switch k := r.IntN(26); {
	case k == 20: // another IP protocol
		protos := []string{"esp", "gre", "ah", "99"}
		if !v6 {
			protos = append(protos, "igmp")
		}
		return fmt.Sprintf("accept %s %s -> %s %s", pick(r, protos), src, dst, dir)
	case k == 21: // what conntrack cannot track
		return fmt.Sprintf("accept tcp %s -> %s %s state invalid", ep(src, sport), ep(dst, port()), dir)
	case k == 22 && strings.HasPrefix(dir, "in "):
		if r.IntN(2) == 0 {
			return fmt.Sprintf("accept udp %s -> %s %s state invalid", ep(src, sport), ep(dst, port()), dir)
		}
		if v6 && !strings.Contains(dir, " out ") {
			return g.one()
		}
		return fmt.Sprintf("accept %s %s -> %s %s state invalid", icmp, src, dst, dir)
	case k == 23 && !strings.HasPrefix(dir, "out ") && g.established(dir, src, dst) != "": // an error about a flow of the destination
		types := []string{"destination-unreachable", "time-exceeded"}
		if v6 {
			types = append(types, "packet-too-big")
		}
		return fmt.Sprintf("accept %s %s -> %s %s state related type %s code %d", icmp, src, dst, dir, pick(r, types), r.IntN(4))
	case k == 24:
		return fmt.Sprintf("accept udp %s -> %s %s dscp %s", ep(src, sport), ep(dst, port()), dir, pick(r, []string{"cs1", "cs6", "af41", "ef", "7"}))
	case k == 25:
		return fmt.Sprintf("accept tcp %s -> %s %s %s %d", ep(src, sport), ep(dst, port()), dir, hop, pick(r, []int{2, 32, 128, 255}))
	case k < 8:
		extra := pick(r, []string{"", "", "", "", "flags ACK", "flags FIN", "flags SYN,ACK", g.established(dir, src, dst)})
		sp, dp := sport, port()
		if extra == "state established" && r.IntN(2) == 0 {
			sp, dp = dp, sport // a server's answer
		}
		if extra == "state established" && (g.forwarded(sp) || g.forwarded(dp)) {
			extra = "" // a port forward's flow is only known with its mapping
		}
		return strings.TrimSpace(fmt.Sprintf("accept tcp %s -> %s %s %s", ep(src, sp), ep(dst, dp), dir, extra))
	case k < 13:
		extra, dp := pick(r, []string{"", "", "", g.established(dir, src, dst)}), port()
		if g.forwarded(dp) {
			extra = "" // a port forward's flow is only known with its mapping
		}
		return strings.TrimSpace(fmt.Sprintf("accept udp %s -> %s %s %s", ep(src, sport), ep(dst, dp), dir, extra))
	case k < 20:
		types := []string{"echo-request", "echo-request", "echo-reply", "destination-unreachable", "time-exceeded", "timestamp-request"}
		if v6 {
			types = []string{"echo-request", "echo-request", "echo-reply", "destination-unreachable", "time-exceeded", "packet-too-big", "parameter-problem"}
			if strings.HasPrefix(dir, "in ") && !strings.Contains(dir, " out ") {
				types = append(types, "nd-neighbor-solicit", "nd-neighbor-advert")
			}
		}
		typ := pick(r, types)
		extra := ""
		if (typ == "echo-request" || typ == "echo-reply") && r.IntN(4) == 0 {
			extra = " " + g.established(dir, src, dst)
		}
		return fmt.Sprintf("accept %s %s -> %s %s type %s%s", icmp, src, dst, dir, typ, extra)
	}
	return g.one()
}

// established is "state established", except for forwarded packets of a
// ruleset that translates addresses: a flow through NAT is only known with
// its mapping (the NAT cases above write it), and the twin cannot guess it.
//
// The same holds for the host's own flows through a NAT interface from an
// address of another interface (the router's lan address towards the wan
// is source-natted too).
func (g *generator) established(dir string, src, dst netip.Addr) string {
	f := strings.Fields(dir)
	if len(g.facts.natOut) > 0 {
		switch {
		case len(f) == 4:
			return ""
		case f[0] == "in" && g.facts.natOut[f[1]] && !slices.Contains(g.routerAddrs(f[1], dst.Is6()), dst):
			return ""
		case f[0] == "out" && g.facts.natOut[f[1]] && !slices.Contains(g.routerAddrs(f[1], src.Is6()), src):
			return ""
		}
	}
	return "state established"
}

// forwarded reports whether a port is one the ruleset forwards (dnat).
func (g *generator) forwarded(port uint16) bool {
	return slices.Contains(g.facts.fwdPorts, port)
}

// generate returns n generated probes without verdicts.
func (g *generator) generate(t testing.TB, n int) []Probe {
	t.Helper()
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString(g.one() + "\n")
	}
	probes, err := Parse("generated.probes", strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	for i := range probes {
		probes[i].Verdict = ""
	}
	return slices.Clip(probes)
}
