package probe

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// parseError is a malformed probe line: where it is and what was expected.
type parseError struct {
	File     string
	Line     int
	Expected string
	Got      string
}

// Error renders "file:line: expected X, got Y".
func (e *parseError) Error() string {
	where := e.File
	if where == "" {
		where = "probe"
	}
	got := e.Got
	if got == "" {
		got = "end of line"
	} else {
		got = strconv.Quote(got)
	}
	return fmt.Sprintf("%s:%d: expected %s, got %s", where, e.Line, e.Expected, got)
}

// maxParseErrors is how many malformed lines Parse reports before it stops
// reading: a file of garbage costs ten messages, not one per line.
const maxParseErrors = 10

// Parse reads a probe file. name is used in error messages and in each
// probe's File; malformed lines are reported together (errors.Join), up to
// maxParseErrors of them, then a line saying Parse stopped.
func Parse(name string, r io.Reader) ([]Probe, error) {
	var probes []Probe
	var errs []error
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		body, comment, _ := strings.Cut(line, "#")
		if strings.TrimSpace(body) == "" {
			continue
		}
		p, err := parseBody(name, n, body, true)
		if err != nil {
			if len(errs) == maxParseErrors {
				errs = append(errs, fmt.Errorf("%s:%d: stopped after %d malformed lines; fix these first", name, n, maxParseErrors))
				break
			}
			errs = append(errs, err)
			continue
		}
		p.Name = strings.TrimSpace(comment)
		p.Text = strings.TrimSpace(line)
		probes = append(probes, p)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read probes %s: %w", name, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return probes, nil
}

// ParseLine parses the single-packet form used by `fwslot probe` and
// `fwslot explain`: a probe line without the VERDICT word.
func ParseLine(line string) (Probe, error) {
	body, comment, _ := strings.Cut(line, "#")
	p, err := parseBody("", 1, body, false)
	if err != nil {
		return Probe{}, err
	}
	p.Name = strings.TrimSpace(comment)
	p.Text = strings.TrimSpace(line)
	return p, nil
}

type lexer struct {
	file string
	line int
	toks []string
	pos  int
}

func (l *lexer) next() string {
	if l.pos >= len(l.toks) {
		return ""
	}
	t := l.toks[l.pos]
	l.pos++
	return t
}

func (l *lexer) fail(expected, got string) error {
	return &parseError{File: l.file, Line: l.line, Expected: expected, Got: got}
}

