package slots

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/names"
	"github.com/fwslot/fwslot/internal/nfnl"
)

// swapHere makes the staged slot live and records the kernel state as a
// swap does (generation included), so the next load trusts the slots.
func swapHere(t *testing.T, tg *Target) {
	t.Helper()
	c, err := tg.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, err := ReadState(c)
	if err != nil {
		t.Fatal(err)
	}
	status, err := Describe(st)
	if err != nil {
		t.Fatal(err)
	}
	b := nfnl.Batch{Gen: st.Gen}
	if err := Flip(&b, st, status.Staging.Slot, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Commit(&b); err != nil {
		t.Fatal(err)
	}
	if err := tg.Store.Update(func(tx *history.Tx) error { return tg.RecordKernel(tx, st, b.Gen) }); err != nil {
		t.Fatal(err)
	}
}

// refreshRuleset is a table with a big hash set, a data map and rules; the
// seed changes every 100th element, other changes it otherwise.
func refreshRuleset(seed int, other string) string {
	return refreshRulesetN(seed, other, 3000, "")
}

// refreshRulesetN is refreshRuleset with n set elements and more set
// statements (decl).
func refreshRulesetN(seed int, other string, n int, decl string) string {
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

// TestRefreshEqualsFullStage loads v1, v2 and swaps twice, so the staging
// slot holds v1; a v3 that changes 1% of v1's set elements (and map data)
// is then written as a refresh, and the slot, made live, equals both the
// compiled v3 and v3 staged in full in another namespace. A v4 that also
// changes a rule is staged in full.
func TestRefreshEqualsFullStage(t *testing.T) {
	ns := newTarget(t)
	store, err := history.Open(filepath.Join(t.TempDir(), "fwslot.db"), history.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	tg := &Target{NetNS: ns, Store: store}
	ctx := context.Background()
	for i, body := range []string{refreshRuleset(0, "counter"), refreshRuleset(1, "counter accept")} {
		res, err := tg.Load(ctx, writeFile(t, body), LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Refreshed {
			t.Fatalf("load %d refreshed a slot that held a different ruleset", i+1)
		}
		swapHere(t, tg)
	}
	v3 := writeFile(t, refreshRuleset(7, "counter"))
	res, err := tg.Load(ctx, v3, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Refreshed {
		t.Fatal("v3 differs from the staged v1 only in elements but was staged in full")
	}
	swapHere(t, tg)
	got := liveCanon(t, ns)

	ifs, err := Interfaces(ns)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := Compile(ctx, v3, ifs)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Canonical(rs, CanonOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d := want.Diff(got); len(d) > 0 || !reflect.DeepEqual(want, got) {
		t.Fatalf("refreshed slot differs from the compiled v3: %s", strings.Join(d, "; "))
	}
	full := newTarget(t)
	stageAndFlip(t, full, v3, 1, true)
	if fc := liveCanon(t, full); !reflect.DeepEqual(fc, got) {
		t.Fatalf("refreshed slot differs from v3 staged in full: %s", strings.Join(fc.Diff(got), "; "))
	}

	// The slot now staging holds v2 (rule "counter accept"); v4 changes
	// elements and a rule: staged in full.
	res, err = tg.Load(ctx, writeFile(t, refreshRuleset(9, "counter drop")), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Refreshed {
		t.Fatal("a version with a changed rule was refreshed")
	}
}

// liveCanon reads the live slot of ns in canonical form.
func liveCanon(t *testing.T, ns string) *Canon {
	t.Helper()
	c, err := nfnl.Dial(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, err := ReadState(c)
	if err != nil {
		t.Fatal(err)
	}
	slot := names.SlotA
	for _, ts := range st.Managed() {
		slot = ts.Active
	}
	live, err := ReadTables(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Canonical(live, CanonOptions{Slot: slot, LiveBase: true})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestRefreshRefusedLeavesProduction: a refresh the kernel refuses (the
// added elements overflow the set's size) fails the load and leaves the
// kernel exactly as it was.
func TestRefreshRefusedLeavesProduction(t *testing.T) {
	ns := newTarget(t)
	store, err := history.Open(filepath.Join(t.TempDir(), "fwslot.db"), history.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	tg := &Target{NetNS: ns, Store: store}
	ctx := context.Background()
	for _, other := range []string{"counter", "counter accept"} {
		if _, err := tg.Load(ctx, writeFile(t, refreshRulesetN(0, other, 2990, "size 3000;")), LoadOptions{}); err != nil {
			t.Fatal(err)
		}
		swapHere(t, tg)
	}
	before := run(t, ns, "nft", "-a", "list", "ruleset")
	bad := refreshRulesetN(0, "counter", 3010, "size 3000;")
	c, err := tg.Dial()
	if err != nil {
		t.Fatal(err)
	}
	st, err := ReadState(c)
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	status, err := Describe(st)
	if err != nil {
		t.Fatal(err)
	}
	old, err := tg.refreshable(st, status, status.Staging.Slot)
	if err != nil || old == nil {
		t.Fatalf("the staging slot is not refreshable: %v", err)
	}
	ifs, err := Interfaces(ns)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := Compile(ctx, writeFile(t, bad), ifs)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := refreshDeltas(old, rs, status.Staging.Slot); !ok {
		t.Fatal("the bad version would not be a refresh: the test tests nothing")
	}
	_, err = tg.Load(ctx, writeFile(t, bad), LoadOptions{})
	if err == nil || !strings.Contains(err.Error(), "production untouched") {
		t.Fatalf("the kernel took 3010 elements into a set of size 3000, or the load failed before staging: %v", err)
	}
	if after := run(t, ns, "nft", "-a", "list", "ruleset"); after != before {
		t.Fatalf("refused refresh changed the kernel:\n--- before\n%s\n--- after\n%s", before, after)
	}
}
