package probe

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/fwslot/fwslot/internal/nsutil"
)

// answerHold delays the answers a twin sends back through its gateways,
// as a loaded machine delays the softirq work that carries them: with the
// gateways' permanent neighbour entries removed, an answer waits in the
// kernel's queue of an incomplete entry (nothing in the peer answers ARP
// or neighbour solicitations); the hold puts the entries back once an
// answer has waited there for `after`, and the kernel sends what waited.
// The probe's own processing and its trace are not delayed.
type answerHold struct {
	tw    *Twin
	h     *netlink.Handle
	after time.Duration
}

func newAnswerHold(t *testing.T, tw *Twin, after time.Duration) *answerHold {
	t.Helper()
	h, err := netlink.NewHandleAt(tw.ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return &answerHold{tw: tw, h: h, after: after}
}

// gateways runs fn for the gateway entries of every twin interface, on a
// thread inside the twin.
func (ah *answerHold) gateways(fn func(*twinIface, netip.Addr) error) error {
	return nsutil.DoHandle(ah.tw.ns, func() error {
		var errs []error
		for _, ti := range ah.tw.ifaces {
			for _, gw := range []netip.Addr{gw4, gw6} {
				errs = append(errs, fn(ti, gw))
			}
		}
		return errors.Join(errs...)
	})
}

// probe runs one probe with its answer held, and restores the gateways'
// entries before returning. A hold with after 0 keeps the answer until
// the probe returns.
func (ah *answerHold) probe(t *testing.T, p Probe, opt Options) Result {
	t.Helper()
	if err := ah.gateways(delNeighbour); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { ah.release(ctx) })
	results, err := ah.tw.Probe(t.Context(), []Probe{p}, nil, opt)
	cancel()
	wg.Wait()
	if rerr := ah.gateways(setNeighbour); rerr != nil {
		t.Fatal(rerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	return results[0]
}

// release puts a gateway's entry back `after` an answer started waiting
// for it (the entry appeared, incomplete).
func (ah *answerHold) release(ctx context.Context) {
	var since time.Time
	for ctx.Err() == nil {
		neighs, err := ah.h.NeighList(0, netlink.FAMILY_ALL)
		if err == nil {
			for _, n := range neighs {
				if n.State&netlink.NUD_PERMANENT != 0 || !(n.IP.Equal(net.IP(gw4.AsSlice())) || n.IP.Equal(net.IP(gw6.AsSlice()))) {
					continue
				}
				if since.IsZero() {
					since = time.Now()
				}
				if ah.after > 0 && time.Since(since) >= ah.after {
					for _, ti := range ah.tw.ifaces {
						if ti.twinIndex == n.LinkIndex {
							n.State, n.HardwareAddr = netlink.NUD_PERMANENT, ti.peerMAC
							_ = ah.h.NeighSet(&n) // the restore after the probe reports errors
						}
					}
				}
			}
		}
		time.Sleep(time.Millisecond)
	}
}

// TestRejectAnswerDelayed: a reject's answer (TCP reset, ICMP
// unreachable) that reaches the sender later than the drop grace, as on a
// loaded machine, still makes the probe a reject: the deciding rule
// rejects (in the chain the trace names, a jumped one too) and the kernel
// counted the answer's transmission, so the twin waits for it (also
// when the reset leaves through the dnat'ed flow's reverse mapping). Plain
// drops, and rejects the kernel does not answer (a reset is never
// answered), take the short path: no wait for an answer.
func TestRejectAnswerDelayed(t *testing.T) {
	requireRoot(t)
	cases := []struct {
		name  string
		line  string
		want  Verdict
		waits int // 1: the twin waited for the answer, 0: it did not, -1: either (the answer may come before the drop is read)
	}{
		{"tcp reset", "reject tcp 203.0.113.9 -> 192.0.2.10:22 in eth0", Reject, 1},
		{"tcp reset ipv6", "reject tcp [2001:db8::9] -> [2001:db8::10]:22 in eth0", Reject, 1},
		{"icmp port unreachable", "reject udp 203.0.113.9 -> 192.0.2.10:53 in eth0", Reject, 1},
		{"icmp admin prohibited", "reject icmp 203.0.113.9 -> 192.0.2.10 in eth0", Reject, 1},
		{"icmpv6 admin prohibited", "reject icmpv6 [2001:db8::9] -> [2001:db8::10] in eth0", Reject, 1},
		{"tcp reset in a jumped chain", "reject tcp 203.0.113.9 -> 192.0.2.10:23 in eth0", Reject, 1},
		{"icmpx in a jumped chain", "reject tcp [2001:db8::9] -> [2001:db8::10]:24 in eth0", Reject, 1},
		{"tcp reset on output", "reject tcp 192.0.2.10 -> 203.0.113.9:2222 out eth0", Reject, -1},
		{"tcp reset after dnat, in forward", "reject tcp 203.0.113.9 -> 192.0.2.10:8080 in eth0", Reject, 1},
		{"plain drop", "drop tcp 203.0.113.9 -> 192.0.2.10:25 in eth0", Drop, 0},
		{"reject that sends nothing (a reset)", "drop tcp 203.0.113.9 -> 192.0.2.10:26 in eth0 flags RST", Drop, 0},
	}
	var lines []string
	for _, c := range cases {
		lines = append(lines, c.line)
	}
	probes := parseLines(t, strings.Join(lines, "\n")+"\n")
	topo := InferTopology(probes)
	// The dnat target lives behind lan0.
	topo.Interfaces = append(topo.Interfaces, Interface{Name: "lan0", Routes: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}})
	tw, err := NewTwin(t.Context(), topo, nftFileLoader("testdata/answers.nft"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := tw.Close(); err != nil {
			t.Error(err)
		}
	}()
	hold := newAnswerHold(t, tw, 10*time.Millisecond)
	const rounds = 10
	wrong := make([]int, len(cases))
	for round := range rounds {
		for i, c := range cases {
			r := hold.probe(t, probes[i], Options{})
			if r.Err != nil || r.Got != c.want {
				if wrong[i] == 0 {
					t.Errorf("%s, round %d: got %s (%s) err %v, want %s", c.name, round, r.Got, r.Outcome, r.Err, c.want)
				}
				wrong[i]++
			}
			if waited := r.awaited != ""; c.waits >= 0 && waited != (c.waits == 1) {
				t.Errorf("%s, round %d: waited for an answer %v (%q), want %v", c.name, round, waited, r.awaited, c.waits)
			}
		}
	}
	for i, c := range cases {
		t.Logf("%s: %d of %d rounds wrong", c.name, wrong[i], rounds)
	}
}

// TestRejectWithoutAnswerIsAnError: when the deciding rule rejects and the
// kernel sent a packet but no answer reaches the sender within
// AnswerWait, the probe is an error (fail closed), never a drop: a drop
// would be a verdict no real packet gets.
func TestRejectWithoutAnswerIsAnError(t *testing.T) {
	requireRoot(t)
	cases := []struct{ name, line string }{
		{"tcp reset", "reject tcp 203.0.113.9 -> 192.0.2.10:22 in eth0"},
		{"icmpv6 admin prohibited", "reject icmpv6 [2001:db8::9] -> [2001:db8::10] in eth0"},
		{"icmpx in a jumped chain", "reject tcp [2001:db8::9] -> [2001:db8::10]:24 in eth0"},
	}
	var lines []string
	for _, c := range cases {
		lines = append(lines, c.line)
	}
	probes := parseLines(t, strings.Join(lines, "\n")+"\n")
	tw, err := NewTwin(t.Context(), InferTopology(probes), nftFileLoader("testdata/answers.nft"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := tw.Close(); err != nil {
			t.Error(err)
		}
	}()
	hold := newAnswerHold(t, tw, 0) // the answer never leaves while the probe waits
	for i, c := range cases {
		r := hold.probe(t, probes[i], Options{AnswerWait: 100 * time.Millisecond})
		if r.Err == nil || !strings.Contains(r.Err.Error(), "reject sent no answer") || r.Passed() {
			t.Errorf("%s: got %s (%s) err %v, want the error \"reject sent no answer\"", c.name, r.Got, r.Outcome, r.Err)
		}
		if r.awaited == "" {
			t.Errorf("%s: the twin did not wait for the answer", c.name)
		}
	}
}

// TestSnmpFields reads the kernel's counter files as the judge does: a
// missing counter (an older kernel) is reported, never read as 0.
func TestSnmpFields(t *testing.T) {
	snmp := "Ip: Forwarding DefaultTTL OutRequests OutTransmits\nIp: 1 64 12 34\nIcmp: InMsgs OutMsgs\nIcmp: 5 6\n"
	snmp6 := "Ip6InReceives                   \t7\nIp6OutTransmits                 \t42\n"
	cases := []struct {
		name string
		got  func() (uint64, bool)
		want uint64
		ok   bool
	}{
		{"ipv4 OutTransmits", func() (uint64, bool) { return snmpField([]byte(snmp), "Ip:", "OutTransmits") }, 34, true},
		{"ipv4 other line", func() (uint64, bool) { return snmpField([]byte(snmp), "Icmp:", "OutMsgs") }, 6, true},
		{"ipv4 missing", func() (uint64, bool) { return snmpField([]byte("Ip: Forwarding\nIp: 1\n"), "Ip:", "OutTransmits") }, 0, false},
		{"ipv6 Ip6OutTransmits", func() (uint64, bool) { return snmp6Field([]byte(snmp6), "Ip6OutTransmits") }, 42, true},
		{"ipv6 missing", func() (uint64, bool) { return snmp6Field([]byte("Ip6InReceives 7\n"), "Ip6OutTransmits") }, 0, false},
	}
	for _, c := range cases {
		if n, ok := c.got(); n != c.want || ok != c.ok {
			t.Errorf("%s: got %d %v, want %d %v", c.name, n, ok, c.want, c.ok)
		}
	}
}
