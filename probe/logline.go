package probe

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// A kernel log line as the nftables `log` statement writes it (the
// nf_log_syslog format): PREFIX, then IN=, OUT=, MAC=, SRC=, DST=, ...,
// PROTO= and the transport fields. dmesg, journalctl -k and /dev/kmsg
// headers in front of the prefix are removed.
var (
	logIfaces  = regexp.MustCompile(`IN=(\S*) OUT=(\S*) `)
	dmesgStamp = regexp.MustCompile(`^\[\s*[0-9]+\.[0-9]+\] `)
	kmsgHeader = regexp.MustCompile(`^[0-9]+,[0-9]+,[0-9]+,[^;]*;`)
	journalHdr = regexp.MustCompile(`^\S+\s+\S+\s+\S+\s+\S+\s+kernel: (\[\s*[0-9]+\.[0-9]+\] )?`)
	isoJournal = regexp.MustCompile(`^\S+T\S+\s+\S+\s+kernel: (\[\s*[0-9]+\.[0-9]+\] )?`)
)

// stripLogHeader removes what dmesg, journalctl or /dev/kmsg put in front
// of the log statement's text.
func stripLogHeader(line string) string {
	line = strings.TrimRight(line, "\r\n")
	for _, re := range []*regexp.Regexp{kmsgHeader, dmesgStamp, journalHdr, isoJournal} {
		if loc := re.FindStringIndex(line); loc != nil {
			line = line[loc[1]:]
		}
	}
	return line
}

// ParseLogLine rebuilds the packet a kernel log line describes (a line the
// nftables `log` statement wrote, as dmesg, journalctl -k or /dev/kmsg
// show it) as a probe, and returns the line's log prefix. The probe enters
// on IN= and/or leaves by OUT=; tcp flags, icmp type and code, TTL or hop
// limit, DSCP and mark come from the line. The conntrack state is read
// from the flags: a tcp packet without SYN (or with SYN,ACK) and an echo
// reply are established, anything else new. A forwarded packet (IN= and
// OUT=) had its TTL decremented before the forward hook: the probe is sent
// with one more.
func ParseLogLine(line string) (Probe, string, error) {
	body := stripLogHeader(line)
	loc := logIfaces.FindStringSubmatchIndex(body + " ")
	if loc == nil {
		return Probe{}, "", fmt.Errorf("log line: no IN=... OUT=... fields: not a line of the nftables log statement")
	}
	prefix := body[:loc[0]]
	in, out := body[loc[2]:loc[3]], body[loc[4]:loc[5]]
	fields := map[string]string{}
	var flags []string
	for _, tok := range strings.Fields(body[loc[1]-1:]) {
		k, v, ok := strings.Cut(tok, "=")
		if !ok {
			flags = append(flags, tok)
			continue
		}
		if _, dup := fields[k]; !dup { // the first LEN= is the IP length
			fields[k] = v
		}
	}
	need := func(k string) (string, error) {
		v, ok := fields[k]
		if !ok || v == "" {
			return "", fmt.Errorf("log line: no %s= field", k)
		}
		return v, nil
	}
	if in == "" && out == "" {
		return Probe{}, "", fmt.Errorf("log line: neither IN= nor OUT= names an interface")
	}
	srcS, err := need("SRC")
	if err != nil {
		return Probe{}, "", err
	}
	dstS, err := need("DST")
	if err != nil {
		return Probe{}, "", err
	}
	src, err := netip.ParseAddr(srcS)
	if err != nil {
		return Probe{}, "", fmt.Errorf("log line: SRC=%s: %w", srcS, err)
	}
	dst, err := netip.ParseAddr(dstS)
	if err != nil {
		return Probe{}, "", fmt.Errorf("log line: DST=%s: %w", dstS, err)
	}
	protoS, err := need("PROTO")
	if err != nil {
		return Probe{}, "", err
	}
	if hasWordPrefix(flags, "FRAG:") {
		return Probe{}, "", fmt.Errorf("log line: a fragment: the probe grammar has no fragments")
	}
	ep := func(a netip.Addr, port string) string {
		if port == "" {
			if a.Is6() {
				return "[" + a.String() + "]"
			}
			return a.String()
		}
		if a.Is6() {
			return "[" + a.String() + "]:" + port
		}
		return a.String() + ":" + port
	}
	var proto, sport, dport string
	var opts []string
	state := "new"
	switch protoS {
	case "TCP", "UDP", "UDPLITE", "SCTP":
		proto = strings.ToLower(protoS)
		if sport, err = need("SPT"); err != nil {
			return Probe{}, "", err
		}
		if dport, err = need("DPT"); err != nil {
			return Probe{}, "", err
		}
		if protoS == "TCP" {
			var fl []string
			for _, f := range flags {
				switch f {
				case "CWR", "ECE", "URG", "ACK", "PSH", "RST", "SYN", "FIN":
					fl = append(fl, f)
				}
			}
			if len(fl) == 0 {
				return Probe{}, "", fmt.Errorf("log line: tcp without flags")
			}
			syn, ack := has(fl, "SYN"), has(fl, "ACK")
			if !syn || ack {
				state = "established"
			}
			opts = append(opts, "flags", strings.Join(fl, ","))
		}
	case "ICMP", "ICMPv6":
		proto = strings.ToLower(protoS)
		typ, err := need("TYPE")
		if err != nil {
			return Probe{}, "", err
		}
		code, err := need("CODE")
		if err != nil {
			return Probe{}, "", err
		}
		if (protoS == "ICMP" && typ == "0") || (protoS == "ICMPv6" && typ == "129") {
			state = "established"
		}
		opts = append(opts, "type", typ, "code", code)
	case "ESP", "AH":
		proto = strings.ToLower(protoS)
	default:
		if _, err := strconv.ParseUint(protoS, 10, 8); err != nil {
			return Probe{}, "", fmt.Errorf("log line: PROTO=%s: not a protocol the probe grammar knows", protoS)
		}
		proto = protoS
	}
	if in != "" {
		opts = append(opts, "in", in)
	}
	if out != "" {
		opts = append(opts, "out", out)
	}
	ttlKey, ttlWord := "TTL", "ttl"
	if src.Is6() {
		ttlKey, ttlWord = "HOPLIMIT", "hoplimit"
	}
	if v, ok := fields[ttlKey]; ok {
		n, err := strconv.ParseUint(v, 10, 8)
		if err != nil {
			return Probe{}, "", fmt.Errorf("log line: %s=%s: %w", ttlKey, v, err)
		}
		if in != "" && out != "" && n < 255 {
			n++ // decremented before the forward hook
		}
		if n > 0 {
			opts = append(opts, ttlWord, strconv.FormatUint(n, 10))
		}
	}
	tosKey := "TOS"
	if src.Is6() {
		tosKey = "TC"
	}
	if v, ok := fields[tosKey]; ok {
		n, err := strconv.ParseUint(v, 0, 8)
		if err != nil {
			return Probe{}, "", fmt.Errorf("log line: %s=%s: %w", tosKey, v, err)
		}
		if n>>2 != 0 {
			opts = append(opts, "dscp", strconv.FormatUint(n>>2, 10))
		}
	}
	if v, ok := fields["MARK"]; ok {
		n, err := strconv.ParseUint(v, 0, 32)
		if err != nil {
			return Probe{}, "", fmt.Errorf("log line: MARK=%s: %w", v, err)
		}
		if n != 0 {
			opts = append(opts, "mark", fmt.Sprintf("0x%x", n))
		}
	}
	opts = append(opts, "state", state)
	text := fmt.Sprintf("%s %s -> %s %s", proto, ep(src, sport), ep(dst, dport), strings.Join(opts, " "))
	p, err := ParseLine(text)
	if err != nil {
		return Probe{}, "", fmt.Errorf("log line as a probe (%s): %w", text, err)
	}
	return p, prefix, nil
}

