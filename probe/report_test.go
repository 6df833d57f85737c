package probe

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"strings"
	"testing"
)

const sampleListing = `table inet filter { # handle 3
	set fwslot_a_office { # handle 4
		type ipv4_addr
		flags interval
		elements = { 198.51.100.0/24,
			     203.0.113.0/24 }
	}
	chain input { # handle 1
		type filter hook input priority filter; policy accept;
		jump fwslot_a_input comment "fwslot dispatch" # handle 7
		drop comment "fwslot policy" # handle 8
	}
	chain fwslot_a_input { # handle 2
		ip saddr @fwslot_a_office tcp dport 22 accept # handle 5
		tcp dport { 80, 443 } jump fwslot_a_web # handle 6
	}
	chain fwslot_a_web { # handle 9
		counter packets 0 bytes 0 # handle 10
	}
}
table inet fwslot_trace { # handle 4
	chain pre { # handle 1
		type filter hook prerouting priority -350; policy accept;
		ip id & 0x8000 == 0x8000 meta nftrace set 1 # handle 2
	}
}
`

// TestParseNftRuleset also checks that rule texts name sets as the user
// does: explain showed the slot layout's @fwslot_a_office.
func TestParseNftRuleset(t *testing.T) {
	x, err := parseNftRuleset(sampleListing)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range x.All() {
		got = append(got, r.Chain+"#"+r.Text)
	}
	want := "input#ip saddr @office tcp dport 22 accept|input#tcp dport { 80, 443 } jump web|web#counter packets 0 bytes 0"
	if strings.Join(got, "|") != want {
		t.Fatalf("All:\n got  %s\n want %s", strings.Join(got, "|"), want)
	}
	if r, ok := x.Lookup("inet", "filter", "input", 7); !ok || !r.Own {
		t.Fatalf("dispatch rule: %+v %v", r, ok)
	}
	if _, ok := x.Lookup("inet", "fwslot_trace", "pre", 2); ok {
		t.Fatal("trace table rule indexed")
	}
	if h, _ := x.hook("inet", "filter", "input"); h != "input" {
		t.Fatalf("hook %q", h)
	}
}

func TestBuildPathFromEvents(t *testing.T) {
	x, err := parseNftRuleset(sampleListing)
	if err != nil {
		t.Fatal(err)
	}
	const inet = 1
	evs := []traceEvent{
		{id: 9, family: inet, table: traceTable, chain: "pre", handle: 2, typ: traceTypeRule, verdict: nftCont, hasHdr: true},
		{id: 9, family: inet, table: "filter", chain: "input", handle: 7, typ: traceTypeRule, verdict: nftJump, target: "fwslot_a_input", hasHdr: true},
		{id: 9, family: inet, table: "filter", chain: "fwslot_a_input", handle: 6, typ: traceTypeRule, verdict: nftJump, target: "fwslot_a_web"},
		{id: 9, family: inet, table: "filter", chain: "fwslot_a_web", handle: 10, typ: traceTypeRule, verdict: nftCont},
		{id: 9, family: inet, table: "filter", chain: "fwslot_a_web", typ: traceTypeRule, verdict: nftCont},
		{id: 9, family: inet, table: "filter", chain: "fwslot_a_input", typ: traceTypeRule, verdict: nftCont},
		{id: 9, family: inet, table: "filter", chain: "input", handle: 8, typ: traceTypeRule, verdict: nfDrop},
	}
	p := buildPath(evs, x)
	got := strings.TrimSpace(p.String())
	want := strings.TrimSpace(`
  inet filter input (hook input): drop
    chain input: tcp dport { 80, 443 } jump web  # handle 6 -> jump web
    chain web: counter packets 0 bytes 0  # handle 10 -> continue
    chain web: end of chain -> continue
    chain input: end of chain -> continue
    chain input: policy drop`)
	if got != want {
		t.Fatalf("path:\n%s\nwant:\n%s", got, want)
	}
	if p.verdict() != "drop" {
		t.Fatal(p.verdict())
	}
	if _, st := p.Decision(); st == nil || !st.Policy {
		t.Fatalf("decision %+v", st)
	}
	cov := computeCoverage([]Result{{Path: p}}, x)
	if cov.Total != 3 || cov.Reached != 2 || cov.Unreached[0].Handle != 5 {
		t.Fatalf("coverage %+v", cov)
	}
}

