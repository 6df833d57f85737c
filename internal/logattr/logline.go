// Package logattr traces kernel log lines back to the rules that wrote
// them: it rebuilds the packet a line of the nftables log statement
// describes as a probe, runs it through a twin of the ruleset (probe.Run)
// and names the log rules on its path whose prefix is the line's. It backs
// `fwslot explain --log` and `fwslot logs`, on probe's public API only.
package logattr

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/fwslot/fwslot/probe"
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

// logFields are the KEY=VALUE fields of a log line (the first of each key)
// and its bare words (tcp flags, DF, FRAG:...).
type logFields struct {
	kv    map[string]string
	words []string
}

// need returns the values of keys, in order, or an error naming the first
// key the line lacks.
func (f logFields) need(keys ...string) ([]string, error) {
	vs := make([]string, len(keys))
	for i, k := range keys {
		v, ok := f.kv[k]
		if !ok || v == "" {
			return nil, fmt.Errorf("log line: no %s= field", k)
		}
		vs[i] = v
	}
	return vs, nil
}

// addr returns the address in field k.
func (f logFields) addr(k string) (netip.Addr, error) {
	v, err := f.need(k)
	if err != nil {
		return netip.Addr{}, err
	}
	a, err := netip.ParseAddr(v[0])
	if err != nil {
		return netip.Addr{}, fmt.Errorf("log line: %s=%s: %w", k, v[0], err)
	}
	return a, nil
}

// ParseLine rebuilds the packet a kernel log line describes (a line the
// nftables `log` statement wrote, as dmesg, journalctl -k or /dev/kmsg
// show it) as a probe, and returns the line's log prefix. The probe enters
// on IN= and/or leaves by OUT=; tcp flags, icmp type and code, TTL or hop
// limit, DSCP and mark come from the line. The conntrack state is read
// from the flags: a tcp packet without SYN (or with SYN,ACK) and an echo
// reply are established, anything else new. A forwarded packet (IN= and
// OUT=) had its TTL decremented before the forward hook: the probe is sent
// with one more.
func ParseLine(line string) (probe.Probe, string, error) {
	body := stripLogHeader(line)
	loc := logIfaces.FindStringSubmatchIndex(body + " ")
	if loc == nil {
		return probe.Probe{}, "", fmt.Errorf("log line: no IN=... OUT=... fields: not a line of the nftables log statement")
	}
	prefix := body[:loc[0]]
	in, out := body[loc[2]:loc[3]], body[loc[4]:loc[5]]
	f := logFields{kv: map[string]string{}}
	for _, tok := range strings.Fields(body[loc[1]-1:]) {
		k, v, ok := strings.Cut(tok, "=")
		if !ok {
			f.words = append(f.words, tok)
			continue
		}
		if _, dup := f.kv[k]; !dup { // the first LEN= is the IP length
			f.kv[k] = v
		}
	}
	if in == "" && out == "" {
		return probe.Probe{}, "", fmt.Errorf("log line: neither IN= nor OUT= names an interface")
	}
	src, err := f.addr("SRC")
	if err != nil {
		return probe.Probe{}, "", err
	}
	dst, err := f.addr("DST")
	if err != nil {
		return probe.Probe{}, "", err
	}
	text, err := f.probeText(src, dst, in, out)
	if err != nil {
		return probe.Probe{}, "", err
	}
	p, err := probe.ParseLine(text)
	if err != nil {
		return probe.Probe{}, "", fmt.Errorf("log line as a probe (%s): %w", text, err)
	}
	return p, prefix, nil
}

// endpoint is a probe line's endpoint: the address, bracketed for IPv6
// when a port follows or not, and the port when there is one.
func endpoint(a netip.Addr, port string) string {
	s := a.String()
	if a.Is6() {
		s = "[" + s + "]"
	}
	if port == "" {
		return s
	}
	return s + ":" + port
}

