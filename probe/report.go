package probe

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Coverage is which rules the probes reached. A rule counts as reached
// when a probe packet matched it (nftables traces only rules that match).
type Coverage struct {
	Total     int        `json:"total"`
	Reached   int        `json:"reached"`
	Share     float64    `json:"share"`
	Unreached []RuleInfo `json:"unreached"`
}

// Report is the outcome of a probe run.
type Report struct {
	Results  []Result  `json:"results"`
	Passed   int       `json:"passed"`
	Failed   int       `json:"failed"`
	Coverage *Coverage `json:"coverage,omitempty"`
	// Setup is the time to build the twin and load the ruleset; Probing
	// the time to run the probes (and list the rules when no index was given).
	Setup   time.Duration `json:"setup_ns"`
	Probing time.Duration `json:"probing_ns"`
	// Resets is how often the twin put stateful rules back as loaded
	// between probes, and ResetTime what that cost (part of Probing).
	Resets    int           `json:"resets,omitempty"`
	ResetTime time.Duration `json:"reset_ns,omitempty"`
}

// OK reports whether every probe passed.
func (r Report) OK() bool { return r.Failed == 0 }

// Run builds a twin (inferring the topology from the probes when topo has
// no interfaces), loads the ruleset with load, runs every probe, and
// returns the report with rule coverage. idx may be nil: the rules are
// then read from the twin with `nft -a list ruleset`.
func Run(ctx context.Context, topo Topology, load Loader, probes []Probe, idx RuleIndex, opt Options) (rep Report, err error) {
	if len(probes) == 0 {
		return rep, errors.New("no probes to run")
	}
	if len(topo.Interfaces) == 0 {
		topo = InferTopology(probes)
	}
	start := time.Now()
	tw, err := NewTwin(ctx, topo, load)
	if err != nil {
		return rep, err
	}
	defer func() { err = errors.Join(err, tw.Close()) }()
	rep.Setup = time.Since(start)
	start = time.Now()
	// Without an index, list the twin's rules while the probes run (the
	// listing costs about as much as the probing on a large ruleset) and
	// attach rule text to the paths afterwards.
	type listing struct {
		idx *nftRuleIndex
		err error
	}
	var lc chan listing
	stateful, err := tw.isStateful()
	if err != nil {
		return rep, err
	}
	if idx == nil && stateful && !opt.Sequential {
		// The twin reloads the ruleset between probes: list it first,
		// not while it is being replaced (the handles stay the same).
		x, err := twinRuleIndex(tw, opt.Locate)
		if err != nil {
			return rep, err
		}
		lc = make(chan listing, 1)
		lc <- listing{x, nil}
	} else if idx == nil {
		lc = make(chan listing, 1)
		go func() {
			x, err := twinRuleIndex(tw, opt.Locate)
			lc <- listing{x, err}
		}()
	}
	rep.Results, err = tw.Probe(ctx, probes, idx, opt)
	if lc != nil {
		l := <-lc
		if err == nil && l.err != nil {
			err = l.err
		}
		if l.idx != nil {
			idx = l.idx
			for i := range rep.Results {
				rep.Results[i].Path = append(buildPath(rep.Results[i].events, idx), rep.Results[i].extra...)
			}
		}
	}
	rep.Probing = time.Since(start)
	rep.Resets, rep.ResetTime = tw.restores, tw.restoreTime
	if err != nil {
		return rep, err
	}
	rep.tally()
	rep.Coverage = computeCoverage(rep.Results, idx)
	return rep, nil
}

func (r *Report) tally() {
	r.Passed, r.Failed = 0, 0
	for _, res := range r.Results {
		if res.Passed() {
			r.Passed++
		} else {
			r.Failed++
		}
	}
}

