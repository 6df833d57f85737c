// Package gen generates realistic nftables rulesets of a chosen size, for
// benchmarks and tests. The output is native nft source text that loads with
// `nft -f` in an empty network namespace (it names interfaces only by
// iifname/oifname and "lo", so no device has to exist), and it is
// deterministic: the same Options always give the same bytes.
//
// A generated ruleset is one table holding:
//
//   - base chains input (policy drop), forward (policy drop) and output
//     (policy accept);
//   - per-service regular chains svc_N, reached from input by explicit
//     `tcp dport P jump svc_N` rules and one verdict map for the rest, and
//     for every third service a deeper chain svc_N_deep, so a packet
//     traverses at most three chain levels (input → svc_N → svc_N_deep);
//   - with Options.Sets, named sets (an interval allow-list, a blocklist, a
//     port set, and their IPv6 twins for inet/ip6) and a named verdict map for
//     the service dispatch; without it, anonymous sets and an anonymous vmap.
//
// The rules mix address and port matches, anonymous sets, ct state, counters,
// and on some rules log and limit, reject with tcp reset, and meta mark.
//
// IptablesSave gives the same rules in iptables-save form (see its doc for
// the mapping), so that benchmarks load the same content with nft, fwslot
// and iptables-restore.
//
// Anonymous sets are capped at MaxAnonSets per ruleset, spread over the
// chains: the kernel names each new anonymous set by scanning the table's
// sets, so loading N of them costs O(N²) (measured with nft 1.0.6 on 6.18:
// 4.7k anonymous sets took 3.6 s of kernel time, and a 100k-rule ruleset with
// 16k of them took 110 s against 4 s without), which would turn a rule-count
// benchmark into an anonymous-set benchmark.
package gen

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// Options chooses the ruleset to generate.
type Options struct {
	// Rules is the exact number of rules, summed over all chains.
	// Set elements and map elements are not rules. Negative counts as 0.
	Rules int
	// Seed makes the output reproducible: equal Options give equal output.
	Seed int64
	// Family is "inet" (default), "ip" or "ip6".
	Family string
	// Table is the table name; default "filter".
	Table string
	// Sets adds named sets and a named verdict map and uses them in rules.
	Sets bool
}

// MaxAnonSets bounds the anonymous sets and maps in one generated ruleset
// (about one per 25 rules below 10k rules).
const MaxAnonSets = 400

// Families lists the values Options.Family accepts ("" means inet).
var Families = []string{"inet", "ip", "ip6"}

// Ruleset returns nft source text of one table with exactly opts.Rules rules
// in total across its chains. It panics if opts.Family is not one of
// Families; check with ValidFamily first when the family comes from a user.
func Ruleset(opts Options) string {
	if opts.Family == "" {
		opts.Family = "inet"
	}
	if opts.Table == "" {
		opts.Table = "filter"
	}
	if !ValidFamily(opts.Family) {
		panic(fmt.Sprintf("gen: unsupported family %q (want inet, ip or ip6)", opts.Family))
	}
	if opts.Rules < 0 {
		opts.Rules = 0
	}
	g := &generator{
		opts: opts,
		rng:  rand.New(rand.NewPCG(uint64(opts.Seed), 0x6e667461626c6573)),
		v4:   opts.Family != "ip6",
		v6:   opts.Family != "ip",
	}
	return g.build()
}

// ValidFamily reports whether Ruleset supports family ("" counts as inet).
func ValidFamily(family string) bool {
	if family == "" {
		return true
	}
	for _, f := range Families {
		if f == family {
			return true
		}
	}
	return false
}

type chain struct {
	name   string
	header string // base chain "type ..." line, empty for regular chains
	rules  []string
}

type service struct {
	port int
	deep bool
	c    *chain
	d    *chain // svc_N_deep, when deep
}

type generator struct {
	opts   Options
	rng    *rand.Rand
	v4, v6 bool
	seq    int // running counter that keeps generated addresses distinct
	b      *budget
	anon   int // anonymous sets still allowed
}

// useAnon reports whether the rule being generated may use an anonymous
// set. About a quarter of rules ask; the answer is spread so that the
// MaxAnonSets allowance lasts over the whole ruleset.
func (g *generator) useAnon() bool {
	if g.anon <= 0 || g.rng.IntN(g.b.left+1) >= 4*g.anon {
		return false
	}
	g.anon--
	return true
}

// budget hands out rule slots until the requested total is reached.
type budget struct{ left int }

