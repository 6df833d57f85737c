package probe

import (
	"fmt"
	"net/netip"
	"strings"
)

func endpointOf(a netip.Addr, port uint16, proto uint8) Endpoint {
	if proto == 1 || proto == 58 {
		port = 0
	}
	return Endpoint{Addr: a, Port: port}
}

// judge turns the observation and the path into a result, and checks that
// the trace and the wire agree.
func judge(res Result, o *observation, path Path) Result {
	p := o.probe
	res.Path = path
	var seen *pktInfo
	switch {
	case o.delivered != nil:
		res.Outcome, res.Got, seen = Delivered, Accept, o.delivered
	case o.forwarded != nil:
		res.Outcome, res.Got, seen = Forwarded, Accept, o.forwarded
	case o.rejected != nil:
		res.Outcome, res.Got = Rejected, Reject
	default:
		res.Outcome, res.Got = Dropped, Drop
	}
	if seen != nil {
		res.Seen = &Seen{Src: endpointOf(seen.src, seen.sport, seen.proto), Dst: endpointOf(seen.dst, seen.dport, seen.proto)}
		if res.Outcome == Forwarded {
			res.Seen.Iface = o.via
		}
	}
	tv := path.verdict()
	// silent: nothing of the probe reached the wire or a local socket.
	// That is a drop only when the trace shows one; otherwise the twin
	// cannot tell (the packet may still be on its way on a loaded
	// machine) and the probe is an error with an unknown outcome.
	silent := seen == nil && o.rejected == nil
	switch {
	case o.unanswered:
		res.Err = fmt.Errorf("reject sent no answer: %s dropped the packet and the kernel sent a packet, but no TCP reset or ICMP unreachable for the probe reached its sender within %s", o.awaited, o.answerWait)
	case len(o.events) == 0 && silent:
		res.Err = fmt.Errorf("no trace events for the probe and nothing on the wire within %s: its fate is unknown (on a loaded machine, try a longer wait)", o.timeout)
	case len(o.events) == 0:
		res.Err = fmt.Errorf("no trace events for the probe (the wire says %s)", res.Outcome)
	case res.Got == Accept && tv != "accept":
		res.Err = fmt.Errorf("trace says %s but the packet was %s", tv, res.Outcome)
	case res.Got != Accept && tv == "accept":
		if res.Outcome == Rejected {
			res.Err = fmt.Errorf("the ruleset accepted the packet but the kernel answered it with %s (no route or closed port? check the topology)", answerName(*o.rejected))
		} else {
			res.Err = fmt.Errorf("the ruleset accepted the packet but it was neither delivered nor forwarded within %s: its fate is unknown (no route? check the topology; on a loaded machine, try a longer wait)", o.timeout)
		}
	}
	if res.Err != nil {
		if silent {
			res.Outcome, res.Got = Unknown, ""
		}
		return res
	}
	var problems []string
	switch dir := p.direction(); {
	case dir == dirIn && res.Outcome == Forwarded:
		problems = append(problems, "forwarded out "+o.via+" instead of delivered locally")
	case dir != dirIn && res.Outcome == Forwarded && o.via != p.Out:
		problems = append(problems, "left through "+o.via+", expected "+p.Out)
	case dir != dirIn && res.Outcome == Delivered:
		problems = append(problems, "delivered locally instead of leaving through "+p.Out)
	}
	if seen != nil {
		if p.SNAT != nil && !natMatches(*p.SNAT, seen.src, seen.sport) {
			problems = append(problems, fmt.Sprintf("source after nat is %s, expected snat %s", res.Seen.Src, p.SNAT))
		}
		if p.DNAT != nil && !natMatches(*p.DNAT, seen.dst, seen.dport) {
			problems = append(problems, fmt.Sprintf("destination after nat is %s, expected dnat %s", res.Seen.Dst, p.DNAT))
		}
	}
	res.Failure = strings.Join(problems, "; ")
	return res
}

func natMatches(want Endpoint, a netip.Addr, port uint16) bool {
	return want.Addr == a && (want.Port == 0 || want.Port == port)
}

func answerName(pk pktInfo) string {
	if pk.proto == 6 {
		return "a TCP reset"
	}
	return fmt.Sprintf("ICMP unreachable code %d", pk.icmpCode)
}
