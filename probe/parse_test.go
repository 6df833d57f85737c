package probe

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseValid(t *testing.T) {
	ep := func(s string, port uint16) Endpoint { return Endpoint{Addr: netip.MustParseAddr(s), Port: port} }
	tests := []struct {
		line string
		want Probe
	}{
		{"accept tcp 198.51.100.7:40000 -> 192.0.2.10:22 in eth0            # ssh from the office",
			Probe{Verdict: Accept, Proto: TCP, Src: ep("198.51.100.7", 40000), Dst: ep("192.0.2.10", 22), In: "eth0", State: StateNew, Flags: FlagSYN, Name: "ssh from the office"}},
		{"drop   udp 203.0.113.9 -> 192.0.2.10:53 in eth0",
			Probe{Verdict: Drop, Proto: UDP, Src: ep("203.0.113.9", 0), Dst: ep("192.0.2.10", 53), In: "eth0", State: StateNew}},
		{"accept tcp 10.0.0.7 -> 203.0.113.9:443 in lan0 out wan0 snat 192.0.2.10",
			Probe{Verdict: Accept, Proto: TCP, Src: ep("10.0.0.7", 0), Dst: ep("203.0.113.9", 443), In: "lan0", Out: "wan0", State: StateNew, Flags: FlagSYN, SNAT: &Endpoint{Addr: netip.MustParseAddr("192.0.2.10")}}},
		{"accept tcp 203.0.113.9 -> 192.0.2.10:8080 in wan0 out lan0 dnat 10.0.0.5:80",
			Probe{Verdict: Accept, Proto: TCP, Src: ep("203.0.113.9", 0), Dst: ep("192.0.2.10", 8080), In: "wan0", Out: "lan0", State: StateNew, Flags: FlagSYN, DNAT: &Endpoint{Addr: netip.MustParseAddr("10.0.0.5"), Port: 80}}},
		{"accept icmp 203.0.113.9 -> 192.0.2.10 in eth0 type echo-request",
			Probe{Verdict: Accept, Proto: ICMP, Src: ep("203.0.113.9", 0), Dst: ep("192.0.2.10", 0), In: "eth0", State: StateNew, ICMPType: 8}},
		{"reject tcp [2001:db8::7]:1234->[2001:db8::1]:22 in eth0 state established flags ACK,PSH mark 0x10",
			Probe{Verdict: Reject, Proto: TCP, Src: ep("2001:db8::7", 1234), Dst: ep("2001:db8::1", 22), In: "eth0", State: StateEstablished, Flags: FlagACK | FlagPSH, Mark: 16}},
		{"accept icmpv6 [2001:db8::7] -> [2001:db8::1] out eth0 type 135",
			Probe{Verdict: Accept, Proto: ICMPv6, Src: ep("2001:db8::7", 0), Dst: ep("2001:db8::1", 0), Out: "eth0", State: StateNew, ICMPType: 135}},
		{"accept tcp 10.0.0.1 -> 10.0.0.2:80 out eth0 state established",
			Probe{Verdict: Accept, Proto: TCP, Src: ep("10.0.0.1", 0), Dst: ep("10.0.0.2", 80), Out: "eth0", State: StateEstablished, Flags: FlagACK}},
		{"drop sctp 10.0.0.1:5 -> 10.0.0.2:80 in eth0",
			Probe{Verdict: Drop, Proto: SCTP, Src: ep("10.0.0.1", 5), Dst: ep("10.0.0.2", 80), In: "eth0", State: StateNew}},
		{"accept 47 10.0.0.1 -> 10.0.0.2 in eth0 ttl 1 dscp af41",
			Probe{Verdict: Accept, Proto: "gre", Src: ep("10.0.0.1", 0), Dst: ep("10.0.0.2", 0), In: "eth0", State: StateNew, TTL: 1, DSCP: 34}},
		{"accept 253 10.0.0.1 -> 10.0.0.2 in eth0 dscp 7",
			Probe{Verdict: Accept, Proto: "253", Src: ep("10.0.0.1", 0), Dst: ep("10.0.0.2", 0), In: "eth0", State: StateNew, DSCP: 7}},
		{"accept esp [2001:db8::7] -> [2001:db8::1] in eth0 hoplimit 255",
			Probe{Verdict: Accept, Proto: "esp", Src: ep("2001:db8::7", 0), Dst: ep("2001:db8::1", 0), In: "eth0", State: StateNew, TTL: 255}},
		{"accept icmp 10.0.0.1 -> 10.0.0.2 in eth0 state related code 3",
			Probe{Verdict: Accept, Proto: ICMP, Src: ep("10.0.0.1", 0), Dst: ep("10.0.0.2", 0), In: "eth0", State: StateRelated, ICMPType: 3, ICMPCode: 3}},
		{"accept icmpv6 [2001:db8::7] -> [2001:db8::1] in eth0 state related type packet-too-big",
			Probe{Verdict: Accept, Proto: ICMPv6, Src: ep("2001:db8::7", 0), Dst: ep("2001:db8::1", 0), In: "eth0", State: StateRelated, ICMPType: 2}},
		{"drop tcp 10.0.0.1 -> 10.0.0.2:22 out eth0 state invalid",
			Probe{Verdict: Drop, Proto: TCP, Src: ep("10.0.0.1", 0), Dst: ep("10.0.0.2", 22), Out: "eth0", State: StateInvalid, Flags: FlagSYN | FlagFIN}},
		{"drop udp 10.0.0.1 -> 10.0.0.2:53 in eth0 state invalid",
			Probe{Verdict: Drop, Proto: UDP, Src: ep("10.0.0.1", 0), Dst: ep("10.0.0.2", 53), In: "eth0", State: StateInvalid}},
	}
	for _, tc := range tests {
		t.Run(tc.line, func(t *testing.T) {
			ps, err := Parse("t.probes", strings.NewReader("# header\n\n"+tc.line+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			if len(ps) != 1 {
				t.Fatalf("got %d probes", len(ps))
			}
			got := ps[0]
			tc.want.File, tc.want.Line, tc.want.Text = "t.probes", 3, strings.TrimSpace(tc.line)
			if got.String() != tc.want.String() || got.Name != tc.want.Name || got.Line != 3 || got.File != "t.probes" || got.Text != tc.want.Text {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
			// Canonical form parses back to the same probe.
			again, err := Parse("x", strings.NewReader(got.String()))
			if err != nil || again[0].String() != got.String() {
				t.Fatalf("round trip of %q: %v %v", got.String(), again, err)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ line, want string }{
		{"acept tcp 1.2.3.4 -> 5.6.7.8:1 in eth0", `f:1: expected verdict (accept, drop or reject), got "acept"`},
		{"accept tcpp 1.2.3.4 -> 5.6.7.8:1 in eth0", `expected protocol (tcp, udp, icmp, icmpv6, sctp, esp, gre, ... or a number 0-255), got "tcpp"`},
		{"accept 256 1.2.3.4 -> 5.6.7.8 in eth0", `expected protocol`},
		{"accept gre 1.2.3.4 -> 5.6.7.8:1 in eth0", `expected addresses without ports for gre`},
		{"accept gre 1.2.3.4 -> 5.6.7.8 in eth0 state established", `expected state established only for tcp, udp, icmp or icmpv6`},
		{"accept tcp 1.2.3.4 -> 5.6.7.8:1 in eth0 code 3", `expected code only for icmp and icmpv6`},
		{"accept icmp 1.2.3.4 -> 5.6.7.8 in eth0 state related type echo-request", `expected state related only for an icmp/icmpv6 error type`},
		{"accept tcp 1.2.3.4 -> 5.6.7.8:1 in eth0 state related", `expected state related only for an icmp/icmpv6 error type`},
		{"accept udp 1.2.3.4 -> 5.6.7.8:1 out eth0 state invalid", `expected state invalid only for tcp, or for udp/icmp/icmpv6 arriving`},
		{"accept icmpv6 [::1] -> [::2] in eth0 state invalid", `expected state invalid for icmpv6 only when forwarded`},
		{"accept tcp 1.2.3.4 -> 5.6.7.8:1 in eth0 ttl 0", `expected ttl 1-255, got "0"`},
		{"accept tcp 1.2.3.4 -> 5.6.7.8:1 in eth0 hoplimit 3", `expected ttl for IPv4, got "hoplimit"`},
		{"accept tcp [::1] -> [::2]:1 in eth0 ttl 3", `expected hoplimit for IPv6, got "ttl"`},
		{"accept tcp 1.2.3.4 -> 5.6.7.8:1 in eth0 dscp 64", `expected dscp name (cs1, af41, ef, ...) or number 0-63, got "64"`},
		{"accept tcp 1.2.3.4 -> 5.6.7.8:1 in eth0 dscp af99", `expected dscp name`},
		{"accept tcp 1.2.3 -> 5.6.7.8:1 in eth0", `expected source ADDRESS or ADDRESS:PORT (port 1-65535), got "1.2.3"`},
		{"accept tcp 1.2.3.4 5.6.7.8:1 in eth0", `expected "->", got "5.6.7.8:1"`},
		{"accept tcp 1.2.3.4 ->", `expected destination ADDRESS or ADDRESS:PORT, got end of line`},
		{"accept tcp 1.2.3.4 -> 5.6.7.8 in eth0", `expected destination port for tcp, got "5.6.7.8"`},
		{"accept tcp 1.2.3.4 -> 5.6.7.8:99999 in eth0", `expected destination ADDRESS or ADDRESS:PORT (port 1-65535)`},
		{"accept tcp [2001:db8::1:22 -> [2001:db8::2]:1 in eth0", `(IPv6 as [ADDR] or [ADDR]:PORT, port 1-65535), got "[2001:db8::1:22"`},
		{"accept tcp 1.2.3.4 -> [2001:db8::2]:1 in eth0", `expected source and destination of the same IP family`},
		{"accept tcp 1.2.3.4 -> 5.6.7.8:1", `expected in IFACE and/or out IFACE, got end of line`},
		{"accept tcp 1.2.3.4 -> 5.6.7.8:1 in", `expected interface name after in, got end of line`},
		{"accept tcp 1.2.3.4 -> 5.6.7.8:1 in eth0 state bogus", `expected state new, established, related or invalid, got "bogus"`},
		{"accept tcp 1.2.3.4 -> 5.6.7.8:1 in eth0 flags SYN,FOO", `expected tcp flags like SYN,ACK, got "SYN,FOO"`},
		{"accept udp 1.2.3.4 -> 5.6.7.8:1 in eth0 flags SYN", `expected flags only for tcp`},
		{"accept icmp 1.2.3.4 -> 5.6.7.8 in eth0 type echo", `expected icmp type name (e.g. echo-request) or number, got "echo"`},
		{"accept icmp 1.2.3.4:5 -> 5.6.7.8 in eth0", `expected addresses without ports for icmp`},
		{"accept icmp [::1] -> [::2] in eth0", `expected IPv4 addresses for icmp (use icmpv6)`},
		{"accept icmpv6 1.2.3.4 -> 5.6.7.8 in eth0", `expected IPv6 addresses for icmpv6 (use icmp)`},
		{"accept tcp 1.2.3.4 -> 5.6.7.8:1 in eth0 mark x", `expected mark as a 32-bit number, got "x"`},
		{"accept tcp 1.2.3.4 -> 5.6.7.8:1 in eth0 frob 1", `expected in, out, state, flags, type, code, ttl, hoplimit, dscp, mark, snat, dnat or frag, got "frob"`},
		{"accept tcp 1.2.3.4 -> 5.6.7.8:1 in eth0 in eth1", `expected each option at most once, got "in"`},
		{"accept tcp 1.2.3.4 -> 5.6.7.8:1 in lan0 out wan0 snat [::1]", `expected nat address of the probe's IP family`},
		{"accept tcp 1.2.3.4 -> 5.6.7.8:1 in averyveryverylongname", `expected interface name after in`},
	}
	for _, tc := range tests {
		t.Run(tc.line, func(t *testing.T) {
			_, err := Parse("f", strings.NewReader(tc.line))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want error containing %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "f:1: expected ") {
				t.Fatalf("error %q does not start with file:line: expected", err)
			}
		})
	}
}

func TestParseReportsEveryBadLine(t *testing.T) {
	src := "accept tcp 1.2.3.4 -> 5.6.7.8:1 in eth0\nbogus\n\n# c\naccept tcp x -> y in eth0\n"
	_, err := Parse("rules.probes", strings.NewReader(src))
	if err == nil || !strings.Contains(err.Error(), "rules.probes:2:") || !strings.Contains(err.Error(), "rules.probes:5:") {
		t.Fatalf("want errors for lines 2 and 5, got %v", err)
	}
}

func TestParseLine(t *testing.T) {
	tests := []struct {
		line    string
		want    string
		wantErr string
	}{
		{"tcp 198.51.100.7 -> 192.0.2.10:22 in eth0", "tcp 198.51.100.7 -> 192.0.2.10:22 in eth0", ""},
		{"udp [2001:db8::9]:53 -> [2001:db8::1]:53 in eth0 out eth1 # dns", "udp [2001:db8::9]:53 -> [2001:db8::1]:53 in eth0 out eth1", ""},
		{"accept tcp 1.2.3.4 -> 5.6.7.8:1 in eth0", "", `probe:1: expected protocol (tcp, udp, icmp, icmpv6, sctp, esp, gre, ... or a number 0-255), got "accept"`},
	}
	for _, tc := range tests {
		p, err := ParseLine(tc.line)
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("%q: got error %v, want %q", tc.line, err, tc.wantErr)
			}
			continue
		}
		if err != nil || p.String() != tc.want || p.Verdict != "" {
			t.Errorf("%q: got %q, %v", tc.line, p.String(), err)
		}
	}
}

func TestDirection(t *testing.T) {
	for _, tc := range []struct {
		in, out string
		want    direction
	}{{"eth0", "", dirIn}, {"eth0", "eth1", dirForward}, {"", "eth1", dirOut}} {
		if got := (Probe{In: tc.in, Out: tc.out}).direction(); got != tc.want {
			t.Errorf("in=%q out=%q: %s, want %s", tc.in, tc.out, got, tc.want)
		}
	}
}