func sampleReport() Report {
	p1, _ := ParseLine("tcp 203.0.113.9 -> 192.0.2.10:22 in eth0")
	p1.Verdict, p1.File, p1.Line, p1.Name = Accept, "x.probes", 3, "ssh"
	p2 := p1
	p2.Line, p2.Name = 4, ""
	rep := Report{Results: []Result{
		{Probe: p1, Got: Drop, Outcome: Dropped, Path: Path{{Family: "inet", Table: "filter", Chain: "input", Verdict: "drop",
			Steps: []Step{{Chain: "input", Verdict: "drop", Policy: true}}}}},
		{Probe: p2, Err: errors.New("no trace events"), Error: "no trace events"},
	}}
	rep.tally()
	return rep
}

func TestJSONShape(t *testing.T) {
	b, err := json.Marshal(sampleReport())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	res := m["results"].([]any)[0].(map[string]any)
	for _, k := range []string{"probe", "got", "outcome", "path"} {
		if _, ok := res[k]; !ok {
			t.Errorf("result lacks %q: %s", k, b)
		}
	}
	if pr := res["probe"].(map[string]any); pr["file"] != "x.probes" || pr["verdict"] != "accept" {
		t.Errorf("probe json %v", pr)
	}
	if e := m["results"].([]any)[1].(map[string]any)["error"]; e != "no trace events" {
		t.Errorf("error field %v", e)
	}
	if m["failed"].(float64) != 2 {
		t.Errorf("failed %v", m["failed"])
	}
}

func TestJUnit(t *testing.T) {
	var b strings.Builder
	if err := WriteJUnit(&b, "fwslot", sampleReport()); err != nil {
		t.Fatal(err)
	}
	var suites junitSuites
	if err := xml.Unmarshal([]byte(b.String()), &suites); err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	s := suites.Suites[0]
	if s.Tests != 2 || s.Failures != 1 || s.Errors != 1 || s.Cases[0].Name != "ssh" || s.Cases[0].Failure == nil ||
		!strings.Contains(s.Cases[0].Failure.Message, "expected accept, got drop") || s.Cases[1].Error == nil || s.Cases[0].Line != 3 {
		t.Fatalf("junit:\n%s", b.String())
	}
}

func TestPacketRoundTrip(t *testing.T) {
	tests := []pktSpec{
		{src: mustAddr("192.0.2.1"), dst: mustAddr("192.0.2.2"), proto: 6, sport: 1000, dport: 22, flags: FlagSYN, tag: 0x8001},
		{src: mustAddr("2001:db8::1"), dst: mustAddr("2001:db8::2"), proto: 17, sport: 1000, dport: 53, tag: 0x80002},
		{src: mustAddr("192.0.2.1"), dst: mustAddr("192.0.2.2"), proto: 1, icmpType: 8, tag: 0x8003},
		{src: mustAddr("2001:db8::1"), dst: mustAddr("2001:db8::2"), proto: 58, icmpType: 128, tag: 0x80004},
	}
	for _, sp := range tests {
		b := buildIP(sp)
		pk, ok := parseIP(b)
		if !ok || pk.src != sp.src || pk.dst != sp.dst || pk.proto != sp.proto || pk.tag != sp.tag {
			t.Fatalf("%+v parsed as %+v", sp, pk)
		}
		hl := 20
		if sp.src.Is6() {
			hl = 40
		}
		l4 := b[hl:]
		sum := uint32(0)
		if sp.proto != 1 {
			sum = pseudoSum(sp.src, sp.dst, sp.proto, len(l4))
		}
		if c := csumAdd(sum, l4); c != 0xffff {
			t.Errorf("%d: bad transport checksum %#x", sp.proto, c)
		}
		if sp.src.Is4() && csumAdd(0, b[:20]) != 0xffff {
			t.Errorf("bad IPv4 header checksum")
		}
	}
}
