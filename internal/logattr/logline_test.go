package logattr

import (
	"strings"
	"testing"

	"github.com/fwslot/fwslot/probe"
)

func TestParseLine(t *testing.T) {
	cases := []struct {
		name, line, prefix, probe string
	}{
		{"dmesg tcp syn in",
			`[12345.678901] dropped: IN=wan0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC=203.0.113.9 DST=192.0.2.10 LEN=60 TOS=0x00 PREC=0x00 TTL=63 ID=4242 DF PROTO=TCP SPT=40000 DPT=22 WINDOW=64240 RES=0x00 SYN URGP=0`,
			"dropped: ", "tcp 203.0.113.9:40000 -> 192.0.2.10:22 flags SYN in wan0 ttl 63 state new"},
		{"journalctl forwarded ack",
			`Nov 30 04:11:00 gw kernel: fwd IN=lan0 OUT=wan0 MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC=10.0.0.5 DST=198.51.100.7 LEN=52 TOS=0x00 PREC=0x00 TTL=63 ID=1 DF PROTO=TCP SPT=51000 DPT=443 WINDOW=501 RES=0x00 ACK URGP=0`,
			"fwd ", "tcp 10.0.0.5:51000 -> 198.51.100.7:443 flags ACK in lan0 out wan0 ttl 64 state established"},
		{"kmsg udp",
			`4,1234,5678901,-;dropped: IN=eth0 OUT= MAC=aa:bb:cc:dd:ee:ff:11:22:33:44:55:66:08:00 SRC=192.0.2.2 DST=192.0.2.1 LEN=33 TOS=0x00 PREC=0x00 TTL=64 ID=7 DF PROTO=UDP SPT=5353 DPT=9999 LEN=13`,
			"dropped: ", "udp 192.0.2.2:5353 -> 192.0.2.1:9999 in eth0 ttl 64 state new"},
		{"icmp echo request",
			`ping: IN=wan0 OUT= MAC= SRC=203.0.113.9 DST=192.0.2.10 LEN=84 TOS=0x00 PREC=0x00 TTL=64 ID=0 DF PROTO=ICMP TYPE=8 CODE=0 ID=3 SEQ=1`,
			"ping: ", "icmp 203.0.113.9 -> 192.0.2.10 type 8 code 0 in wan0 ttl 64 state new"},
		{"icmp echo reply is established",
			`p IN=wan0 OUT= SRC=203.0.113.9 DST=192.0.2.10 LEN=84 TOS=0x00 PREC=0x00 TTL=64 ID=0 PROTO=ICMP TYPE=0 CODE=0 ID=3 SEQ=1`,
			"p ", "icmp 203.0.113.9 -> 192.0.2.10 type 0 code 0 in wan0 ttl 64 state established"},
		{"ipv6 tcp syn,ack",
			`v6: IN=wan0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:86:dd SRC=2001:db8::1 DST=2001:db8::2 LEN=80 TC=0 HOPLIMIT=64 FLOWLBL=0 PROTO=TCP SPT=22 DPT=40000 WINDOW=64800 RES=0x00 ACK SYN URGP=0`,
			"v6: ", "tcp [2001:db8::1]:22 -> [2001:db8::2]:40000 flags ACK,SYN in wan0 hoplimit 64 state established"},
		{"icmpv6 echo out",
			`out6 IN= OUT=eth0 SRC=2001:db8::2 DST=2001:db8::1 LEN=104 TC=0 HOPLIMIT=64 FLOWLBL=123 PROTO=ICMPv6 TYPE=128 CODE=0 ID=5 SEQ=1`,
			"out6 ", "icmpv6 [2001:db8::2] -> [2001:db8::1] type 128 code 0 out eth0 hoplimit 64 state new"},
		{"dscp and mark",
			`m IN=wan0 OUT= SRC=203.0.113.9 DST=192.0.2.10 LEN=60 TOS=0xB8 PREC=0xA0 TTL=50 ID=1 PROTO=UDP SPT=1000 DPT=53 LEN=40 MARK=0x2a`,
			"m ", "udp 203.0.113.9:1000 -> 192.0.2.10:53 in wan0 ttl 50 dscp 46 mark 0x2a state new"},
		{"numeric protocol, no prefix",
			`IN=wan0 OUT= SRC=203.0.113.9 DST=192.0.2.10 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=1 PROTO=47`,
			"", "47 203.0.113.9 -> 192.0.2.10 in wan0 ttl 64 state new"},
		{"prefix without trailing space",
			`[    1.000000] dropIN=wan0 OUT= SRC=203.0.113.9 DST=192.0.2.10 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=1 PROTO=ESP SPI=0x1234`,
			"drop", "esp 203.0.113.9 -> 192.0.2.10 in wan0 ttl 64 state new"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, prefix, err := ParseLine(c.line)
			if err != nil {
				t.Fatal(err)
			}
			if prefix != c.prefix {
				t.Errorf("prefix %q, want %q", prefix, c.prefix)
			}
			if p.Text != c.probe {
				t.Errorf("probe %q, want %q", p.Text, c.probe)
			}
			want, err := probe.ParseLine(c.probe)
			if err != nil {
				t.Fatal(err)
			}
			if p.Proto != want.Proto || p.Src != want.Src || p.Dst != want.Dst || p.In != want.In || p.Out != want.Out || p.Flags != want.Flags || p.ICMPType != want.ICMPType || p.TTL != want.TTL || p.State != want.State || p.DSCP != want.DSCP || p.Mark != want.Mark {
				t.Errorf("probe %+v, want %+v", p, want)
			}
		})
	}
}