func (b *budget) add(c *chain, rule string) bool {
	if b.left <= 0 {
		return false
	}
	c.rules = append(c.rules, rule)
	b.left--
	return true
}

const firstServicePort = 2000

func (g *generator) build() string {
	n := g.opts.Rules
	b := &budget{left: n}
	g.b = b
	g.anon = min(max(n/25, 8), MaxAnonSets)

	input := &chain{name: "input", header: "type filter hook input priority filter; policy drop;"}
	forward := &chain{name: "forward", header: "type filter hook forward priority filter; policy drop;"}
	output := &chain{name: "output", header: "type filter hook output priority filter; policy accept;"}

	// About one service chain per 40 rules, between 1 and 4000.
	nsvc := min(max(n/40, 1), 4000)
	if n < 12 {
		nsvc = 0
	}
	svcs := make([]*service, nsvc)
	for i := range svcs {
		s := &service{port: firstServicePort + i, deep: nsvc >= 3 && i%3 == 2}
		s.c = &chain{name: fmt.Sprintf("svc_%d", i)}
		if s.deep {
			s.d = &chain{name: fmt.Sprintf("svc_%d_deep", i)}
		}
		svcs[i] = s
	}

	// Skeleton, most important first, so small rulesets stay sensible.
	b.add(input, "ct state established,related accept")
	b.add(input, "ct state invalid drop")
	b.add(input, `iif "lo" accept`)
	if g.opts.Sets && g.v4 {
		b.add(input, "ip saddr @blocklist4 counter drop")
	}
	if g.opts.Sets && g.v6 {
		b.add(input, "ip6 saddr @blocklist6 counter drop")
	}
	b.add(forward, "ct state established,related accept")
	b.add(output, "ct state invalid drop")
	const explicit = 16
	for i, s := range svcs {
		if i >= explicit {
			break
		}
		b.add(input, fmt.Sprintf("tcp dport %d ct state new jump %s", s.port, s.c.name))
	}
	if nsvc > explicit {
		if g.opts.Sets {
			b.add(input, "tcp dport vmap @services")
		} else {
			var el []string
			for _, s := range svcs[explicit:] {
				el = append(el, fmt.Sprintf("%d : jump %s", s.port, s.c.name))
			}
			b.add(input, "tcp dport vmap { "+strings.Join(el, ", ")+" }")
		}
	}
	for _, s := range svcs {
		if s.deep {
			b.add(s.c, g.deepJump(s))
		}
	}
	if g.v4 {
		b.add(input, "icmp type echo-request limit rate 10/second accept")
	}
	if g.v6 {
		b.add(input, "icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-advert, echo-request } accept")
	}

	// Fill the rest: ~6% forward, ~3% output, the rest services and input.
	rest := b.left
	nfwd, nout := rest*6/100, rest*3/100
	for range nfwd {
		b.add(forward, g.forwardRule())
	}
	for range nout {
		b.add(output, g.outputRule())
	}
	for i := 0; b.left > 0; i++ {
		if nsvc == 0 {
			b.add(input, g.inputRule())
			continue
		}
		s := svcs[i%nsvc]
		if s.deep && g.rng.IntN(3) == 0 {
			b.add(s.d, g.deepRule(s))
		} else if g.rng.IntN(20) == 0 {
			b.add(input, g.inputRule())
		} else {
			b.add(s.c, g.serviceRule(s))
		}
	}

	var out strings.Builder
	out.Grow(n*64 + 1024)
	fmt.Fprintf(&out, "# generated by fwslot internal/gen: rules=%d seed=%d family=%s sets=%t\n",
		n, g.opts.Seed, g.opts.Family, g.opts.Sets)
	fmt.Fprintf(&out, "table %s %s {\n", g.opts.Family, g.opts.Table)
	if g.opts.Sets {
		g.writeSets(&out, svcs, explicit)
	}
	chains := []*chain{input, forward, output}
	for _, s := range svcs {
		chains = append(chains, s.c)
		if s.deep {
			chains = append(chains, s.d)
		}
	}
	for _, c := range chains {
		fmt.Fprintf(&out, "\tchain %s {\n", c.name)
		if c.header != "" {
			fmt.Fprintf(&out, "\t\t%s\n", c.header)
		}
		for _, r := range c.rules {
			out.WriteString("\t\t")
			out.WriteString(r)
			out.WriteByte('\n')
		}
		out.WriteString("\t}\n")
	}
	out.WriteString("}\n")
	return out.String()
}

