package logattr

import (
	"context"
	"fmt"

	"github.com/fwslot/fwslot/probe"
)

// Attribution is what a kernel log line is traced back to: the probe its
// packet became, the log rules on that packet's path whose prefix is the
// line's, and the step that decided the packet.
type Attribution struct {
	Line     string       `json:"line"`
	Prefix   string       `json:"log_prefix"`
	Probe    probe.Probe  `json:"probe"`
	LoggedBy []probe.Step `json:"logged_by"`
	Decided  *probe.Step  `json:"decided_by,omitempty"`
	Verdict  string       `json:"verdict,omitempty"`
	Err      error        `json:"-"`
	Error    string       `json:"error,omitempty"`
}

// Runner runs probes through a twin of the ruleset that wrote the log
// lines, one result per probe in order.
type Runner func(ctx context.Context, ps []probe.Probe) ([]probe.Result, error)

// key is what an explanation is cached by: lines that agree on it meet
// the same rules unless the ruleset tells their addresses or source ports
// apart (then the first line's explanation stands for the others).
type key struct {
	prefix, in, out string
	proto           probe.Proto
	v6              bool
	dport           uint16
	icmpType        uint8
	state           probe.State
}

func keyOf(p probe.Probe, prefix string) key {
	return key{prefix: prefix, in: p.In, out: p.Out, proto: p.Proto, v6: p.Src.Addr.Is6(), dport: p.Dst.Port, icmpType: p.ICMPType, state: p.State}
}

// Attributor traces log lines back to rules, running each distinct packet
// (by prefix, family, interfaces, protocol, destination port, icmp type
// and state) through the twin once.
type Attributor struct {
	run   Runner
	cache map[key]Attribution
	// Runs counts the probes sent through a twin.
	Runs int
}

// New returns an attributor that runs probes with run.
func New(run Runner) *Attributor {
	return &Attributor{run: run, cache: map[key]Attribution{}}
}

// Attribute traces every line. Lines that are not log lines get an
// attribution with Err set; the probes of packets not seen before run
// through the twin in one batch. An error means the twin failed.
func (a *Attributor) Attribute(ctx context.Context, lines []string) ([]Attribution, error) {
	out := make([]Attribution, len(lines))
	var batch []probe.Probe
	var keys []key
	pending := map[key]bool{}
	for i, l := range lines {
		p, prefix, err := ParseLine(l)
		out[i] = Attribution{Line: l, Prefix: prefix, Probe: p, Err: err}
		if err != nil {
			continue
		}
		k := keyOf(p, prefix)
		if _, ok := a.cache[k]; ok || pending[k] {
			continue
		}
		pending[k] = true
		batch = append(batch, p)
		keys = append(keys, k)
	}
	if len(batch) > 0 {
		rs, err := a.run(ctx, batch)
		if err != nil {
			return nil, fmt.Errorf("explain log lines: %w", err)
		}
		if len(rs) != len(batch) {
			return nil, fmt.Errorf("explain log lines: %d results for %d probes", len(rs), len(batch))
		}
		a.Runs += len(batch)
		for i, r := range rs {
			a.cache[keys[i]] = attributionOf(r, keys[i].prefix)
		}
	}
	for i := range out {
		if out[i].Err != nil {
			out[i].Error = out[i].Err.Error()
			continue
		}
		c := a.cache[keyOf(out[i].Probe, out[i].Prefix)]
		out[i].LoggedBy, out[i].Decided, out[i].Verdict, out[i].Err = c.LoggedBy, c.Decided, c.Verdict, c.Err
		if c.Err != nil {
			out[i].Error = c.Err.Error()
		}
	}
	return out, nil
}

func attributionOf(r probe.Result, prefix string) Attribution {
	var a Attribution
	switch {
	case r.Err != nil:
		a.Err = r.Err
	case r.Error != "":
		a.Err = fmt.Errorf("%s", r.Error)
	}
	if a.Err != nil {
		return a
	}
	a.LoggedBy = Steps(r.Path, prefix)
	if _, st := r.Path.Decision(); st != nil {
		s := *st
		a.Decided = &s
	}
	a.Verdict = string(r.Got)
	if len(a.LoggedBy) == 0 {
		a.Err = fmt.Errorf("no rule with log prefix %q is on this packet's path", prefix)
	}
	return a
}
