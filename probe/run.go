package probe

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// Outcome is what happened to a probe packet on the wire.
type Outcome string

// The observable fates of a probe packet.
const (
	Delivered Outcome = "delivered" // reached a local socket of the twin
	Forwarded Outcome = "forwarded" // left the twin (captured at an egress peer)
	Rejected  Outcome = "rejected"  // answered with a TCP RST or ICMP unreachable
	Dropped   Outcome = "dropped"   // nothing came out, and the path shows the drop (the trace's, or the kernel's last hop)
	// Unknown: nothing came out within the twin's wait and the trace
	// does not settle the fate (it accepted the packet, or shows no
	// event, or a reject's answer never came): on a loaded machine the
	// packet may still be on its way. The probe has an error and no
	// verdict (Got is empty): silence alone is never a drop.
	Unknown Outcome = "unknown"
)

// Seen is the probe packet as observed leaving or arriving, after NAT.
type Seen struct {
	Iface string   `json:"iface,omitempty"`
	Src   Endpoint `json:"src"`
	Dst   Endpoint `json:"dst"`
}

// Result is the outcome of one probe: the verdict the packet got, what was
// seen on the wire, the path through the ruleset, and why it failed.
type Result struct {
	Probe   Probe   `json:"probe"`
	Got     Verdict `json:"got,omitempty"`
	Outcome Outcome `json:"outcome,omitempty"`
	Seen    *Seen   `json:"seen,omitempty"`
	Path    Path    `json:"path"`
	// Failure explains an expectation that did not hold besides the
	// verdict (snat or dnat, wrong egress interface).
	Failure string `json:"failure,omitempty"`
	// Err is set when the probe could not be judged: the trace and the
	// wire disagree, or the probe could not be sent.
	Err   error  `json:"-"`
	Error string `json:"error,omitempty"`

	events  []traceEvent // the probe's trace, kept to rebuild Path with another index
	awaited string       // the answering rule whose answer the twin waited for (expectAnswer)
	extra   []Hop        // hops after the trace (a next hop that never answers)
}

// Passed reports whether the probe got its expected verdict with every
// expectation met. Probes without a verdict (ParseLine) pass when judged.
func (r Result) Passed() bool {
	return r.Err == nil && r.Failure == "" && (r.Probe.Verdict == "" || r.Got == r.Probe.Verdict)
}

// Options tune probing. The zero value uses the defaults.
type Options struct {
	// Timeout bounds the wait for a packet's fate (default 1s); it is only
	// reached when the trace and the wire both stay silent.
	Timeout time.Duration
	// DropGrace is how long to wait for something on the wire after the
	// trace showed a drop that no answer follows (default 2ms): a plain
	// drop, or a reject after which the kernel transmitted nothing. A
	// drop that answers waits AnswerWait instead: correctness never
	// rests on this grace.
	DropGrace time.Duration
	// AnswerWait bounds the wait for the answer of a drop that answers
	// (default 1s): the deciding rule rejects and the kernel transmitted
	// a packet (see expectAnswer). The answer normally arrives within
	// DropGrace; on a loaded machine the softirq work that carries it is
	// deferred. If none arrives by then the probe is an error, never a
	// drop.
	AnswerWait time.Duration
	// Locate, when set, attaches source file:line to the rules of the
	// default rule index (see SourceLocator).
	Locate Locator
	// Sequential lets state carry over from one probe to the next: the
	// n-th probe through a `limit` rule sees the n-1 before it. By
	// default every probe meets limits, quotas, meters and dynamic sets as
	// loaded (the twin reloads a ruleset that holds such state).
	Sequential bool
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = time.Second
	}
	if o.DropGrace <= 0 {
		o.DropGrace = 2 * time.Millisecond
	}
	if o.AnswerWait <= 0 {
		o.AnswerWait = time.Second
	}
	return o
}

// tagFor is the i-th probe's tag (the payload marker's; it fits the 28
// bits of SCTP's initiate tag).
func tagFor(i int, _ bool) uint32 { return 0x80000 | uint32(i+1)&0x7ffff }

func sportFor(i int) uint16 { return uint16(20000 + i%40000) }