func has(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func hasWordPrefix(list []string, p string) bool {
	for _, x := range list {
		if strings.HasPrefix(x, p) {
			return true
		}
	}
	return false
}

// logPrefix matches the prefix of a log statement in a rule's text, as
// nft lists it: log [group N ...] prefix "TEXT".
var logPrefix = regexp.MustCompile(`\blog\b[^"]*?\bprefix "((?:[^"\\]|\\.)*)"`)

// logPrefixOf returns the prefix of a rule's log statement, and whether
// the rule has a log statement with a prefix.
func logPrefixOf(ruleText string) (string, bool) {
	m := logPrefix.FindStringSubmatch(ruleText)
	if m == nil {
		return "", false
	}
	s, err := strconv.Unquote(`"` + m[1] + `"`)
	if err != nil {
		return m[1], true
	}
	return s, true
}

// LogSteps returns the steps of the path whose rule logs with prefix: the
// log rules the packet met that could have written a line with it.
func (p Path) LogSteps(prefix string) []Step {
	var out []Step
	for _, h := range p {
		for _, s := range h.Steps {
			if s.Rule == nil {
				continue
			}
			if pf, ok := logPrefixOf(s.Rule.Text); ok && pf == prefix {
				out = append(out, s)
			}
		}
	}
	return out
}

// LogPrefixes returns the prefixes of every log statement in a ruleset's
// text, in order, each once.
func LogPrefixes(text string) []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range logPrefix.FindAllStringSubmatch(text, -1) {
		s, err := strconv.Unquote(`"` + m[1] + `"`)
		if err != nil {
			s = m[1]
		}
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