func (g *generator) writeSets(out *strings.Builder, svcs []*service, explicit int) {
	// Per family: an interval set of allowed networks and a blocklist of
	// min+rng(spread) addresses.
	for _, f := range []struct {
		on                 bool
		suffix, typ, allow string
		min, spread        int
		addr               string
	}{
		{g.v4, "4", "ipv4_addr", "10.0.0.0/8, 192.0.2.0/24, 198.51.100.0/25", 8, 24, "203.0.113.%d"},
		{g.v6, "6", "ipv6_addr", "2001:db8:100::/48, 2001:db8:200::/48", 4, 12, "2001:db8:bad::%x"},
	} {
		if !f.on {
			continue
		}
		fmt.Fprintf(out, "\tset allow%s {\n\t\ttype %s\n\t\tflags interval\n\t\telements = { %s }\n\t}\n", f.suffix, f.typ, f.allow)
		var el []string
		for i := range f.min + g.rng.IntN(f.spread) {
			el = append(el, fmt.Sprintf(f.addr, i+1))
		}
		fmt.Fprintf(out, "\tset blocklist%s {\n\t\ttype %s\n\t\telements = { %s }\n\t}\n", f.suffix, f.typ, strings.Join(el, ", "))
	}
	out.WriteString("\tset web_ports {\n\t\ttype inet_service\n\t\telements = { 80, 443, 8080, 8443 }\n\t}\n")
	if len(svcs) > explicit {
		out.WriteString("\tmap services {\n\t\ttype inet_service : verdict\n\t\telements = { ")
		for i, s := range svcs[explicit:] {
			if i > 0 {
				out.WriteString(", ")
			}
			fmt.Fprintf(out, "%d : jump %s", s.port, s.c.name)
		}
		out.WriteString(" }\n\t}\n")
	}
}

// v6pick chooses IPv6 for a rule: always in ip6, never in ip, one time in
// three in inet.
func (g *generator) v6pick() bool {
	switch {
	case g.v4 && g.v6:
		return g.rng.IntN(3) == 0
	default:
		return g.v6
	}
}

func (g *generator) next() int { g.seq++; return g.seq }

// Networks come from 10.0.0.0/9 and 2001:db8:100::/40, hosts from
// 10.128.0.0/9 and 2001:db8:1::/48, so a host never falls inside a network
// of the same anonymous set and hosts in one set are distinct.

func (g *generator) net4() string {
	k := g.next()
	return fmt.Sprintf("10.%d.%d.0/24", (k>>8)&127, k&255)
}

func (g *generator) host4() string {
	k := g.next()
	return fmt.Sprintf("10.%d.%d.%d", 128+(k>>14)&127, (k>>6)&255, (k&63)<<2+1)
}

func (g *generator) net6() string {
	k := g.next()
	return fmt.Sprintf("2001:db8:%x:%x::/64", 0x100+(k>>16)&0xff, k&0xffff)
}

func (g *generator) host6() string {
	k := g.next()
	return fmt.Sprintf("2001:db8:1:%x::%x", (k>>16)&0xffff, k&0xffff)
}

func (g *generator) saddrNet() string {
	if g.v6pick() {
		return "ip6 saddr " + g.net6()
	}
	return "ip saddr " + g.net4()
}

// saddrSet matches a few sources: an anonymous set when allowed, else one
// network.
func (g *generator) saddrSet() string {
	if !g.useAnon() {
		return g.saddrNet()
	}
	if g.v6pick() {
		return fmt.Sprintf("ip6 saddr { %s, %s, %s }", g.host6(), g.host6(), g.net6())
	}
	return fmt.Sprintf("ip saddr { %s, %s, %s }", g.host4(), g.host4(), g.net4())
}

func (g *generator) allowSet() string {
	if g.v6pick() {
		return "ip6 saddr @allow6"
	}
	return "ip saddr @allow4"
}

func (g *generator) verdict() string {
	switch g.rng.IntN(10) {
	case 0, 1:
		return "counter accept"
	case 2:
		return "drop"
	case 3:
		return "counter drop"
	default:
		return "accept"
	}
}

func (g *generator) port() int { return 1024 + g.rng.IntN(60000) }

// ports returns n distinct ports, comma separated.
func (g *generator) ports(n int) string {
	p := 1024 + g.rng.IntN(30000)
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprint(p)
		p += 1 + g.rng.IntN(1000)
	}
	return strings.Join(parts, ", ")
}

