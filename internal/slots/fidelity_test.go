package slots

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/fwslot/fwslot/internal/names"
	"github.com/fwslot/fwslot/internal/nfnl"
	"github.com/fwslot/fwslot/internal/testnet"
)

// TestFidelityCorpus runs every ruleset of testdata/corpus (hand-written
// NN-*.nft and the generated gen/*.nft) through load, swap, a second load
// and swap, a rollback and a third load into a slot that holds content,
// and after each activation proves the live slot equal to what `nft -f`
// builds from the same file: every chain, rule, expression, set, element
// and object, modulo the names the slot layout renames.
func TestFidelityCorpus(t *testing.T) {
	testnet.RequireRoot(t)
	dir, err := filepath.Abs("../../testdata/corpus")
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "[0-9][0-9]-*.nft"))
	generated, _ := filepath.Glob(filepath.Join(dir, "gen", "*.nft"))
	files = append(files, generated...)
	if len(files) < 150 {
		t.Fatalf("corpus has %d rulesets, want at least 150", len(files))
	}
	// Rulesets under optional/ need kernel features that not every kernel
	// has (flowtables); they are skipped, saying so, where nft -f fails.
	optional, _ := filepath.Glob(filepath.Join(dir, "optional", "*.nft"))
	for _, f := range append(files, optional...) {
		f := f
		isOptional := strings.Contains(f, "/optional/")
		name := strings.TrimSuffix(filepath.Base(f), ".nft")
		if strings.Contains(f, "/gen/") {
			name = "gen-" + name
		}
		t.Run(name, func(t *testing.T) {
			ns := newTarget(t)
			ifs, err := Interfaces(ns)
			if err != nil {
				t.Fatal(err)
			}
			// The compiled form is what `nft -f` built in a namespace
			// with the target's interfaces, read back whole.
			rs, err := Compile(context.Background(), f, ifs)
			if err != nil && isOptional {
				t.Skipf("this kernel cannot load %s with nft -f either: %v", filepath.Base(f), err)
			}
			if err != nil {
				t.Fatal(err)
			}
			if rs.RuleCount() == 0 {
				t.Fatalf("%s has no rules", f)
			}
			want, err := Canonical(rs, CanonOptions{})
			if err != nil {
				t.Fatal(err)
			}
			fidelityCycle(t, ns, rs, want)
		})
	}
}

// fidelityCycle loads rs into slot b and swaps, loads it again into slot
// a and swaps, rolls back to b, and loads it a third time into a (which
// clears what a held), comparing the live slot with want after each step.
func fidelityCycle(t *testing.T, ns string, rs *Ruleset, want *Canon) {
	t.Helper()
	c, err := nfnl.Dial(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	steps := []struct {
		what  string
		stage bool
		slot  names.Slot
	}{
		{"first load and swap", true, names.SlotB},
		{"second load and swap", true, names.SlotA},
		{"rollback", false, names.SlotB},
		{"third load over a used slot and swap", true, names.SlotA},
	}
	for i, s := range steps {
		st, err := ReadState(c)
		if err != nil {
			t.Fatalf("%s: %v", s.what, err)
		}
		if s.stage {
			active := names.SlotA
			for _, ts := range st.Managed() {
				active = ts.Active
			}
			var b nfnl.Batch
			if err := Stage(&b, st, rs, s.slot, Tag{Version: uint64(i + 1), Hash: "h"}, active); err != nil {
				t.Fatalf("%s: stage: %v", s.what, err)
			}
			if err := c.Commit(&b); err != nil {
				t.Fatalf("%s: stage: %v", s.what, err)
			}
			if st, err = ReadState(c); err != nil {
				t.Fatalf("%s: %v", s.what, err)
			}
		}
		var fb nfnl.Batch
		if err := Flip(&fb, st, s.slot, nil); err != nil {
			t.Fatalf("%s: flip: %v", s.what, err)
		}
		if err := c.Commit(&fb); err != nil {
			t.Fatalf("%s: flip: %v", s.what, err)
		}
		live, err := ReadTables(c, nil)
		if err != nil {
			t.Fatalf("%s: %v", s.what, err)
		}
		got, err := Canonical(live, CanonOptions{Slot: s.slot, LiveBase: true})
		if err != nil {
			t.Fatalf("%s: %v", s.what, err)
		}
		if d := want.Diff(got); len(d) > 0 || !reflect.DeepEqual(want, got) {
			t.Fatalf("%s: live slot %s differs from nft -f: %s\n%s", s.what, s.slot, strings.Join(d, "; "),
				diffLines(fmt.Sprint(want), fmt.Sprint(got)))
		}
	}
}

func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b bytes.Buffer
	seen := map[string]bool{}
	for _, l := range g {
		seen[l] = true
	}
	for _, l := range w {
		if !seen[l] {
			fmt.Fprintf(&b, "- %s\n", l)
		}
	}
	seen = map[string]bool{}
	for _, l := range w {
		seen[l] = true
	}
	for _, l := range g {
		if !seen[l] {
			fmt.Fprintf(&b, "+ %s\n", l)
		}
	}
	return b.String()
}
