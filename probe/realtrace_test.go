package probe

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fwslot/fwslot/internal/nsutil"
)

// realTraceTable turns on nftrace for the test's marked packets in the
// real router (a table of its own at priority -350, named like the twin's
// so that paths leave it out), so each real packet's own trace names the
// rule that decided it.
var realTraceTable = func() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {\n", traceTable)
	writeTraceChains(&b, "")
	b.WriteString("}\n")
	return b.String()
}()

// openTrace installs the trace table in the router, joins NFNLGRP_NFTRACE
// there and reads the router's rules (handles are stable across reloads:
// the same file loads into fresh tables the same way).
func (rn *realNet) openTrace(t testing.TB) {
	t.Helper()
	if _, err := nftOutputNamed(rn.router, realTraceTable, "-f", "-"); err != nil {
		t.Fatal(err)
	}
	err := nsutil.Do(rn.router, func() error {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
		if err != nil {
			return fmt.Errorf("trace socket: %w", err)
		}
		rn.fd(fd)
		if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			return err
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, traceRcvBufSize); err != nil {
			return err
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_ADD_MEMBERSHIP, nfnlgrpNFTrace); err != nil {
			return err
		}
		rn.tr = &sockets{trace: fd, buf: make([]byte, 1<<16)}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := nftOutputNamed(rn.router, "", "-a", "list", "ruleset")
	if err != nil {
		t.Fatal(err)
	}
	if rn.idx, err = parseNftRuleset(out); err != nil {
		t.Fatal(err)
	}
}

// readTrace adds the router's queued trace events to o (nil: discards them).
func (rn *realNet) readTrace(o *observation) error {
	if rn.tr == nil {
		return nil
	}
	if o == nil {
		return rn.tr.readTrace(func(traceEvent) {})
	}
	return rn.tr.readTrace(o.addEvent)
}

var reCounter = regexp.MustCompile(`counter packets [0-9]+ bytes [0-9]+`)

// decision names the rule (or policy) that decided a path, in the user's
// terms: chain, verdict, and the rule's text without counter values. The
// twin's notes on what the kernel did after the ruleset (a drop of a
// multicast frame, neighbour discovery the ruleset blocks) are left out:
// a real packet's trace cannot show them.
func decision(p Path) string {
	var rs Path
	for _, h := range p {
		if h.Table == "" && strings.HasPrefix(h.Chain, "(") && h.Chain != noBaseChain && len(p) > 1 {
			continue
		}
		rs = append(rs, h)
	}
	p = rs
	h, st := p.Decision()
	if st == nil {
		if len(p) > 0 && len(p[len(p)-1].Steps) == 0 {
			return p[len(p)-1].Chain + ": " + p[len(p)-1].Verdict
		}
		return "(none)"
	}
	text := "policy"
	if st.Rule != nil {
		text = reCounter.ReplaceAllString(st.Rule.Text, "counter")
	} else if !st.Policy {
		text = fmt.Sprintf("handle %d", st.Handle)
	}
	return fmt.Sprintf("%s %s chain %s: %s -> %s", h.Family, h.Hook, st.Chain, text, st.Verdict)
}

// TestDecisionIsTheRealVerdictNotANATStep: explain names the rule that
// decided a packet as the packet's own nftrace in a real router does, and
// a masqueraded or port-forwarded packet is decided by the filter rule
// that accepted it; its dnat and snat are steps on the path (explain named
// the postrouting snat rule as the decision before).
func TestDecisionIsTheRealVerdictNotANATStep(t *testing.T) {
	probes := parseLines(t, `accept tcp 10.0.0.7:40000 -> 203.0.113.9:443 in lan0 out wan0 snat 192.0.2.1
accept tcp 203.0.113.9:40003 -> 192.0.2.1:8080 in wan0 out lan0 dnat 10.0.0.5:80
reject tcp 10.0.0.7:40002 -> 203.0.113.25:25 in lan0 out wan0
accept tcp 10.0.0.7:40006 -> 10.0.0.1:22 in lan0
drop   tcp 203.0.113.9:40007 -> 192.0.2.1:22 in wan0
`)
	want := []struct{ decided, onPath string }{
		{`comment "lan to internet" -> accept`, `snat to 192.0.2.1`},
		{`comment "port forwards" -> accept`, `dnat to 10.0.0.5:80`},
		{`comment "no direct smtp from the lan" -> drop`, ``},
		{`comment "ssh only from the lan" -> accept`, ``},
		{`policy -> drop`, ``},
	}
	for _, twinTopo := range []Topology{{}, readTopologyFile(t, "../testdata/examples/router.topology")} {
		outs := runDiff(t, "../testdata/examples/router.nft", topoOf(t, routerTopo), twinTopo, probes, fileLoader(t, "../testdata/examples/router.nft"))
		requireAgreement(t, outs)
		for i, d := range outs {
			tw, re := decision(d.twin.Path), decision(d.realPath)
			if tw != re {
				t.Errorf("%s: twin decided by %s, the real trace by %s", d.probe, tw, re)
			}
			if !strings.HasSuffix(tw, want[i].decided) {
				t.Errorf("%s: decided by %q, want ...%q\n%s", d.probe, tw, want[i].decided, d.twin.Path)
			}
			if p := d.twin.Path.String(); !strings.Contains(p, want[i].onPath) || (want[i].onPath != "" && !strings.Contains(p, "(nat, hook ")) {
				t.Errorf("%s: path lacks the nat step %q:\n%s", d.probe, want[i].onPath, p)
			}
		}
	}
}
