package logattr

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fwslot/fwslot/internal/source"
	"github.com/fwslot/fwslot/internal/testnet"
	"github.com/fwslot/fwslot/probe"
)

const logLineFmt = "[ 1.0] %s IN=%s OUT= SRC=%s DST=192.0.2.1 LEN=29 TOS=0x00 PREC=0x00 TTL=64 ID=1 DF PROTO=UDP SPT=%d DPT=%d LEN=9"

// fakeLogRunner answers every probe with a path through a log rule of
// prefix "dropped:" for udp port 9999 and no log rule otherwise.
func fakeLogRunner(calls *[]int) Runner {
	return func(_ context.Context, ps []probe.Probe) ([]probe.Result, error) {
		*calls = append(*calls, len(ps))
		var rs []probe.Result
		for _, p := range ps {
			steps := []probe.Step{{Chain: "input", Verdict: "drop", Rule: &probe.RuleInfo{Text: "udp dport 1 drop", File: "r.nft", Line: 9}}}
			if p.Dst.Port == 9999 {
				steps = []probe.Step{
					{Chain: "input", Verdict: "continue", Rule: &probe.RuleInfo{Text: `udp dport 9999 log prefix "dropped: "`, File: "r.nft", Line: 3}},
					{Chain: "input", Verdict: "drop", Rule: &probe.RuleInfo{Text: "udp dport 9999 drop", File: "r.nft", Line: 4}},
				}
			}
			rs = append(rs, probe.Result{Probe: p, Got: probe.Drop, Path: probe.Path{{Family: "inet", Table: "filter", Chain: "input", Type: "filter", Steps: steps, Verdict: "drop"}}})
		}
		return rs, nil
	}
}

func TestLogAttributorCaches(t *testing.T) {
	line := func(prefix, src string, sport, dport int) string {
		return fmt.Sprintf(logLineFmt, prefix, "eth0", src, sport, dport)
	}
	cases := []struct {
		name   string
		rounds [][]string
		calls  []int // probes per twin run
		logged []int // line of the log rule per line of the last round (0: not traced)
	}{
		{"one packet kind, one run", [][]string{{line("dropped:", "192.0.2.2", 1000, 9999), line("dropped:", "192.0.2.3", 1001, 9999)}}, []int{1}, []int{3, 3}},
		{"second round is cached", [][]string{{line("dropped:", "192.0.2.2", 1000, 9999)}, {line("dropped:", "192.0.2.9", 1005, 9999)}}, []int{1}, []int{3}},
		{"new port runs again", [][]string{{line("dropped:", "192.0.2.2", 1000, 9999)}, {line("dropped:", "192.0.2.2", 1000, 1)}}, []int{1, 1}, []int{0}},
		{"other prefix is another key", [][]string{{line("dropped:", "192.0.2.2", 1000, 9999), line("other:", "192.0.2.2", 1000, 9999)}}, []int{2}, []int{3, 0}},
		{"garbage is not run", [][]string{{"hello", line("dropped:", "192.0.2.2", 1000, 9999)}}, []int{1}, []int{0, 3}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var calls []int
			a := New(fakeLogRunner(&calls))
			var last []Attribution
			for _, r := range c.rounds {
				var err error
				if last, err = a.Attribute(context.Background(), r); err != nil {
					t.Fatal(err)
				}
			}
			if fmt.Sprint(calls) != fmt.Sprint(c.calls) {
				t.Errorf("twin runs %v, want %v", calls, c.calls)
			}
			for i, at := range last {
				got := 0
				if len(at.LoggedBy) == 1 {
					got = at.LoggedBy[0].Rule.Line
				}
				if got != c.logged[i] {
					t.Errorf("line %d logged by line %d, want %d (err %v)", i, got, c.logged[i], at.Err)
				}
				if (got == 0) != (at.Err != nil) {
					t.Errorf("line %d: err %v with logged-by line %d", i, at.Err, got)
				}
			}
		})
	}
}

func TestPrefixes(t *testing.T) {
	src := "table inet f {\n chain c {\n  tcp dport 1 log prefix \"a: \"; udp dport 2 log group 1 prefix \"b\" drop\n  log prefix \"a: \"\n  log\n }\n}\n"
	if got := strings.Join(Prefixes(src), "|"); got != "a: |b" {
		t.Errorf("Prefixes = %q, want %q", got, "a: |b")
	}
}

// BenchmarkLogAttribution measures log lines traced per second: 1000
// lines of 8 packet kinds (prefix, port) with varying sources, through a
// real twin. cold: a new attributor per round (one twin run of 8 probes);
// warm: every kind already explained.
func BenchmarkLogAttribution(b *testing.B) {
	testnet.RequireRoot(b)
	var rs strings.Builder
	rs.WriteString("flush ruleset\ntable inet filter {\n\tchain input {\n\t\ttype filter hook input priority 0; policy accept;\n")
	for i := 0; i < 8; i++ {
		fmt.Fprintf(&rs, "\t\tudp dport %d log prefix \"dropped: \"\n\t\tudp dport %d drop\n", 9000+i, 9000+i)
	}
	rs.WriteString("\t}\n}\n")
	path := filepath.Join(b.TempDir(), "log.nft")
	if err := os.WriteFile(path, []byte(rs.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	var lines []string
	for i := 0; i < 1000; i++ {
		lines = append(lines, fmt.Sprintf(logLineFmt, "dropped:", "eth0", fmt.Sprintf("198.51.100.%d", 1+i%200), 30000+i, 9000+i%8))
	}
	ctx := context.Background()
	bundle, err := source.Load(path, source.Options{})
	if err != nil {
		b.Fatal(err)
	}
	load := probe.CompileLoader(ctx, bundle)
	run := func(ctx context.Context, ps []probe.Probe) ([]probe.Result, error) {
		rep, err := probe.Run(ctx, probe.Topology{}, load, ps, nil, probe.Options{})
		return rep.Results, err
	}
	for _, mode := range []string{"cold", "warm"} {
		b.Run(mode, func(b *testing.B) {
			a := New(run)
			if mode == "warm" {
				if _, err := a.Attribute(ctx, lines); err != nil {
					b.Fatal(err)
				}
			}
			start := time.Now()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if mode == "cold" {
					a = New(run)
				}
				as, err := a.Attribute(ctx, lines)
				if err != nil {
					b.Fatal(err)
				}
				if as[0].Err != nil || len(as[0].LoggedBy) != 1 {
					b.Fatalf("first line not traced: %+v", as[0])
				}
			}
			b.ReportMetric(float64(b.N*len(lines))/time.Since(start).Seconds(), "lines/s")
		})
	}
}