// serviceRule is a rule inside svc_N (the packet already matched its port).
func (g *generator) serviceRule(s *service) string {
	switch g.rng.IntN(12) {
	case 0, 1, 2:
		return g.saddrNet() + " " + g.verdict()
	case 3, 4:
		return g.saddrSet() + " ct state new " + g.verdict()
	case 5:
		if g.opts.Sets {
			return g.allowSet() + " counter accept"
		}
		return g.saddrNet() + " counter accept"
	case 6:
		return fmt.Sprintf("%s ct state new limit rate %d/second accept", g.saddrNet(), 10+g.rng.IntN(990))
	case 7:
		return fmt.Sprintf(`%s log prefix "%s: " level info drop`, g.saddrNet(), s.c.name)
	case 8:
		return fmt.Sprintf("%s tcp sport %d-%d accept", g.saddrNet(), 1024+g.rng.IntN(1000), 40000+g.rng.IntN(20000))
	case 9:
		return fmt.Sprintf("%s meta mark 0x%x accept", g.saddrNet(), 1+g.rng.IntN(0xffff))
	case 10:
		return fmt.Sprintf(`iifname "eth%d" %s accept`, g.rng.IntN(4), g.saddrNet())
	default:
		return g.saddrNet() + " reject with tcp reset"
	}
}

func (g *generator) deepJump(s *service) string {
	return fmt.Sprintf("%s jump %s", g.saddrNet(), s.d.name)
}

// deepRule is a rule of svc_N_deep, the third and last level.
func (g *generator) deepRule(s *service) string {
	switch g.rng.IntN(5) {
	case 0:
		return fmt.Sprintf("ct state new limit rate %d/minute burst 5 packets accept", 10+g.rng.IntN(600))
	case 1:
		return fmt.Sprintf(`limit rate 5/minute log prefix "%s: " drop`, s.d.name)
	case 2:
		return "tcp flags & (syn|ack) == syn " + g.saddrNet() + " counter accept"
	default:
		return g.saddrNet() + " " + g.verdict()
	}
}

// inputRule is a rule directly in input, on its own ports.
func (g *generator) inputRule() string {
	switch g.rng.IntN(8) {
	case 0:
		if !g.useAnon() {
			return fmt.Sprintf("%s tcp dport %d ct state new accept", g.saddrNet(), g.port())
		}
		return fmt.Sprintf("%s tcp dport { %s } ct state new accept", g.saddrNet(), g.ports(3))
	case 1:
		return fmt.Sprintf("%s udp dport %d counter accept", g.saddrNet(), g.port())
	case 2:
		if g.opts.Sets {
			return g.allowSet() + " tcp dport @web_ports accept"
		}
		if !g.useAnon() {
			return g.saddrNet() + " tcp dport 443 accept"
		}
		return g.saddrNet() + " tcp dport { 80, 443 } accept"
	case 3:
		return fmt.Sprintf("tcp dport %d reject with tcp reset", g.port())
	case 4:
		return fmt.Sprintf(`%s tcp dport %d limit rate 3/minute log prefix "input: " accept`, g.saddrNet(), g.port())
	default:
		return fmt.Sprintf("%s tcp dport %d %s", g.saddrSet(), g.port(), g.verdict())
	}
}

func (g *generator) forwardRule() string {
	in, out := g.rng.IntN(4), g.rng.IntN(4)
	switch g.rng.IntN(5) {
	case 0:
		return fmt.Sprintf(`iifname "eth%d" oifname "eth%d" %s ct state new accept`, in, out, g.saddrNet())
	case 1:
		if !g.useAnon() {
			return fmt.Sprintf(`iifname "eth%d" %s tcp dport %d accept`, in, g.saddrSet(), g.port())
		}
		return fmt.Sprintf(`iifname "eth%d" %s tcp dport { %s } accept`, in, g.saddrSet(), g.ports(2))
	case 2:
		return fmt.Sprintf("%s udp dport %d counter drop", g.saddrNet(), g.port())
	default:
		return fmt.Sprintf(`oifname "eth%d" %s %s`, out, g.saddrNet(), g.verdict())
	}
}

func (g *generator) outputRule() string {
	switch g.rng.IntN(3) {
	case 0:
		return fmt.Sprintf("meta skuid %d tcp dport %d counter accept", 1000+g.rng.IntN(1000), g.port())
	case 1:
		if g.v6pick() {
			return fmt.Sprintf("ip6 daddr %s tcp dport 25 reject with tcp reset", g.net6())
		}
		return fmt.Sprintf("ip daddr %s tcp dport 25 reject with tcp reset", g.net4())
	default:
		return fmt.Sprintf("meta mark set 0x%x", 1+g.rng.IntN(0xff))
	}
}
