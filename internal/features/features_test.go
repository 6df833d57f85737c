package features

import (
	"context"
	"os"
	"testing"
)

func TestParseErrorsAndMatch(t *testing.T) {
	out := "/r/ft.nft:3:12-13: Error: Could not process rule: No such file or directory\n" +
		"\tflowtable ft {\n\t          ^^\n" +
		"/r/ft.nft:8:28-39: Error: Could not process rule: No such file or directory\n" +
		"\t\tip protocol { tcp, udp } flow add @ft\n\t\t                         ^^^^^^^^^^^^\n" +
		"/r/x.nft:2:5: Error: syntax error, unexpected newline\n"
	errs := ParseErrors(out)
	want := []NftError{
		{"/r/ft.nft", 3, "Could not process rule: No such file or directory", "flowtable ft {"},
		{"/r/ft.nft", 8, "Could not process rule: No such file or directory", "ip protocol { tcp, udp } flow add @ft"},
		{"/r/x.nft", 2, "syntax error, unexpected newline", ""},
	}
	if len(errs) != len(want) {
		t.Fatalf("got %d errors, want %d: %+v", len(errs), len(want), errs)
	}
	for i := range want {
		if errs[i] != want[i] {
			t.Errorf("error %d: got %+v, want %+v", i, errs[i], want[i])
		}
	}
	// A report where only flowtables and flow offload are missing.
	rep := &Report{}
	for _, f := range All {
		rep.Features = append(rep.Features, Result{Name: f.Name, Supported: f.Name != "flowtable" && f.Name != "flow offload"})
	}
	cases := []struct {
		src, feature string
	}{
		{"flowtable ft {", "flowtable"},
		{"ip protocol tcp flow add @ft", "flow offload"},
		{"jump missing_chain", ""},      // a real ENOENT, not a missing feature
		{"counter name \"nosuch\"", ""}, // counters are supported
	}
	for _, c := range cases {
		needs := Match(rep, []NftError{{File: "f", Line: 1, Source: c.src}})
		got := ""
		if len(needs) > 0 {
			got = needs[0].Feature
		}
		if got != c.feature {
			t.Errorf("%q: matched %q, want %q", c.src, got, c.feature)
		}
	}
}

// BenchmarkProbe measures a whole probe of every feature (one private
// namespace, a few nft runs).
func BenchmarkProbe(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	for i := 0; i < b.N; i++ {
		rep, err := Probe(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(len(rep.Features)), "features")
	}
}
