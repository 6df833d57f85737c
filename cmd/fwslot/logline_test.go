package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fwslot/fwslot/internal/testnet"
)

// twoLogs has log rules with the same prefix in different chains: tcp is
// logged in input (line 14), udp in a chain input jumps to (line 3), echo
// requests in another (lines 7 and 8).
const twoLogs = `table inet filter {
	chain udpcheck {
		udp dport 9999 log prefix "dropped: "
		udp dport 9999 drop
	}
	chain pings {
		icmp type echo-request log prefix "dropped: "
		icmpv6 type echo-request log prefix "dropped: "
		icmp type echo-request drop
		icmpv6 type echo-request drop
	}
	chain input {
		type filter hook input priority 0; policy accept;
		tcp dport 9998 log prefix "dropped: "
		tcp dport 9998 drop
		meta l4proto udp jump udpcheck
		meta l4proto { icmp, ipv6-icmp } jump pings
	}
}
`

// TestExplainLogLineFromKernel sends real packets into a namespace whose
// ruleset logs them to nflog group 1, formats each record as the kernel's
// log line, and asks explain --log which rule wrote it: the one of the two
// same-prefix log rules the packet really traversed, and the drop after it.
func TestExplainLogLineFromKernel(t *testing.T) {
	testnet.RequireRoot(t)
	target, peer := testnet.Pair(t)
	dir := t.TempDir()
	grouped := filepath.Join(dir, "grouped.nft")
	if err := os.WriteFile(grouped, []byte(strings.ReplaceAll(twoLogs, `log prefix`, `log group 1 prefix`)), 0o600); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "two.nft")
	if err := os.WriteFile(plain, []byte(twoLogs), 0o600); err != nil {
		t.Fatal(err)
	}
	nl := nflogGroup(t, target, 1)
	testnet.Run(t, target, "nft", "-f", grouped)
	cases := []struct {
		name       string
		send       func()
		logged     string // the log rule's file:line
		decided    string
		wantProbe  string
		notWritten string // the other log rule, never named
	}{
		{"tcp logged in input", func() {
			testnet.Connect(peer, net.JoinHostPort(testnet.TargetIP, "9998"), 200*time.Millisecond)
		}, `two.nft:14: chain input: tcp dport 9998 log prefix "dropped: "`, "decided by two.nft:15: chain input: tcp dport 9998 drop", "tcp 192.0.2.2:", "two.nft:3"},
		{"udp logged in the jumped-to chain", func() {
			c := testnet.UDPSocket(t, peer, net.JoinHostPort(testnet.TargetIP, "9999"))
			if _, err := c.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
		}, `two.nft:3: chain udpcheck: udp dport 9999 log prefix "dropped: "`, "decided by two.nft:4: chain udpcheck: udp dport 9999 drop", "udp 192.0.2.2:", "two.nft:14"},
		{"ipv6 udp logged in the jumped-to chain", func() {
			c := testnet.UDPSocket(t, peer, net.JoinHostPort(testnet.TargetIP6, "9999"))
			if _, err := c.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
		}, `two.nft:3: chain udpcheck: udp dport 9999 log prefix "dropped: "`, "decided by two.nft:4: chain udpcheck: udp dport 9999 drop", "udp [2001:db8::2]:", "two.nft:14"},
		{"icmp echo logged in pings", func() { sendEcho(t, peer, testnet.TargetIP) },
			`two.nft:7: chain pings: icmp type echo-request log prefix "dropped: "`, "decided by two.nft:9: chain pings: icmp type echo-request drop", "icmp 192.0.2.2 -> 192.0.2.1 type 8 code 0", "two.nft:8"},
		{"icmpv6 echo logged in pings", func() { sendEcho(t, peer, testnet.TargetIP6) },
			`two.nft:8: chain pings: icmpv6 type echo-request log prefix "dropped: "`, "decided by two.nft:10: chain pings: icmpv6 type echo-request drop", "icmpv6 [2001:db8::2] -> [2001:db8::1] type 128 code 0", "two.nft:7"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.send()
			rec := nflogNext(t, nl, target)
			line, err := kernelLogLine(rec)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("kernel record as a log line: %s", line)
			if !strings.HasPrefix(line, "dropped: IN=eth0 OUT= ") {
				t.Fatalf("kernel record formatted as %q", line)
			}
			out, code := run(t, "explain", "--file", plain, "--log", "[ 4242.000001] "+line)
			if code != 0 {
				t.Fatalf("explain --log %q: exit %d:\n%s", line, code, out)
			}
			for _, w := range []string{"logged by " + c.logged, c.decided, c.wantProbe} {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if strings.Contains(out, "logged by "+c.notWritten) {
				t.Errorf("names the other log rule %s:\n%s", c.notWritten, out)
			}
		})
	}
}

