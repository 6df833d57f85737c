package probe

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// fate sends the i-th probe as a real packet and reports what became of it.
// A `state established` probe gets its connection first, made of real
// packets: opened by the side the probe's direction implies (see
// replyDirection), answered by the other, with consistent sequence numbers.
func (rn *realNet) fate(i int, p Probe) (realSeen, error) {
	if err := rn.reset(); err != nil {
		return realSeen{}, err
	}
	sp := specFor(i, p)
	if p.State == StateEstablished {
		seq, ack, err := rn.establish(sp, p)
		if err != nil {
			return realSeen{}, err
		}
		if sp.proto == 6 {
			sp.seq, sp.ack = seq, ack
		}
	}
	if p.State == StateRelated {
		if _, _, err := rn.establish(*sp.quote, relatedFlow(i, p)); err != nil {
			return realSeen{}, err
		}
	}
	if p.Mark != 0 && p.In == "" {
		if err := setMarkBoth(rn.send4, rn.send6, int(p.Mark)); err != nil {
			return realSeen{}, err
		}
		defer setMarkBoth(rn.send4, rn.send6, realMark)
	}
	if err := rn.readTrace(nil); err != nil { // what the connection's set-up left
		return realSeen{}, err
	}
	if err := rn.sendFrom(p.In, sp); err != nil {
		return realSeen{}, err
	}
	return rn.watch(sp, p.In)
}

func setMarkBoth(a, b, mark int) error {
	for _, fd := range []int{a, b} {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, mark); err != nil {
			return fmt.Errorf("SO_MARK: %w", err)
		}
	}
	return nil
}

func reversed(pk pktInfo, proto uint8, tag uint32) pktSpec {
	return pktSpec{src: pk.dst, dst: pk.src, proto: proto, sport: pk.dport, dport: pk.sport, tag: tag}
}

// establish sets up the connection a `state established` probe belongs to,
// whatever the ruleset lets open, and returns the tcp sequence and acknowledgement numbers the probe's
// packet carries in it.
func (rn *realNet) establish(sp pktSpec, p Probe) (seq, ack uint32, err error) {
	const x, y = 1000, 5000
	seq, ack = x+1, y+1
	if replyDirection(p) {
		seq, ack = y+1, x+1
	}
	// The connection is opened with the filter chains out of the way (as
	// if it existed before the ruleset was loaded, or survived a swap) but
	// through the ruleset's NAT; then the ruleset is loaded again.
	if _, err := nftOutputNamed(rn.router, routerQuiet+rn.unfilter, "-f", "-"); err != nil {
		return 0, 0, err
	}
	defer func() {
		if derr := rn.reload(); err == nil {
			err = derr
		}
		// Neighbours resolved while the filters were out of the way
		// would outlive them: forget them (IPv6 neighbour discovery is
		// filtered by the ruleset).
		if derr := rn.flushNeighbours(); err == nil {
			err = derr
		}
	}()
	side, other := p.In, p.Out
	var open pktSpec
	if replyDirection(p) {
		// The other side opened: from the probe's destination (after the
		// expected dnat) to its source.
		dst, dport := sp.dst, sp.dport
		if p.DNAT != nil {
			dst = p.DNAT.Addr
			if p.DNAT.Port != 0 {
				dport = p.DNAT.Port
			}
		}
		// ...to the probe's source, or to what the router translated
		// into the probe's source (the expected snat).
		src, sport := sp.src, sp.sport
		if p.SNAT != nil {
			src = p.SNAT.Addr
			if p.SNAT.Port != 0 {
				sport = p.SNAT.Port
			}
		}
		open = pktSpec{src: dst, dst: src, proto: sp.proto, sport: dport, dport: sport, tag: sp.tag, flags: FlagSYN, seq: x}
		switch sp.proto { // the echo-request the probe's echo-reply answers, same echo id
		case 1:
			open.icmpType, open.sport = 8, sp.sport
		case 58:
			open.icmpType, open.sport = 128, sp.sport
		}
		side, other = other, side
	} else {
		open = sp
		open.flags, open.seq = FlagSYN, x
		open.frag = FragNone // the connection opens unfragmented; the probe's packet is the fragmented one
	}
	if err = rn.readRouter(nil, ""); err != nil {
		return
	}
	if err = rn.readPeers(nil, ""); err != nil {
		return
	}
	if err = rn.sendFrom(side, open); err != nil {
		return
	}
	seen, err := rn.watch(open, side)
	if err != nil || seen.pk == nil || (seen.outcome != Forwarded && seen.outcome != Delivered) {
		return // the opening packet did not get through: nothing to establish
	}
	if (sp.proto == 1 || sp.proto == 58) && replyDirection(p) {
		return // the echo-request is out; the probe is its reply
	}
	ans := reversed(*seen.pk, sp.proto, sp.tag)
	if !seen.pk.dst.IsValid() { // IPv6 local delivery without pktinfo
		ans.src = open.dst
	}
	switch sp.proto {
	case 6:
		ans.flags, ans.seq, ans.ack = FlagSYN|FlagACK, y, x+1
	case 1:
		ans.icmpType, ans.sport = 0, seen.pk.sport
	case 58:
		ans.icmpType, ans.sport = 129, seen.pk.sport
	}
	if err = rn.sendFrom(other, ans); err != nil {
		return
	}
	_, err = rn.watch(ans, other)
	return
}

