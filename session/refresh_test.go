package session

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/fwslot/fwslot/internal/kerneltest"
	"github.com/fwslot/fwslot/internal/names"
	"github.com/fwslot/fwslot/internal/nfnl"
	"github.com/fwslot/fwslot/internal/slots"
)

// refreshRuleset is a table with a big hash set (n elements; the seed
// changes every 100th), a data map (the seed's parity changes every 10th
// value) and rules (other).
func refreshRuleset(seed int, other string, n int, decl string) string {
	var set, mp strings.Builder
	for i := range n {
		if i > 0 {
			set.WriteString(", ")
		}
		o := 0
		if i%100 == 0 {
			o = seed
		}
		fmt.Fprintf(&set, "10.%d.%d.%d", o, i>>8, i&255)
	}
	for i := range 50 {
		if i > 0 {
			mp.WriteString(", ")
		}
		d := i
		if i%10 == 0 {
			d += seed % 2
		}
		fmt.Fprintf(&mp, "%d : %d", 1000+i, d)
	}
	return "table inet t {\n\tset big { type ipv4_addr; " + decl + " elements = { " + set.String() + " } }\n" +
		"\tmap marks { type inet_service : mark; elements = { " + mp.String() + " } }\n" +
		"\tchain input { type filter hook input priority 0; policy accept; ip saddr @big drop; meta mark set tcp dport map @marks; " + other + "; }\n}\n"
}