// probeText writes the probe line of a log line's packet.
func (f logFields) probeText(src, dst netip.Addr, in, out string) (string, error) {
	protoV, err := f.need("PROTO")
	if err != nil {
		return "", err
	}
	protoS := protoV[0]
	if slices.ContainsFunc(f.words, func(w string) bool { return strings.HasPrefix(w, "FRAG:") }) {
		return "", fmt.Errorf("log line: a fragment: the probe grammar has no fragments")
	}
	var proto, sport, dport string
	var opts []string
	state := "new"
	switch protoS {
	case "TCP", "UDP", "UDPLITE", "SCTP":
		proto = strings.ToLower(protoS)
		ports, err := f.need("SPT", "DPT")
		if err != nil {
			return "", err
		}
		sport, dport = ports[0], ports[1]
		if protoS == "TCP" {
			var fl []string
			for _, w := range f.words {
				switch w {
				case "CWR", "ECE", "URG", "ACK", "PSH", "RST", "SYN", "FIN":
					fl = append(fl, w)
				}
			}
			if len(fl) == 0 {
				return "", fmt.Errorf("log line: tcp without flags")
			}
			if !slices.Contains(fl, "SYN") || slices.Contains(fl, "ACK") {
				state = "established"
			}
			opts = append(opts, "flags", strings.Join(fl, ","))
		}
	case "ICMP", "ICMPv6":
		proto = strings.ToLower(protoS)
		tc, err := f.need("TYPE", "CODE")
		if err != nil {
			return "", err
		}
		if (protoS == "ICMP" && tc[0] == "0") || (protoS == "ICMPv6" && tc[0] == "129") {
			state = "established"
		}
		opts = append(opts, "type", tc[0], "code", tc[1])
	case "ESP", "AH":
		proto = strings.ToLower(protoS)
	default:
		if _, err := strconv.ParseUint(protoS, 10, 8); err != nil {
			return "", fmt.Errorf("log line: PROTO=%s: not a protocol the probe grammar knows", protoS)
		}
		proto = protoS
	}
	if in != "" {
		opts = append(opts, "in", in)
	}
	if out != "" {
		opts = append(opts, "out", out)
	}
	ttlKey, ttlWord, tosKey := "TTL", "ttl", "TOS"
	if src.Is6() {
		ttlKey, ttlWord, tosKey = "HOPLIMIT", "hoplimit", "TC"
	}
	if v, ok := f.kv[ttlKey]; ok {
		n, err := strconv.ParseUint(v, 10, 8)
		if err != nil {
			return "", fmt.Errorf("log line: %s=%s: %w", ttlKey, v, err)
		}
		if in != "" && out != "" && n < 255 {
			n++ // decremented before the forward hook
		}
		if n > 0 {
			opts = append(opts, ttlWord, strconv.FormatUint(n, 10))
		}
	}
	if v, ok := f.kv[tosKey]; ok {
		n, err := strconv.ParseUint(v, 0, 8)
		if err != nil {
			return "", fmt.Errorf("log line: %s=%s: %w", tosKey, v, err)
		}
		if n>>2 != 0 {
			opts = append(opts, "dscp", strconv.FormatUint(n>>2, 10))
		}
	}
	if v, ok := f.kv["MARK"]; ok {
		n, err := strconv.ParseUint(v, 0, 32)
		if err != nil {
			return "", fmt.Errorf("log line: MARK=%s: %w", v, err)
		}
		if n != 0 {
			opts = append(opts, "mark", fmt.Sprintf("0x%x", n))
		}
	}
	opts = append(opts, "state", state)
	return fmt.Sprintf("%s %s -> %s %s", proto, endpoint(src, sport), endpoint(dst, dport), strings.Join(opts, " ")), nil
}

// logPrefix matches the prefix of a log statement in a rule's text, as
// nft lists it: log [group N ...] prefix "TEXT".
var logPrefix = regexp.MustCompile(`\blog\b[^"]*?\bprefix "((?:[^"\\]|\\.)*)"`)

// unquote is a prefix as the log statement writes it: nft's quoted text
// with its escapes resolved (the text as listed when it cannot be).
func unquote(quoted string) string {
	s, err := strconv.Unquote(`"` + quoted + `"`)
	if err != nil {
		return quoted
	}
	return s
}

// prefixOf returns the prefix of a rule's log statement, and whether
// the rule has a log statement with a prefix.
func prefixOf(ruleText string) (string, bool) {
	m := logPrefix.FindStringSubmatch(ruleText)
	if m == nil {
		return "", false
	}
	return unquote(m[1]), true
}

// Steps returns the steps of path whose rule logs with prefix: the log
// rules the packet met that could have written a line with it.
func Steps(path probe.Path, prefix string) []probe.Step {
	var out []probe.Step
	for _, h := range path {
		for _, s := range h.Steps {
			if s.Rule == nil {
				continue
			}
			if pf, ok := prefixOf(s.Rule.Text); ok && pf == prefix {
				out = append(out, s)
			}
		}
	}
	return out
}

// Prefixes returns the prefixes of every log statement in a ruleset's
// text, in order, each once.
func Prefixes(text string) []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range logPrefix.FindAllStringSubmatch(text, -1) {
		if s := unquote(m[1]); !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