func parseBody(file string, line int, body string, withVerdict bool) (Probe, error) {
	body = strings.ReplaceAll(body, "->", " -> ")
	l := &lexer{file: file, line: line, toks: strings.Fields(body)}
	p := Probe{File: file, Line: line, State: StateNew}
	if withVerdict {
		t := l.next()
		switch Verdict(t) {
		case Accept, Drop, Reject:
			p.Verdict = Verdict(t)
		default:
			return p, l.fail("verdict (accept, drop or reject)", t)
		}
	}
	t := l.next()
	proto, ok := parseProto(t)
	if !ok {
		return p, l.fail("protocol (tcp, udp, icmp, icmpv6, sctp, esp, gre, ... or a number 0-255)", t)
	}
	p.Proto = proto
	var err error
	if p.Src, err = parseEndpoint(l, "source ADDRESS or ADDRESS:PORT"); err != nil {
		return p, err
	}
	if t := l.next(); t != "->" {
		return p, l.fail(`"->"`, t)
	}
	if p.Dst, err = parseEndpoint(l, "destination ADDRESS or ADDRESS:PORT"); err != nil {
		return p, err
	}
	flagsSet, typeSet, codeSet := false, false, false
	seen := map[string]bool{}
	for {
		kw := l.next()
		if kw == "" {
			break
		}
		if seen[kw] {
			return p, l.fail("each option at most once", kw)
		}
		seen[kw] = true
		val := l.next()
		switch kw {
		case "in", "out":
			if !validIfname(val) {
				return p, l.fail("interface name after "+kw, val)
			}
			if kw == "in" {
				p.In = val
			} else {
				p.Out = val
			}
		case "state":
			switch State(val) {
			case StateNew, StateEstablished, StateRelated, StateInvalid:
				p.State = State(val)
			default:
				return p, l.fail("state new, established, related or invalid", val)
			}
		case "flags":
			f, ok := parseFlags(val)
			if !ok {
				return p, l.fail("tcp flags like SYN,ACK", val)
			}
			p.Flags, flagsSet = f, true
		case "type":
			p.ICMPType, typeSet = 0, true
			t, ok := parseICMPType(p.Proto, val)
			if !ok {
				return p, l.fail(string(p.Proto)+" type name (e.g. echo-request) or number", val)
			}
			p.ICMPType = t
		case "code":
			c, err := strconv.ParseUint(val, 10, 8)
			if err != nil {
				return p, l.fail("icmp code 0-255", val)
			}
			p.ICMPCode, codeSet = uint8(c), true
		case "ttl", "hoplimit":
			v, err := strconv.ParseUint(val, 10, 8)
			if err != nil || v == 0 {
				return p, l.fail(kw+" 1-255", val)
			}
			if seen["ttl"] && seen["hoplimit"] {
				return p, l.fail("ttl or hoplimit, not both", kw)
			}
			p.TTL = uint8(v)
		case "dscp":
			d, ok := parseDSCP(val)
			if !ok {
				return p, l.fail("dscp name (cs1, af41, ef, ...) or number 0-63", val)
			}
			p.DSCP = d
		case "mark":
			m, err := strconv.ParseUint(val, 0, 32)
			if err != nil {
				return p, l.fail("mark as a 32-bit number", val)
			}
			p.Mark = uint32(m)
		case "snat", "dnat":
			l.pos--
			e, err := parseEndpoint(l, kw+" ADDRESS or ADDRESS:PORT")
			if err != nil {
				return p, err
			}
			if kw == "snat" {
				p.SNAT = &e
			} else {
				p.DNAT = &e
			}
		case "frag":
			f, ok := parseFrag(val)
			if !ok {
				return p, l.fail("frag all, first or last", val)
			}
			p.Frag = f
		default:
			l.pos--
			return p, l.fail("in, out, state, flags, type, code, ttl, hoplimit, dscp, mark, snat, dnat or frag", kw)
		}
	}
	// Semantic checks.
	where := func(exp, got string) error { return l.fail(exp, got) }
	if p.In == "" && p.Out == "" {
		return p, where("in IFACE and/or out IFACE", "")
	}
	if p.Src.Addr.Is4() != p.Dst.Addr.Is4() {
		return p, where("source and destination of the same IP family", p.Src.Addr.String()+" -> "+p.Dst.Addr.String())
	}
	for _, nat := range []*Endpoint{p.SNAT, p.DNAT} {
		if nat != nil && nat.Addr.Is4() != p.Src.Addr.Is4() {
			return p, where("nat address of the probe's IP family", nat.Addr.String())
		}
	}
	switch p.Proto {
	case ICMP:
		if !p.Src.Addr.Is4() {
			return p, where("IPv4 addresses for icmp (use icmpv6)", p.Src.Addr.String())
		}
	case ICMPv6:
		if !p.Src.Addr.Is6() {
			return p, where("IPv6 addresses for icmpv6 (use icmp)", p.Src.Addr.String())
		}
	}
	if seen["ttl"] && p.is6() {
		return p, where("hoplimit for IPv6", "ttl")
	}
	if seen["hoplimit"] && !p.is6() {
		return p, where("ttl for IPv4", "hoplimit")
	}
	if codeSet && !p.Proto.isICMP() {
		return p, where("code only for icmp and icmpv6", "code")
	}
	if typeSet && !p.Proto.isICMP() {
		return p, where("no icmp type for "+string(p.Proto), "type")
	}
	if !p.Proto.hasPorts() {
		if p.Src.Port != 0 || p.Dst.Port != 0 {
			return p, where("addresses without ports for "+string(p.Proto), p.Src.String()+" -> "+p.Dst.String())
		}
		if !typeSet && p.Proto.isICMP() {
			p.ICMPType = defaultICMPTypeIn(p.Proto, p.State)
		}
	} else {
		if p.Dst.Port == 0 {
			return p, where("destination port for "+string(p.Proto), p.Dst.String())
		}
		if typeSet {
			return p, where("no icmp type for "+string(p.Proto), "type")
		}
	}
	switch p.State {
	case StateEstablished:
		if p.Proto != TCP && p.Proto != UDP && !p.Proto.isICMP() {
			return p, where("state established only for tcp, udp, icmp or icmpv6", string(p.Proto))
		}
	case StateRelated:
		if !p.Proto.isICMP() || !isICMPError(p.Proto.number(), p.ICMPType) {
			return p, where("state related only for an icmp/icmpv6 error type (destination-unreachable, time-exceeded, parameter-problem, packet-too-big)", string(p.Proto))
		}
		if p.SNAT != nil || p.DNAT != nil {
			return p, where("no snat or dnat with state related", "")
		}
	case StateInvalid:
		if p.Proto != TCP && ((p.Proto != UDP && !p.Proto.isICMP()) || p.In == "") {
			return p, where("state invalid only for tcp, or for udp/icmp/icmpv6 arriving on an interface (in)", string(p.Proto))
		}
		if p.SNAT != nil || p.DNAT != nil {
			return p, where("no snat or dnat with state invalid", "")
		}
		if p.Proto == ICMPv6 && p.Out == "" {
			// The kernel discards an icmpv6 packet with a bad checksum
			// after the ruleset, before any socket sees it: its fate
			// would not show the ruleset's verdict.
			return p, where("state invalid for icmpv6 only when forwarded (in and out): a bad checksum is discarded before local delivery", "")
		}
	}
	if err := checkFrag(p, where); err != nil {
		return p, err
	}
	if p.Proto == TCP {
		if !flagsSet {
			p.Flags = defaultFlags(p.State)
		}
	} else if flagsSet {
		return p, where("flags only for tcp", "flags")
	}
	return p, nil
}