// computeCoverage lists the rules of idx that no result's path reached.
func computeCoverage(results []Result, idx RuleIndex) *Coverage {
	if idx == nil {
		return nil
	}
	reached := map[ruleKey]bool{}
	for _, r := range results {
		for _, h := range r.Path {
			for _, s := range h.Steps {
				if s.Rule != nil {
					reached[ruleKey{s.Rule.Family, s.Rule.Table, s.Rule.Chain, s.Rule.Handle}] = true
				}
			}
		}
	}
	c := &Coverage{}
	for _, rule := range idx.All() {
		c.Total++
		if reached[ruleKey{rule.Family, rule.Table, rule.Chain, rule.Handle}] {
			c.Reached++
		} else {
			c.Unreached = append(c.Unreached, rule)
		}
	}
	if c.Total > 0 {
		c.Share = float64(c.Reached) / float64(c.Total)
	}
	return c
}

// WriteText writes the human report: every failed probe with its line,
// expected vs got and the path that decided it, a summary, and coverage.
func WriteText(w io.Writer, rep Report) error {
	var b strings.Builder
	for _, r := range rep.Results {
		if r.Passed() {
			continue
		}
		fmt.Fprintf(&b, "FAIL %s: %s\n", r.Probe.Where(), r.Probe.Text)
		if r.Err != nil || r.Error != "" {
			msg := r.Error
			if r.Err != nil {
				msg = r.Err.Error()
			}
			fmt.Fprintf(&b, "  error: %s\n", msg)
		} else {
			fmt.Fprintf(&b, "  expected %s, got %s (%s)\n", r.Probe.Verdict, r.Got, r.Outcome)
		}
		if r.Failure != "" {
			fmt.Fprintf(&b, "  %s\n", r.Failure)
		}
		if _, st := r.Path.Decision(); st != nil && st.Rule != nil && st.Rule.Where() != "" {
			fmt.Fprintf(&b, "  decided by %s: %s\n", st.Rule.Where(), st.Rule.Text)
		}
		if len(r.Path) > 0 {
			b.WriteString("  path:\n")
			for _, line := range strings.Split(strings.TrimRight(r.Path.String(), "\n"), "\n") {
				b.WriteString("  " + line + "\n")
			}
		}
	}
	fmt.Fprintf(&b, "%d probes: %d passed, %d failed\n", len(rep.Results), rep.Passed, rep.Failed)
	if c := rep.Coverage; c != nil {
		fmt.Fprintf(&b, "rule coverage: %d of %d rules reached (%.1f%%)\n", c.Reached, c.Total, 100*c.Share)
		for _, u := range c.Unreached {
			loc := u.Where()
			if loc == "" {
				loc = fmt.Sprintf("%s %s %s handle %d", u.Family, u.Table, u.Chain, u.Handle)
			}
			fmt.Fprintf(&b, "  not reached: %s: %s\n", loc, u.Text)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	File      string        `xml:"file,attr,omitempty"`
	Line      int           `xml:"line,attr,omitempty"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Body    string `xml:",chardata"`
}

// WriteJUnit writes the report as JUnit XML, one test case per probe,
// failures for wrong verdicts and errors for probes that could not be judged.
func WriteJUnit(w io.Writer, suite string, rep Report) error {
	s := junitSuite{Name: suite, Tests: len(rep.Results), Time: fmt.Sprintf("%.3f", (rep.Setup + rep.Probing).Seconds())}
	for _, r := range rep.Results {
		name := r.Probe.Name
		if name == "" {
			name = r.Probe.String()
		}
		c := junitCase{Name: name, Classname: suite, File: r.Probe.File, Line: r.Probe.Line}
		body := r.Probe.Where() + ": " + r.Probe.Text + "\n" + r.Path.String()
		switch {
		case r.Err != nil || r.Error != "":
			msg := r.Error
			if r.Err != nil {
				msg = r.Err.Error()
			}
			s.Errors++
			c.Error = &junitProblem{Message: msg, Type: "ProbeError", Body: body}
		case !r.Passed():
			s.Failures++
			msg := fmt.Sprintf("expected %s, got %s", r.Probe.Verdict, r.Got)
			if r.Failure != "" {
				msg += "; " + r.Failure
			}
			c.Failure = &junitProblem{Message: msg, Type: "VerdictMismatch", Body: body}
		}
		s.Cases = append(s.Cases, c)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(junitSuites{Suites: []junitSuite{s}}); err != nil {
		return fmt.Errorf("write junit: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}