// specFor is the packet of the i-th probe.
func specFor(i int, p Probe) pktSpec {
	spec := pktSpec{src: p.Src.Addr, dst: p.Dst.Addr, proto: p.Proto.number(), sport: p.Src.Port,
		dport: p.Dst.Port, flags: p.Flags, icmpType: p.ICMPType, tag: tagFor(i, p.is6())}
	if spec.sport == 0 && (p.Proto.hasPorts() || p.Proto.isICMP()) {
		spec.sport = sportFor(i) // the echo id of icmp: per probe, like a source port
	}
	spec.icmpCode, spec.ttl, spec.dscp = p.ICMPCode, p.TTL, p.DSCP
	spec.badCsum = p.State == StateInvalid && p.Proto != TCP
	if p.Frag != FragNone {
		spec.frag, spec.fragID = p.Frag, fragIDFor(spec.tag)
	}
	if p.State == StateRelated {
		q := relatedFlow(i, p)
		spec.quote = &pktSpec{src: q.Src.Addr, dst: q.Dst.Addr, proto: 17, sport: q.Src.Port, dport: q.Dst.Port,
			tag: spec.tag ^ 0x4000} // tagged for its own sending in the differential tests, never the probe's tag
	}
	return spec
}

// relatedFlow is the connection a `state related` probe's ICMP error is
// about: a udp flow its destination opened to port 53 of its source,
// through the same interfaces the other way.
func relatedFlow(i int, p Probe) Probe {
	return Probe{Proto: UDP, State: StateEstablished, In: p.Out, Out: p.In,
		Src: Endpoint{Addr: p.Dst.Addr, Port: sportFor(i)}, Dst: Endpoint{Addr: p.Src.Addr, Port: relatedPort}}
}

// Probe sends every probe through the twin, one at a time, and returns a
// result for each. idx (may be nil) names the rules on each path.
func (tw *Twin) Probe(ctx context.Context, probes []Probe, idx RuleIndex, opt Options) ([]Result, error) {
	if tw.sock == nil {
		return nil, errors.New("twin is closed")
	}
	opt = opt.withDefaults()
	if err := tw.installTrace(); err != nil {
		return nil, err
	}
	if err := tw.addNeighbours(probes); err != nil {
		return nil, err
	}
	for _, p := range probes {
		if err := tw.sock.ensureProto(tw.ns, p.Proto.number()); err != nil {
			return nil, err
		}
	}
	stateful, err := tw.isStateful()
	if err != nil {
		return nil, err
	}
	results := make([]Result, 0, len(probes))
	for i, p := range probes {
		if err := ctx.Err(); err != nil {
			return results, err
		}
		if tw.dirty && stateful && !opt.Sequential {
			if err := tw.restore(); err != nil {
				return results, err
			}
			tw.dirty = false
		}
		tw.dirty = true
		r := tw.probeOne(i, p, idx, opt)
		if r.Err != nil {
			r.Error = r.Err.Error()
		}
		results = append(results, r)
	}
	return results, nil
}

// observation collects what one probe did.
type observation struct {
	spec       pktSpec
	probe      Probe
	delivered  *pktInfo
	forwarded  *pktInfo
	via        string
	rejected   *pktInfo
	traceID    uint32
	haveID     bool
	events     []traceEvent
	ended      bool // the trace id was reused by another packet
	dropAt     time.Time
	ndHost     netip.Addr // next hop whose neighbour discovery the ruleset blocks
	ndIface    string
	frags      map[string]*fragAcc // fragments seen leaving (fragment probes)
	traceIDs   map[uint32]bool     // traces of the probe's fragments and datagram
	nEvents    int                 // events seen at lastEvent (heldUntil)
	lastEvent  time.Time
	txBefore   uint64 // packets the twin had transmitted before the probe (countTx)
	txKnown    bool
	awaited    string        // the answering rule whose answer is on its way (expectAnswer)
	answerWait time.Duration // how long the twin waited for it
	unanswered bool          // ... and none arrived
	timeout    time.Duration // the wait for the packet's fate (Options.Timeout)
}