// liveCanon reads the live slot of ns in canonical form.
func liveCanon(t *testing.T, ns string) *slots.Canon {
	t.Helper()
	c, st := kerneltest.State(t, ns)
	slot := names.SlotA
	for _, ts := range st.Managed() {
		slot = ts.Active
	}
	live, err := slots.ReadTables(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := slots.Canonical(live, slots.CanonOptions{Slot: slot, LiveBase: true})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestRefreshEqualsFullStage loads v1, v2 and swaps twice, so the staging
// slot holds v1; a v3 that changes 1% of v1's set elements (and some map
// data) is then written as a refresh, and the slot, made live, equals both
// the compiled v3 and v3 staged in full in another namespace. A v4 that
// also changes a rule is staged in full.
func TestRefreshEqualsFullStage(t *testing.T) {
	ns, tg := nsTarget(t, "fwslot-refresh")
	for i, other := range []string{"counter", "counter accept"} {
		res := load(t, tg, writeRuleset(t, fmt.Sprintf("v%d.nft", i+1), refreshRuleset(0+i, other, 3000, "")))
		if res.Refreshed {
			t.Fatalf("load %d refreshed a slot that held a different ruleset", i+1)
		}
		mustSwap(t, tg)
	}
	v3 := writeRuleset(t, "v3.nft", refreshRuleset(7, "counter", 3000, ""))
	res := load(t, tg, v3)
	if !res.Refreshed {
		t.Fatal("v3 differs from the staged v1 only in elements but was staged in full")
	}
	mustSwap(t, tg)
	got := liveCanon(t, ns)

	rs := compileFor(t, ns, v3)
	if rs.FastLists() != 1 {
		t.Fatalf("v3's big list went the fast way %d times, want 1", rs.FastLists())
	}
	want, err := slots.Canonical(rs, slots.CanonOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d := want.Diff(got); len(d) > 0 || !reflect.DeepEqual(want, got) {
		t.Fatalf("refreshed slot differs from the compiled v3: %s", strings.Join(d, "; "))
	}
	fullNS, full := nsTarget(t, "fwslot-refull")
	if r := load(t, full, v3); r.Refreshed {
		t.Fatal("a first load refreshed")
	}
	mustSwap(t, full)
	if fc := liveCanon(t, fullNS); !reflect.DeepEqual(fc, got) {
		t.Fatalf("refreshed slot differs from v3 staged in full: %s", strings.Join(fc.Diff(got), "; "))
	}

	// The staging slot now holds v2 ("counter accept"); v4 changes
	// elements and a rule: staged in full.
	if res := load(t, tg, writeRuleset(t, "v4.nft", refreshRuleset(9, "counter drop", 3000, ""))); res.Refreshed {
		t.Fatal("a version with a changed rule was refreshed")
	}
	mustSwap(t, tg)
	// The staging slot holds v3 ("counter"); v5 has the same rules and
	// other elements throughout: staged in full, and the sample check
	// says so without decoding v3.
	v5 := strings.ReplaceAll(refreshRuleset(7, "counter", 3000, ""), "10.", "11.")
	if res := load(t, tg, writeRuleset(t, "v5.nft", v5)); res.Refreshed {
		t.Fatal("a version whose every element changed was refreshed")
	}
}

// TestRefreshRefusedLeavesProduction: a refresh the kernel refuses (the
// added elements overflow the set's size) fails the load and leaves the
// kernel, production included, exactly as it was.
func TestRefreshRefusedLeavesProduction(t *testing.T) {
	ns, tg := nsTarget(t, "fwslot-refresh-bad")
	ctx := context.Background()
	for i, other := range []string{"counter", "counter accept"} {
		load(t, tg, writeRuleset(t, fmt.Sprintf("v%d.nft", i+1), refreshRuleset(0, other, 2990, "size 3000;")))
		mustSwap(t, tg)
	}
	before := readKernel(t, ns)
	bad := writeRuleset(t, "bad.nft", refreshRuleset(0, "counter", 3010, "size 3000;"))

	// The bad version is a refresh of the staged v1: the check of the
	// session's refresh path says so before the load tries it.
	s, err := Open(ctx, tg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rs := compileFor(t, ns, bad)
	slot := s.status.Active().Other()
	old, err := s.refreshable(s.st, s.status, slot, rs)
	if err != nil || old == nil {
		t.Fatalf("the staging slot is not refreshable: %v", err)
	}
	var b nfnl.Batch
	if ok, err := slots.Refresh(&b, s.st, old, rs, slot, slots.Tag{Version: 99, Hash: "x"}); err != nil || !ok {
		t.Fatalf("the bad version would not be a refresh (%v): the test tests nothing", err)
	}
	s.Close()

	mustRefuseStaging(t, tg, bad, "3010 elements into a set of size 3000")
	before.unchanged(t, "refused refresh")
}

// bigList returns n IPv4 addresses as an element list body.
func bigList(n, seed int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(",\n")
		}
		fmt.Fprintf(&b, "10.%d.%d.%d", seed, i>>8, i&255)
	}
	return b.String()
}

// TestFastElementsRefusedLeavesProduction stages a version whose big set
// goes the fast way and that the kernel refuses (more elements than the
// set's size): the load fails and the kernel, production included, is
// exactly as before.
func TestFastElementsRefusedLeavesProduction(t *testing.T) {
	ns, tg := nsTarget(t, "fwslot-fast-bad")
	body := func(seed int, size string) string {
		return "table inet t {\n\tset big { type ipv4_addr;" + size + " elements = {\n" + bigList(1500, seed) + "\n\t} }\n" +
			"\tchain input { type filter hook input priority 0; policy accept; ip saddr @big drop; }\n}\n"
	}
	load(t, tg, writeRuleset(t, "good.nft", body(1, "")))
	mustSwap(t, tg)
	before := readKernel(t, ns)
	if !strings.Contains(before.ruleset, "10.1.5.219") {
		t.Fatal("the good version's elements are not live")
	}
	bad := writeRuleset(t, "bad.nft", body(2, " size 1000;"))
	if rs := compileFor(t, ns, bad); rs.FastLists() != 1 {
		t.Fatal("the bad version does not go the fast way")
	}
	mustRefuseStaging(t, tg, bad, "1500 elements into a set of size 1000")
	before.unchanged(t, "refused load")
}