// diffCase runs probes twice: through fwslot's twin (topology twinTopo,
// empty to infer it) and as real packets in the real topology realTopo.
type diffOutcome struct {
	probe    Probe
	twin     Result
	real     realSeen
	realPath Path // the real packet's own trace in the router
}

func (d diffOutcome) agree() bool {
	if d.twin.Err != nil || d.twin.Outcome != d.real.outcome {
		return false
	}
	if d.twin.Seen != nil && d.real.pk != nil && d.real.outcome == Forwarded {
		rs := Seen{Src: endpointOf(d.real.pk.src, d.real.pk.sport, d.real.pk.proto), Dst: endpointOf(d.real.pk.dst, d.real.pk.dport, d.real.pk.proto)}
		return rs.Src == d.twin.Seen.Src && rs.Dst == d.twin.Seen.Dst && d.real.via == d.twin.Seen.Iface
	}
	return true
}

func (d diffOutcome) String() string {
	rs := ""
	if d.real.pk != nil {
		rs = fmt.Sprintf(" %s -> %s", endpointOf(d.real.pk.src, d.real.pk.sport, d.real.pk.proto), endpointOf(d.real.pk.dst, d.real.pk.dport, d.real.pk.proto))
	}
	ts := ""
	if d.twin.Seen != nil {
		ts = fmt.Sprintf(" %s -> %s", d.twin.Seen.Src, d.twin.Seen.Dst)
	}
	return fmt.Sprintf("%s\n    twin: %s%s via %q err=%v failure=%s\n    real: %s%s via %q",
		d.probe, d.twin.Outcome, ts, seenIface(d.twin.Seen), d.twin.Err, d.twin.Failure, d.real.outcome, rs, d.real.via)
}

func seenIface(s *Seen) string {
	if s == nil {
		return ""
	}
	return s.Iface
}

// runDiff runs the probes through the twin and as real packets.
func runDiff(t testing.TB, file string, realTopo, twinTopo Topology, probes []Probe, load Loader) []diffOutcome {
	t.Helper()
	return runDiffOpt(t, file, realTopo, twinTopo, probes, load, Options{})
}

// runDiffOpt is runDiff with options; opt.Sequential keeps the real
// router's state (limits, conntrack) from one packet to the next as well.
func runDiffOpt(t testing.TB, file string, realTopo, twinTopo Topology, probes []Probe, load Loader, opt Options) []diffOutcome {
	t.Helper()
	requireRoot(t)
	if load == nil {
		load = nftFileLoader(file)
	}
	rep, err := Run(context.Background(), twinTopo, load, probes, nil, opt)
	if err != nil {
		t.Fatalf("twin: %v", err)
	}
	rn := newRealNet(t, realTopo, realHosts(realTopo, probes), file)
	rn.sequential = opt.Sequential
	rn.listenProtos(t, probes)
	out := make([]diffOutcome, len(probes))
	for i, p := range probes {
		rs, err := rn.fate(i, p)
		if err != nil {
			t.Fatalf("real packet for %s: %v", p, err)
		}
		out[i] = diffOutcome{probe: p, twin: rep.Results[i], real: rs, realPath: buildPath(rs.events, rn.idx)}
	}
	return out
}

// requireAgreement fails for every probe whose twin result differs from the
// real packet's fate, and for every probe whose expected verdict the real
// packet did not get.
func requireAgreement(t testing.TB, outs []diffOutcome) {
	t.Helper()
	for _, d := range outs {
		if !d.agree() {
			t.Errorf("twin and real packet disagree: %s", d)
			continue
		}
		if v := d.probe.Verdict; v != "" && outcomeVerdict(d.real.outcome) != v {
			t.Errorf("real packet did not get the expected %s: %s", v, d)
		}
	}
}

// requirePassed is requireAgreement, and every probe passed in the twin
// (its path shown when one did not).
func requirePassed(t testing.TB, outs []diffOutcome) {
	t.Helper()
	requireAgreement(t, outs)
	for _, d := range outs {
		if !d.twin.Passed() {
			t.Errorf("%s: got %s %v %s\n%s", d.probe, d.twin.Got, d.twin.Err, d.twin.Failure, d.twin.Path)
		}
	}
}

func outcomeVerdict(o Outcome) Verdict {
	switch o {
	case Delivered, Forwarded:
		return Accept
	case Rejected:
		return Reject
	}
	return Drop
}

// parseFile parses the file at path with parse (Parse, ParseTopology),
// failing the test on any error.
func parseFile[T any](t testing.TB, path string, parse func(string, io.Reader) (T, error)) T {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v, err := parse(path, f)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func readTopologyFile(t testing.TB, path string) Topology {
	t.Helper()
	return parseFile(t, path, ParseTopology)
}

func topoOf(t testing.TB, text string) Topology {
	t.Helper()
	topo, err := ParseTopology("inline", strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func writeTemp(t testing.TB, name, text string) string {
	t.Helper()
	p := t.TempDir() + "/" + name
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