func (tw *Twin) probeOne(i int, p Probe, idx RuleIndex, opt Options) Result {
	res := Result{Probe: p}
	s := tw.sock
	fail := func(err error) Result { res.Err = err; return res }
	var in, out *twinIface
	if p.In != "" {
		if in = tw.byName[p.In]; in == nil {
			return fail(fmt.Errorf("the twin has no interface %q (add it to the topology)", p.In))
		}
	}
	if p.Out != "" {
		if out = tw.byName[p.Out]; out == nil {
			return fail(fmt.Errorf("the twin has no interface %q (add it to the topology)", p.Out))
		}
	}
	if host, blocked := tw.sendBlocked(p); blocked && i < ndProbeBase {
		res.Got, res.Outcome = Drop, Dropped
		res.extra = []Hop{nsHop(host, p.In)}
		res.Path = res.extra
		return res
	}
	spec := specFor(i, p)
	if spec.frag != FragNone {
		spec.fragID = tw.nextFragID()
	}
	mark := p.Mark
	if p.direction() == dirOut {
		mark = 0 // an out probe's mark is its socket's (SO_MARK)
	}
	if err := tw.setEntryMark(mark); err != nil {
		return fail(err)
	}
	if err := tw.drain(); err != nil {
		return fail(err)
	}
	if err := s.ctFlush(); err != nil {
		return fail(err)
	}
	switch p.State {
	case StateEstablished:
		if err := s.ctEstablish(spec, p); err != nil {
			return fail(err)
		}
	case StateRelated:
		if err := s.ctEstablish(*spec.quote, relatedFlow(i, p)); err != nil {
			return fail(fmt.Errorf("the connection the icmp error quotes: %w", err))
		}
	}
	o := &observation{spec: spec, probe: p}
	if err := tw.countTx(o); err != nil {
		return fail(err)
	}
	for _, pkt := range buildPackets(spec) {
		if err := tw.send(in, p, pkt); err != nil {
			return fail(err)
		}
	}
	if p.direction() != dirIn {
		next := p.Dst.Addr
		if p.DNAT != nil {
			next = p.DNAT.Addr
		}
		ifc, ok := tw.ndBlocked[next]
		if !ok && next.Is6() && tw.gwBlocked[p.Out] && tw.onLinkIface(next) == nil {
			next, ifc, ok = gw6, p.Out, true
		}
		if ok {
			// Nothing will ever leave: no need to wait for the timeout.
			o.ndHost, o.ndIface, o.dropAt = next, ifc, time.Now()
		}
	}
	if err := tw.observe(o, opt); err != nil {
		return fail(err)
	}
	res.events, res.awaited = o.events, o.awaited
	path := buildPath(o.events, idx)
	if o.ndHost.IsValid() && o.delivered == nil && o.forwarded == nil && o.rejected == nil && path.verdict() == "accept" {
		res.extra = []Hop{ndHop(o.ndHost, o.ndIface)}
		path = append(path, res.extra...)
	}
	if p.Frag.lone() && o.delivered == nil && o.forwarded == nil && o.rejected == nil && path.verdict() == "accept" {
		res.extra = []Hop{{Chain: "(a lone fragment: the kernel holds it for reassembly and discards it at the timeout)", Verdict: "drop"}}
		path = append(path, res.extra...)
	}
	if p.In != "" && p.Dst.Addr.IsMulticast() && o.delivered == nil && o.forwarded == nil && o.rejected == nil && path.verdict() == "accept" {
		res.extra = []Hop{{Chain: "(the kernel drops it: a multicast frame is never forwarded, even after dnat, and a group this host has not joined is not delivered)", Verdict: "drop"}}
		path = append(path, res.extra...)
	}
	return judge(res, o, path)
}

