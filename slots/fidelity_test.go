package slots

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/fwslot/fwslot/internal/names"
	"github.com/fwslot/fwslot/internal/nfnl"
	"github.com/fwslot/fwslot/internal/nsutil"
)

// TestFidelityCorpus stages every ruleset of testdata/corpus into a slot,
// makes it live, and proves the slot equal to what `nft -f` builds from
// the same file: every chain, rule, expression, set, element and object,
// modulo the names the slot layout renames.
func TestFidelityCorpus(t *testing.T) {
	requireRoot(t)
	dir, err := filepath.Abs("../testdata/corpus")
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "[0-9][0-9]-*.nft"))
	if len(files) < 25 {
		t.Fatalf("corpus has %d rulesets, want at least 25", len(files))
	}
	// Rulesets under optional/ need kernel features that not every kernel
	// has (flowtables); they are skipped, saying so, where nft -f fails.
	optional, _ := filepath.Glob(filepath.Join(dir, "optional", "*.nft"))
	for _, f := range append(files, optional...) {
		f := f
		isOptional := strings.Contains(f, "/optional/")
		t.Run(strings.TrimSuffix(filepath.Base(f), ".nft"), func(t *testing.T) {
			want, err := plainLoad(dir, f)
			if err != nil && isOptional {
				t.Skipf("this kernel cannot load %s with nft -f either: %v", filepath.Base(f), err)
			}
			if err != nil {
				t.Fatal(err)
			}
			ns := newTarget(t)
			stageAndFlip(t, ns, f, 1, true)
			c, err := nfnl.Dial(ns)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			staged, err := ReadTables(c, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Canonical(staged, CanonOptions{Slot: names.SlotB, LiveBase: true})
			if err != nil {
				t.Fatal(err)
			}
			exp, err := Canonical(want, CanonOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if d := exp.Diff(got); len(d) > 0 || !reflect.DeepEqual(exp, got) {
				t.Fatalf("staged slot differs from nft -f: %s\n%s", strings.Join(d, "; "), diffLines(fmt.Sprint(exp), fmt.Sprint(got)))
			}
			if n := want.RuleCount(); n == 0 {
				t.Fatalf("%s has no rules", f)
			}
		})
	}
}

// plainLoad runs `nft -f` in a throwaway namespace with the same
// interfaces and reads what it built.
func plainLoad(dir, file string) (*Ruleset, error) {
	var rs *Ruleset
	err := nsutil.DoFresh(func() error {
		for _, l := range []string{"eth0", "eth1"} {
			if out, err := exec.Command("ip", "link", "add", l, "type", "ifb").CombinedOutput(); err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
		}
		cmd := exec.Command("nft", "-I", dir, "-f", file)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("nft -f %s: %v\n%s", file, err, out)
		}
		c, err := nfnl.DialHere()
		if err != nil {
			return err
		}
		defer c.Close()
		rs, err = ReadTables(c, nil)
		return err
	})
	return rs, err
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
