package slots

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
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
			got := normalize(t, staged, names.SlotB)
			exp := normalize(t, want, "")
			if got != exp {
				t.Fatalf("staged slot differs from nft -f:\n%s", diffLines(exp, got))
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

// normalize renders a ruleset as text for comparison. With slot set, it
// reads fwslot's layout: the slot's chains under their user names, base
// chains from the kernel's base chain and its policy rule, per-slot sets
// and objects under user names. Anonymous sets are named by their content.
func normalize(t *testing.T, rs *Ruleset, slot names.Slot) string {
	t.Helper()
	var out []string
	user := func(n string) string {
		if slot == "" {
			return n
		}
		if s, u, ok := names.FromSlot(n); ok && s == slot {
			return u
		}
		return n
	}
	for _, tab := range rs.Tables {
		anon := map[string]string{}
		for _, s := range tab.Sets {
			if s.Anonymous() {
				anon[s.Name] = "anon:" + setDigest(t, s, user)
			}
		}
		ref := func(n string) string {
			if a, ok := anon[n]; ok {
				return a
			}
			return user(n)
		}
		prefix := tab.Key()
		bases := map[string]*Chain{}
		for _, c := range tab.Chains {
			if c.Base != nil {
				bases[c.Name] = c
			}
		}
		for _, c := range tab.Chains {
			if slot != "" {
				s, u, ok := names.FromSlot(c.Name)
				if !ok || s != slot {
					continue
				}
				var spec string
				if b := bases[u]; b != nil {
					if len(b.Rules) != 2 {
						t.Fatalf("base chain %s holds %d rules, want the 2 dispatch rules", u, len(b.Rules))
					}
					spec = baseText(b.Base, policyOf(t, b.Rules[1]))
					if b.Base.Policy != nfnl.VerdictAccept {
						t.Fatalf("base chain %s has policy %d, want accept", u, b.Base.Policy)
					}
				}
				out = append(out, chainText(t, prefix, u, spec, userAttrs(t, c.Attrs), c.Rules, ref))
				continue
			}
			spec := ""
			if c.Base != nil {
				spec = baseText(c.Base, c.Base.Policy)
			}
			out = append(out, chainText(t, prefix, c.Name, spec, c.Attrs, c.Rules, ref))
		}
		for _, s := range tab.Sets {
			if s.Anonymous() {
				continue
			}
			if sl, _, ok := names.FromSlot(s.Name); slot != "" && ok && sl != slot {
				continue
			}
			out = append(out, fmt.Sprintf("%s set %s shared=%v %s", prefix, user(s.Name), s.Shared, setDigest(t, s, user)))
		}
		for _, o := range tab.Objs {
			if sl, _, ok := names.FromSlot(o.Name); slot != "" && ok && sl != slot {
				continue
			}
			out = append(out, fmt.Sprintf("%s obj %s type=%d %x", prefix, user(o.Name), o.Type, o.Attrs))
		}
		for _, f := range tab.Flowtables {
			out = append(out, fmt.Sprintf("%s flowtable %s %x", prefix, f.Name, f.Attrs))
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

func baseText(b *BaseSpec, policy uint32) string {
	return fmt.Sprintf("hook=%x type=%s flags=%d policy=%d", b.Hook, b.Type, b.Flags&^nfnl.ChainFlagBase, policy)
}

// userAttrs drops fwslot's own userdata TLV from a slot chain's attributes.
func userAttrs(t *testing.T, attrs []byte) []byte {
	as, err := nfnl.ParseAttrs(attrs)
	if err != nil {
		t.Fatal(err)
	}
	var e nfnl.Encoder
	for _, a := range as {
		if a.Kind() != nfnl.ChainUserdata {
			e.Attr(a)
			continue
		}
		var ud []byte
		b := a.Data
		for len(b) >= 2 && 2+int(b[1]) <= len(b) {
			if b[0] != udataBaseSpec {
				ud = append(ud, b[:2+int(b[1])]...)
			}
			b = b[2+int(b[1]):]
		}
		if len(ud) > 0 {
			e.Raw(a.Type, ud)
		}
	}
	return e.Bytes()
}

// policyOf reads the verdict of fwslot's policy rule.
func policyOf(t *testing.T, rule []byte) uint32 {
	var code uint32 = 1 << 31
	forEachExpr(rule, func(name string, data []nfnl.Attr) {
		if name != "immediate" {
			return
		}
		d, _ := nfnl.Find(data, nfnl.ImmediateData)
		da, _ := nfnl.ParseAttrs(d.Data)
		v, _ := nfnl.Find(da, nfnl.DataVerdict)
		va, _ := nfnl.ParseAttrs(v.Data)
		c, _ := nfnl.Find(va, nfnl.VerdictCode)
		code = nfnl.U32(c.Data)
	})
	return code
}

func chainText(t *testing.T, table, name, spec string, attrs []byte, rules [][]byte, ref func(string) string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s chain %s %s attrs=%x", table, name, spec, attrs)
	for i, r := range rules {
		fmt.Fprintf(&b, "\n  rule %d: %s", i, ruleText(t, r, ref))
	}
	return b.String()
}

// ruleText renders a rule with every name it references mapped by ref and
// batch-local set ids dropped; everything else is the kernel's bytes.
func ruleText(t *testing.T, rule []byte, ref func(string) string) string {
	attrs, err := nfnl.ParseAttrs(rule)
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, a := range attrs {
		if a.Kind() != nfnl.RuleExpressions {
			parts = append(parts, fmt.Sprintf("attr%d=%x", a.Kind(), a.Data))
		}
	}
	forEachExpr(rule, func(name string, data []nfnl.Attr) {
		var fields []string
		for _, d := range data {
			v := fmt.Sprintf("%x", d.Data)
			switch {
			case name == "immediate" && d.Kind() == nfnl.ImmediateData:
				v = dataText(t, d.Data, ref)
			case name == "lookup" && d.Kind() == nfnl.LookupSet,
				name == "dynset" && d.Kind() == nfnl.DynsetSetName,
				name == "objref" && (d.Kind() == nfnl.ObjrefSetName || d.Kind() == nfnl.ObjrefImmName):
				v = ref(nfnl.Str(d.Data))
			case name == "lookup" && d.Kind() == nfnl.LookupSetID,
				name == "dynset" && d.Kind() == nfnl.DynsetSetID,
				name == "objref" && d.Kind() == nfnl.ObjrefSetID:
				continue
			case name == "dynset" && d.Kind() == nfnl.DynsetTimeout && nfnl.U64(d.Data) == 0:
				continue
			}
			fields = append(fields, fmt.Sprintf("%d=%s", d.Kind(), v))
		}
		parts = append(parts, name+"{"+strings.Join(fields, ",")+"}")
	})
	return strings.Join(parts, " ")
}

func dataText(t *testing.T, b []byte, ref func(string) string) string {
	attrs, err := nfnl.ParseAttrs(b)
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, a := range attrs {
		if a.Kind() != nfnl.DataVerdict {
			parts = append(parts, fmt.Sprintf("%d:%x", a.Kind(), a.Data))
			continue
		}
		va, _ := nfnl.ParseAttrs(a.Data)
		for _, v := range va {
			if v.Kind() == nfnl.VerdictChain {
				parts = append(parts, "chain:"+ref(nfnl.Str(v.Data)))
			} else {
				parts = append(parts, fmt.Sprintf("v%d:%x", v.Kind(), v.Data))
			}
		}
	}
	return strings.Join(parts, ";")
}

// setDigest renders a set's definition and sorted elements (verdict
// chains and object names mapped to user names) as a short digest.
func setDigest(t *testing.T, s *Set, user func(string) string) string {
	var elems []string
	for _, e := range s.Elems {
		as, err := nfnl.ParseAttrs(e)
		if err != nil {
			t.Fatal(err)
		}
		var parts []string
		for _, a := range as {
			switch a.Kind() {
			case nfnl.SetElemData:
				parts = append(parts, "data="+dataText(t, a.Data, user))
			case nfnl.SetElemObjref:
				parts = append(parts, "obj="+user(nfnl.Str(a.Data)))
			default:
				parts = append(parts, fmt.Sprintf("%d=%x", a.Kind(), a.Data))
			}
		}
		elems = append(elems, strings.Join(parts, ","))
	}
	sort.Strings(elems)
	h := sha256.Sum256([]byte(fmt.Sprintf("%x|%s", s.Attrs, strings.Join(elems, "|"))))
	return fmt.Sprintf("%d-elems-%s", len(elems), hex.EncodeToString(h[:8]))
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