func TestParseLineRefuses(t *testing.T) {
	cases := []struct{ name, line, want string }{
		{"not a log line", "hello world", "IN=... OUT="},
		{"no interfaces", "x IN= OUT= SRC=1.2.3.4 DST=5.6.7.8 PROTO=UDP SPT=1 DPT=2", "neither IN= nor OUT="},
		{"no source", "x IN=eth0 OUT= DST=5.6.7.8 PROTO=UDP SPT=1 DPT=2", "no SRC="},
		{"bad address", "x IN=eth0 OUT= SRC=1.2.3 DST=5.6.7.8 PROTO=UDP SPT=1 DPT=2", "SRC=1.2.3"},
		{"tcp without port", "x IN=eth0 OUT= SRC=1.2.3.4 DST=5.6.7.8 PROTO=TCP SYN", "no SPT="},
		{"tcp without flags", "x IN=eth0 OUT= SRC=1.2.3.4 DST=5.6.7.8 PROTO=TCP SPT=1 DPT=2 WINDOW=1 RES=0x00 URGP=0", "tcp without flags"},
		{"fragment", "x IN=eth0 OUT= SRC=1.2.3.4 DST=5.6.7.8 LEN=20 TTL=64 ID=1 FRAG:185 PROTO=UDP", "fragment"},
		{"unknown protocol", "x IN=eth0 OUT= SRC=1.2.3.4 DST=5.6.7.8 PROTO=FOO", "PROTO=FOO"},
		{"mixed families", "x IN=eth0 OUT= SRC=1.2.3.4 DST=2001:db8::1 PROTO=UDP SPT=1 DPT=2", "same IP family"},
		{"ttl 0", "x IN=eth0 OUT= SRC=1.2.3.4 DST=5.6.7.8 TTL=300 PROTO=UDP SPT=1 DPT=2", "TTL=300"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := ParseLine(c.line)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one saying %q", err, c.want)
			}
		})
	}
}

func TestPrefixOf(t *testing.T) {
	cases := []struct {
		text, prefix string
		ok           bool
	}{
		{`meta l4proto tcp log prefix "dropped: "`, "dropped: ", true},
		{`log group 1 prefix "dropped: " drop`, "dropped: ", true},
		{`log prefix "say \"hi\" " level warn`, `say "hi" `, true},
		{`log`, "", false},
		{`tcp dport 22 accept comment "log prefix x"`, "", false},
	}
	for _, c := range cases {
		p, ok := prefixOf(c.text)
		if p != c.prefix || ok != c.ok {
			t.Errorf("prefixOf(%q) = %q, %v; want %q, %v", c.text, p, ok, c.prefix, c.ok)
		}
	}
}
