package probe

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/fwslot/fwslot/internal/nsutil"
)

// Flood sends the packets of a probe mix through a twin as fast as its
// senders go, to measure what the ruleset costs per packet. Each packet is
// the probe's own (the packet Twin.Probe sends and traces), repeated:
// conntrack sees each probe as one flow, established and related probes
// get their connection before the flood, and the flood applies no probe's
// mark (one socket cannot carry several).
type Flood struct {
	tw   *Twin
	pkts []floodPacket
}

// floodPacket is one probe's packet, ready to send.
type floodPacket struct {
	fd    int
	buf   []byte
	to    unix.Sockaddr
	local bool       // sent by the twin itself: EPERM is the ruleset dropping it
	peer  *twinIface // the peer it is injected at (nil for local packets)
}

// NewFlood prepares the twin to flood the probes' packets: it puts
// stateful rules back as loaded, removes the probe trace table (tracing
// every packet would measure the tracer), gives on-link hosts their
// neighbour entries and opens the connections of established and related
// probes. The twin can still probe afterwards.
func (tw *Twin) NewFlood(probes []Probe) (*Flood, error) {
	if tw.sock == nil {
		return nil, errors.New("twin is closed")
	}
	if len(probes) == 0 {
		return nil, errors.New("no probes to flood")
	}
	stateful, err := tw.isStateful()
	if err != nil {
		return nil, err
	}
	if tw.dirty && stateful {
		if err := tw.restore(); err != nil {
			return nil, err
		}
		tw.dirty = false
	}
	if _, err := nftOutput(tw.ns, fmt.Sprintf("add table inet %[1]s\ndelete table inet %[1]s\n", traceTable), "-f", "-"); err != nil {
		return nil, fmt.Errorf("remove the trace table before the flood: %w", err)
	}
	tw.entryMark = 0
	if err := tw.addNeighbours(probes); err != nil {
		return nil, err
	}
	if err := tw.drain(); err != nil {
		return nil, err
	}
	s := tw.sock
	if err := s.ctFlush(); err != nil {
		return nil, err
	}
	f := &Flood{tw: tw}
	for i, p := range probes {
		spec := specFor(i, p)
		switch p.State {
		case StateEstablished:
			if err := s.ctEstablish(spec, p); err != nil {
				return nil, fmt.Errorf("%s: %w", p.Where(), err)
			}
		case StateRelated:
			if err := s.ctEstablish(*spec.quote, relatedFlow(i, p)); err != nil {
				return nil, fmt.Errorf("%s: the connection the icmp error quotes: %w", p.Where(), err)
			}
		}
		pkt := buildIP(spec)
		if p.In == "" {
			fp := floodPacket{fd: s.send6, buf: pkt, local: true, to: &unix.SockaddrInet6{Addr: p.Dst.Addr.As16()}}
			if !p.is6() {
				fp.fd, fp.to = s.send4, &unix.SockaddrInet4{Addr: p.Dst.Addr.As4()}
			}
			f.pkts = append(f.pkts, fp)
			continue
		}
		in := tw.byName[p.In]
		if in == nil {
			return nil, fmt.Errorf("%s: the twin has no interface %q (add it to the topology)", p.Where(), p.In)
		}
		frame, sa := frameTo(in, p, pkt)
		f.pkts = append(f.pkts, floodPacket{fd: in.capFD, buf: frame, to: sa, peer: in})
	}
	return f, nil
}

// FloodCount is what one run of a flood sent.
type FloodCount struct {
	// Packets the kernel took and ran through the twin (sent, less what
	// the veth dropped for a full backlog).
	Packets int64
	// Dropped are packets the veth dropped before the twin saw them.
	Dropped int64
	// Elapsed is the wall time the senders ran.
	Elapsed time.Duration
}

// PPS is packets per second.
func (c FloodCount) PPS() float64 {
	if c.Elapsed <= 0 {
		return 0
	}
	return float64(c.Packets) / c.Elapsed.Seconds()
}

// Run sends the mix round robin for d from senders goroutines, each on an
// OS thread of its own pinned to CPU i mod NumCPU (veth hands a packet to
// the twin in the sender's softirq, so each sender's core runs the
// ruleset for its own packets and the rate is the ruleset's). It stops
// early, with ctx's error, when ctx ends.
func (f *Flood) Run(ctx context.Context, d time.Duration, senders int) (FloodCount, error) {
	if senders < 1 {
		senders = 1
	}
	before, err := f.dropped()
	if err != nil {
		return FloodCount{}, err
	}
	f.tw.dirty = true // the flood changes what limits, quotas and sets hold
	var sent atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, senders)
	start := time.Now()
	deadline := start.Add(d)
	for w := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread() // never unlocked: the pinned thread exits with the goroutine
			var set unix.CPUSet
			set.Set(w % runtime.NumCPU())
			_ = unix.SchedSetaffinity(0, &set) // best effort: a CPU set may forbid it
			errs[w] = f.send(ctx, w, deadline, &sent)
		}()
	}
	wg.Wait()
	c := FloodCount{Elapsed: time.Since(start)}
	after, err := f.dropped()
	if err != nil {
		return c, err
	}
	c.Dropped = after - before
	c.Packets = sent.Load() - c.Dropped
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	return c, ctx.Err()
}

// send is one sender's loop; it starts at packet w of the mix so that
// senders interleave the probes.
func (f *Flood) send(ctx context.Context, w int, deadline time.Time, sent *atomic.Int64) error {
	i := w % len(f.pkts)
	for {
		if ctx.Err() != nil || !time.Now().Before(deadline) {
			return nil
		}
		n := int64(0)
		for range 64 {
			p := &f.pkts[i]
			if i++; i == len(f.pkts) {
				i = 0
			}
			err := unix.Sendto(p.fd, p.buf, 0, p.to)
			switch {
			case err == nil, p.local && errors.Is(err, unix.EPERM):
				n++ // EPERM: the output hook dropped it, after the ruleset ran
			case errors.Is(err, unix.ENOBUFS), errAgain(err):
			default:
				sent.Add(n)
				return fmt.Errorf("flood: send a probe packet: %w", err)
			}
		}
		sent.Add(n)
	}
}

// dropped sums what the injecting peers' veths dropped (tx_dropped).
func (f *Flood) dropped() (int64, error) {
	seen := map[*twinIface]bool{}
	var total int64
	for _, p := range f.pkts {
		if p.peer == nil || seen[p.peer] {
			continue
		}
		seen[p.peer] = true
		err := nsutil.DoHandle(p.peer.peerNS, func() error {
			l, err := netlink.LinkByIndex(p.peer.peerIndex)
			if err != nil {
				return err
			}
			if st := l.Attrs().Statistics; st != nil {
				total += int64(st.TxDropped)
			}
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("read the veth counters of %s's peer: %w", p.peer.Name, err)
		}
	}
	return total, nil
}