// TestExplainLogRefuses: explain --log fails closed when the line is not a
// log line, comes with a packet too, or no rule on the packet's path logs
// with the line's prefix.
func TestExplainLogRefuses(t *testing.T) {
	testnet.RequireRoot(t)
	plain := writeFile(t, "two.nft", twoLogs)
	tcp := "IN=eth0 OUT= SRC=192.0.2.2 DST=192.0.2.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=1 DF PROTO=TCP SPT=40000 DPT=9998 WINDOW=64240 RES=0x00 SYN URGP=0"
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"not a log line", []string{"explain", "--file", plain, "--log", "hello"}, 2, "IN=... OUT="},
		{"packet and line", []string{"explain", "--file", plain, "--log", "dropped: " + tcp, "tcp 1.2.3.4 -> 5.6.7.8:1 in eth0"}, 2, "not both"},
		{"other prefix", []string{"explain", "--file", plain, "--log", "accepted: " + tcp}, 1, `no rule with log prefix "accepted: "`},
		{"prefix of a rule the packet does not meet", []string{"explain", "--file", plain, "--log", "dropped: " + strings.Replace(tcp, "DPT=9998", "DPT=9997", 1)}, 1, `no rule with log prefix "dropped: "`},
	}
	for _, c := range cases {
		out, code := run(t, c.args...)
		if code != c.code || !strings.Contains(out, c.want) {
			t.Errorf("%s: exit %d, want %d with %q:\n%s", c.name, code, c.code, c.want, out)
		}
	}
}

// TestLogsFromFile: logs keeps the lines of the ruleset's log prefixes,
// names the log rule of each (the right one of two with the same prefix),
// and exits 1 when a line's packet meets no log rule of its prefix.
func TestLogsFromFile(t *testing.T) {
	testnet.RequireRoot(t)
	plain := writeFile(t, "two.nft", twoLogs)
	tcp := "[ 1.5] dropped: IN=eth0 OUT= SRC=192.0.2.2 DST=192.0.2.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=1 DF PROTO=TCP SPT=40000 DPT=9998 WINDOW=64240 RES=0x00 SYN URGP=0"
	udp := "6,812,4242000,-;dropped: IN=eth0 OUT= SRC=192.0.2.7 DST=192.0.2.1 LEN=29 TOS=0x00 PREC=0x00 TTL=64 ID=2 DF PROTO=UDP SPT=33300 DPT=9999 LEN=9\n SUBSYSTEM=net"
	udp6 := "dropped: IN=eth0 OUT= SRC=2001:db8::2 DST=2001:db8::1 LEN=49 TC=0 HOPLIMIT=64 FLOWLBL=0 PROTO=UDP SPT=57977 DPT=9999 LEN=9"
	other := "[ 1.6] audit: type=1400 apparmor=\"DENIED\""
	foreign := "[ 1.7] accepted: " + strings.TrimPrefix(tcp, "[ 1.5] dropped: ")
	untraced := strings.Replace(udp6, "DPT=9999", "DPT=9997", 1)
	noLog := writeFile(t, "nolog.nft", "table inet f {\n chain input { type filter hook input priority 0; policy accept; }\n}\n")
	cases := []struct {
		name    string
		rules   string
		lines   []string
		flags   []string
		code    int
		want    []string
		wantNot []string
	}{
		{"batch", plain, []string{tcp, other, udp, foreign, udp6}, nil, 0,
			[]string{"two.nft:14: " + tcp, "drop by two.nft:15: tcp dport 9998 drop", "two.nft:3: 6,812", "two.nft:3: " + udp6, "drop by two.nft:4: udp dport 9999 drop"},
			[]string{"audit", "accepted", "SUBSYSTEM"}},
		{"follow, line by line", plain, []string{udp6, tcp}, []string{"--follow"}, 0,
			[]string{"two.nft:3: " + udp6, "two.nft:14: " + tcp}, nil},
		{"a line no rule wrote", plain, []string{tcp, untraced}, nil, 1,
			[]string{"two.nft:14: " + tcp, "?: " + untraced, `no rule with log prefix "dropped: "`, "1 log lines could not be traced"}, nil},
		{"ruleset without log prefixes", noLog, []string{tcp}, nil, 2,
			[]string{"no log statement with a prefix"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			from := writeFile(t, "kmsg.txt", strings.Join(c.lines, "\n")+"\n")
			out, code := run(t, append([]string{"logs", "--file", c.rules, "--from", from}, c.flags...)...)
			if code != c.code {
				t.Fatalf("exit %d, want %d:\n%s", code, c.code, out)
			}
			checkOutput(t, "", out, c.want, c.wantNot)
		})
	}
}