func validIfname(s string) bool {
	if s == "" || len(s) > 15 || s == "." || s == ".." {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == '/' || r == ':' || r == '#' || r > 126 {
			return false
		}
	}
	return true
}

func parseEndpoint(l *lexer, expected string) (Endpoint, error) {
	t := l.next()
	if t == "" {
		return Endpoint{}, l.fail(expected, t)
	}
	if strings.HasPrefix(t, "[") {
		ap, err := netip.ParseAddrPort(t)
		if err == nil && ap.Addr().Is6() && ap.Port() != 0 && ap.Addr().Zone() == "" {
			return Endpoint{Addr: ap.Addr(), Port: ap.Port()}, nil
		}
		if strings.HasSuffix(t, "]") {
			if a, err := netip.ParseAddr(t[1 : len(t)-1]); err == nil && a.Is6() && a.Zone() == "" {
				return Endpoint{Addr: a}, nil
			}
		}
		return Endpoint{}, l.fail(expected+" (IPv6 as [ADDR] or [ADDR]:PORT, port 1-65535)", t)
	}
	if a, err := netip.ParseAddr(t); err == nil && a.Zone() == "" {
		return Endpoint{Addr: a.Unmap()}, nil
	}
	if ap, err := netip.ParseAddrPort(t); err == nil && ap.Addr().Is4() && ap.Port() != 0 {
		return Endpoint{Addr: ap.Addr(), Port: ap.Port()}, nil
	}
	return Endpoint{}, l.fail(expected+" (port 1-65535)", t)
}

func parseFlags(s string) (uint8, bool) {
	if s == "" {
		return 0, false
	}
	var f uint8
	for _, part := range strings.Split(strings.ToUpper(s), ",") {
		ok := false
		for _, n := range tcpFlagNames {
			if n.name == part {
				f |= n.bit
				ok = true
			}
		}
		if !ok {
			return 0, false
		}
	}
	return f, true
}

func parseICMPType(p Proto, s string) (uint8, bool) {
	var m map[string]uint8
	switch p {
	case ICMP:
		m = icmpTypes
	case ICMPv6:
		m = icmp6Types
	default:
		return 0, false
	}
	if v, ok := m[s]; ok {
		return v, true
	}
	n, err := strconv.ParseUint(s, 10, 8)
	return uint8(n), err == nil
}