// observe waits until the packet's fate is known: seen delivered,
// forwarded or answered, or dropped according to the trace and nothing
// arrived within the grace time (AnswerWait when an answer is on its way,
// see expectAnswer: then silence is an error, set as o.unanswered).
func (tw *Twin) observe(o *observation, opt Options) error {
	s := tw.sock
	start := time.Now()
	deadline := start.Add(opt.Timeout)
	o.timeout = opt.Timeout
	fds := []unix.PollFd{{Fd: int32(s.trace), Events: unix.POLLIN}}
	for _, ti := range tw.ifaces {
		fds = append(fds, unix.PollFd{Fd: int32(ti.capFD), Events: unix.POLLIN})
	}
	for _, fd := range s.raw4 {
		fds = append(fds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
	}
	for _, fd := range s.raw6 {
		fds = append(fds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
	}
	for {
		if err := tw.readRaw(o); err != nil {
			return err
		}
		if err := tw.readPeers(o); err != nil {
			return err
		}
		if err := tw.readRaw(o); err != nil { // copies queued before a reply was read
			return err
		}
		if err := s.readTrace(o.addEvent); err != nil {
			return err
		}
		if o.delivered != nil || o.forwarded != nil || o.rejected != nil {
			return nil
		}
		now := time.Now()
		if _, dropped := o.dropEvent(); o.dropAt.IsZero() && dropped {
			o.dropAt = now
			if err := tw.expectAnswer(o); err != nil {
				return err
			}
		}
		until := deadline
		if !o.dropAt.IsZero() {
			until = o.dropAt.Add(opt.DropGrace)
			if o.awaited != "" {
				o.answerWait = opt.AnswerWait
				until = o.dropAt.Add(opt.AnswerWait)
			}
		}
		if t, ok := o.heldUntil(now); ok && t.Before(until) && o.awaited == "" {
			until = t
		}
		if !now.Before(until) {
			o.unanswered = o.awaited != ""
			return nil
		}
		ts := unix.NsecToTimespec(int64(until.Sub(now)))
		if _, err := unix.Ppoll(fds, &ts, nil); err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("poll probe sockets: %w", err)
		}
	}
}

// dropEvent returns the event of the rule or policy that dropped the
// probe, once its trace shows one.
func (o *observation) dropEvent() (traceEvent, bool) {
	for _, ev := range o.events {
		if ev.table == traceTable {
			continue
		}
		if (ev.typ == traceTypeRule || ev.typ == traceTypePolicy) && ev.verdict >= 0 && ev.verdict&nfVerdMask == nfDrop {
			return ev, true
		}
	}
	return traceEvent{}, false
}

// picks reports whether a traced packet's headers are the probe's, before
// any NAT: its marker where the trace's copy of the transport header (20
// bytes) reaches it, else (tcp, related ICMP errors) its addresses and
// ports or type. Only marked packets are traced, and probes go one at a
// time.
func (o *observation) picks(pk pktInfo) bool {
	if pk.proto != o.spec.proto {
		return false
	}
	if pk.tag != 0 {
		return pk.tag == o.spec.tag
	}
	if pk.src != o.spec.src || pk.dst != o.spec.dst {
		return false
	}
	if o.spec.quote != nil {
		return pk.icmpType == o.spec.icmpType
	}
	return pk.sport == o.spec.sport && pk.dport == o.spec.dport
}

// addEvent keeps the events of the probe's own trace: the first event
// whose headers the probe picks (see picks) gives the trace id.
func (o *observation) addEvent(ev traceEvent) {
	if o.spec.frag != FragNone {
		o.addFragEvent(ev)
		return
	}
	if o.ended {
		return
	}
	if !o.haveID {
		if !ev.hasHdr {
			return
		}
		pk, ok := parseIP(append(append([]byte(nil), ev.nethdr...), ev.thdr...))
		if !ok || !o.picks(pk) {
			return
		}
		o.traceID, o.haveID = ev.id, true
	}
	if ev.id != o.traceID {
		return
	}
	if ev.hasHdr {
		if pk, ok := parseIP(append(append([]byte(nil), ev.nethdr...), ev.thdr...)); ok && pk.tag != 0 && pk.tag != o.spec.tag {
			o.ended = true
			return
		}
	}
	o.events = append(o.events, ev)
}

// isProbe reports whether a packet is the probe itself (possibly NATed),
// by its marker; a related ICMP error by the marker of the packet it quotes.
func (o *observation) isProbe(pk pktInfo, _ bool) bool {
	if pk.proto != o.spec.proto || pk.v6 != o.spec.src.Is6() {
		return false
	}
	if o.spec.quote != nil {
		return pk.inner != nil && pk.inner.tag == o.spec.quote.tag && pk.icmpType == o.spec.icmpType
	}
	return pk.tag == o.spec.tag
}

// isAnswer reports whether a packet is a reject's answer to the probe.
func (o *observation) isAnswer(pk pktInfo) bool {
	if pk.isUnreachable() && pk.inner != nil {
		return pk.inner.tag == o.spec.tag && pk.inner.proto == o.spec.proto
	}
	return pk.proto == 6 && pk.tcpFlags&FlagRST != 0 && o.spec.proto == 6 &&
		pk.dst == o.spec.src && pk.dport == o.spec.sport
}

func (tw *Twin) readPeers(o *observation) error {
	for _, ti := range tw.ifaces {
		if err := drainPeer(ti.capFD, tw.sock.buf, o, ti.Name, true); err != nil {
			return fmt.Errorf("capture at peer of %s: %w", ti.Name, err)
		}
	}
	return nil
}

// drainPeer reads every frame waiting on fd, the capture at the peer of
// interface iface, into o (nil: the frames are dropped). A reject's
// answer is recorded from any interface; the probe, whole or
// reassembled from fragments, counts as forwarded via iface only when
// forward is set.
func drainPeer(fd int, buf []byte, o *observation, iface string, forward bool) error {
	for {
		n, from, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
		if err != nil {
			if errAgain(err) {
				return nil
			}
			return err
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		if n < 14 || o == nil {
			continue
		}
		pk, ok := parseIP(buf[14:n])
		if !ok {
			continue
		}
		switch {
		case o.isAnswer(pk):
			if o.rejected == nil {
				o.rejected = &pk
			}
		case o.isProbe(pk, false) && !pk.frag.isFrag:
			if o.forwarded == nil && forward {
				o.forwarded, o.via = &pk, iface
			}
		case forward:
			if fp, done := o.forwardedFragment(pk, iface); done && o.forwarded == nil {
				o.forwarded, o.via = fp, iface
			}
		}
	}
}

func (tw *Twin) readRaw(o *observation) error {
	s := tw.sock
	return drainRaw(s.raw4, s.raw6, s.buf, s.oob, func(pk pktInfo, v6NoHeader bool) {
		if o != nil {
			o.local(pk, v6NoHeader)
		}
	})
}

// drainRaw reads every packet queued on raw sockets of local delivery
// (by protocol) and hands each to fn. An IPv6 raw socket gives no IPv6
// header (v6NoHeader): the source comes from the sender's address and the
// destination from IPV6_PKTINFO.
func drainRaw(raw4, raw6 map[uint8]int, buf, oob []byte, fn func(pk pktInfo, v6NoHeader bool)) error {
	for _, fd := range raw4 {
		err := drainLocal(func() error {
			n, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
			if err != nil {
				return err
			}
			if pk, ok := parseIP(buf[:n]); ok {
				fn(pk, false)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	for proto, fd := range raw6 {
		err := drainLocal(func() error {
			n, oobn, _, from, err := unix.Recvmsg(fd, buf, oob, unix.MSG_DONTWAIT)
			if err != nil {
				return err
			}
			pk := pktInfo{v6: true, proto: proto}
			if sa, ok := from.(*unix.SockaddrInet6); ok {
				pk.src = netip.AddrFrom16(sa.Addr)
			}
			if cms, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
				for _, cm := range cms {
					if cm.Header.Level == unix.IPPROTO_IPV6 && cm.Header.Type == unix.IPV6_PKTINFO && len(cm.Data) >= 16 {
						pk.dst = netip.AddrFrom16([16]byte(cm.Data[:16]))
					}
				}
			}
			parseL4(&pk, buf[:n])
			fn(pk, true)
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// drainLocal calls recv, which reads one packet from a local socket of
// the twin, until nothing is queued.
func drainLocal(recv func() error) error {
	for {
		if err := recv(); err != nil {
			if errAgain(err) {
				return nil
			}
			return fmt.Errorf("read local delivery: %w", err)
		}
	}
}

// local classifies a packet that reached a local socket of the twin.
func (o *observation) local(pk pktInfo, v6NoHeader bool) {
	switch {
	case o.isAnswer(pk):
		if o.rejected == nil {
			o.rejected = &pk
		}
	case o.probe.direction() != dirOut && o.isProbe(pk, v6NoHeader):
		if o.delivered == nil {
			o.delivered = &pk
		}
	}
}

// drain discards everything queued on the twin's sockets.
func (tw *Twin) drain() error {
	if err := tw.readRaw(nil); err != nil {
		return err
	}
	if err := tw.readPeers(nil); err != nil {
		return err
	}
	return tw.sock.readTrace(func(traceEvent) {})
}
