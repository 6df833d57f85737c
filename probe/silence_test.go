package probe

import (
	"strings"
	"testing"
	"time"
)

// TestSilenceIsNeverADrop: a packet the ruleset accepted that has not left
// the twin by the end of its wait, as on a loaded machine (here held in the
// kernel's queue for an unresolved next hop, see answerHold), is an error
// with an unknown outcome and no verdict, never "dropped": it used to come
// out as got drop (dropped), the differential tester's twin side said
// "dropped" for a packet the kernel forwards, and `fwslot diff`, the
// fleet and the demo printed that drop. Once released, the held packet
// leaves the twin with the expected snat: the kernel never dropped it. A
// drop the trace shows is still a drop under the same hold.
func TestSilenceIsNeverADrop(t *testing.T) {
	requireRoot(t)
	const base = "../testdata/examples/homerouter"
	cases := []struct {
		name    string
		line    string
		outcome Outcome // with the hold
		held    bool    // the packet waits in the twin until released
	}{
		{"forwarded tcp with snat", "accept tcp 10.1.1.50:40000 -> 203.0.113.9:443 in lan out wan snat 198.51.100.2", Unknown, true},
		{"forwarded udp with snat", "accept udp 10.1.1.50:40001 -> 203.0.113.53:53 in lan out wan snat 198.51.100.2", Unknown, true},
		{"forwarded icmp with snat", "accept icmp 10.1.1.50 -> 203.0.113.9 in lan out wan snat 198.51.100.2", Unknown, true},
		{"established udp with snat", "accept udp 10.1.1.7:41039 -> 203.0.113.1:53 in lan out wan state established snat 198.51.100.2", Unknown, true},
		{"sent by the router", "accept tcp 198.51.100.2:40012 -> 203.0.113.9:443 out wan", Unknown, true},
		{"dropped, the trace shows it", "drop tcp 203.0.113.7:40006 -> 198.51.100.2:22 in wan", Dropped, false},
		{"forwarded to the lan (not held)", "accept tcp 203.0.113.7:40003 -> 198.51.100.2:2222 in wan out lan dnat 10.1.1.10:22", Forwarded, false},
	}
	var lines []string
	for _, c := range cases {
		lines = append(lines, c.line)
	}
	probes := parseLines(t, strings.Join(lines, "\n")+"\n")
	tw, err := NewTwin(t.Context(), readTopologyFile(t, base+".topology"), fileLoader(t, base+".nft"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := tw.Close(); err != nil {
			t.Error(err)
		}
	}()
	hold := newAnswerHold(t, tw, 0) // held until the probe returns
	for i, c := range cases {
		r := hold.probe(t, probes[i], Options{Timeout: 100 * time.Millisecond})
		if r.Outcome != c.outcome {
			t.Errorf("%s: got %q (%s) err=%v, want outcome %s\n%s", c.name, r.Got, r.Outcome, r.Err, c.outcome, r.Path)
		}
		if c.outcome != Unknown {
			if r.Err != nil || !r.Passed() {
				t.Errorf("%s: got %s (%s) err=%v failure=%s, want it to pass", c.name, r.Got, r.Outcome, r.Err, r.Failure)
			}
			continue
		}
		if r.Got != "" || r.Passed() || r.Err == nil || !strings.Contains(r.Err.Error(), "its fate is unknown") {
			t.Errorf("%s: got verdict %q passed=%v err=%v, want no verdict and an unknown-fate error", c.name, r.Got, r.Passed(), r.Err)
		}
		if c.held {
			requireLeaves(t, tw, probes[i])
		}
	}
}

// requireLeaves waits (up to 5 s) for the probe packet the twin held,
// sent as the twin's probe 0, to leave through its out interface with its
// expected snat now that the gateway's entry is back.
func requireLeaves(t *testing.T, tw *Twin, p Probe) {
	t.Helper()
	o := &observation{spec: specFor(0, p), probe: p}
	out := tw.byName[p.Out]
	deadline := time.Now().Add(5 * time.Second)
	for o.forwarded == nil && time.Now().Before(deadline) {
		if err := drainPeer(out.capFD, tw.sock.buf, o, out.Name, true); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	switch {
	case o.forwarded == nil:
		t.Errorf("%s: the held packet never left through %s", p.Text, p.Out)
	case p.SNAT != nil && !natMatches(*p.SNAT, o.forwarded.src, o.forwarded.sport):
		t.Errorf("%s: the held packet left with source %s, want snat %s", p.Text, o.forwarded.src, p.SNAT)
	}
}
