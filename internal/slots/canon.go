package slots

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	"github.com/fwslot/fwslot/internal/names"
	"github.com/fwslot/fwslot/internal/nfnl"
)

// Canon is a ruleset in canonical form for comparison: chains, sets and
// objects under the user's names, anonymous sets named by their content,
// and rules as the kernel's bytes with names mapped. Two rulesets that
// filter alike have equal Canons, whether one sits in a slot or not.
type Canon struct {
	// Chains maps "inet filter input" to the chain.
	Chains map[string]CanonChain
	// Objects maps "inet filter set allowed" to a digest of its
	// definition and elements.
	Objects map[string]string
}

// CanonChain is one chain of a Canon.
type CanonChain struct {
	// Base describes hook, type and policy for base chains.
	Base  string
	Attrs string
	Rules []string
}

// CanonOptions select what Canonical reads.
type CanonOptions struct {
	// Slot, when set, reads fwslot's layout: only that slot's chains,
	// sets and objects, with the hook and policy of each base chain as
	// fwslot recorded them on the slot's copy. A staged version's base
	// chains need not exist in the kernel yet.
	Slot names.Slot
	// LiveBase, with Slot, takes hook and policy from the kernel's base
	// chains instead (the chain's own policy and its dispatch's policy
	// rule): for the live slot.
	LiveBase bool
	// MaskState leaves out what packets change: counter and quota
	// values, element expirations and statistics, shared state sets.
	MaskState bool
}

// statefulExprs hold values that packets change.
var statefulExprs = map[string]bool{"counter": true, "quota": true, "last": true, "connlimit": true}

// Canonical renders rs in canonical form.
func Canonical(rs *Ruleset, o CanonOptions) (*Canon, error) {
	c := &Canon{Chains: map[string]CanonChain{}, Objects: map[string]string{}}
	user := func(n string) string {
		if o.Slot == "" {
			return n
		}
		if s, u, ok := names.FromSlot(n); ok && s == o.Slot {
			return u
		}
		return n
	}
	other := func(n string) bool {
		s, _, ok := names.FromSlot(n)
		return o.Slot != "" && ok && s != o.Slot
	}
	for _, tab := range rs.Tables {
		cn := &canoner{opts: o, user: user, anon: map[string]string{}, binding: map[string]*Chain{}}
		for _, ch := range tab.Chains {
			if ch.Binding {
				cn.binding[ch.Name] = ch
			}
		}
		for _, s := range tab.Sets {
			if s.anonymous() {
				d, err := cn.setDigest(s)
				if err != nil {
					return nil, err
				}
				// A meter keeps its user's name; kernel-numbered
				// names ("__set3") say nothing.
				if kernelNumbered(s.Name) {
					cn.anon[s.Name] = "anon:" + d
				} else {
					cn.anon[s.Name] = "anon:" + user(s.Name) + ":" + d
				}
			}
		}
		prefix := tab.Key()
		bases := map[string]*Chain{}
		for _, ch := range tab.Chains {
			if ch.Base != nil {
				bases[ch.Name] = ch
			}
		}
		for _, ch := range tab.Chains {
			if ch.Binding {
				continue // rendered inside the rule that jumps to it
			}
			name, attrs, base := ch.Name, ch.Attrs, ""
			if o.Slot != "" {
				s, u, ok := names.FromSlot(ch.Name)
				if !ok || s != o.Slot {
					continue
				}
				name = u
				var err error
				if attrs, err = userAttrs(ch.Attrs); err != nil {
					return nil, err
				}
				spec, err := slotBaseSpec(ch.Attrs)
				if err != nil {
					return nil, fmt.Errorf("chain %s: %w", ch.Name, err)
				}
				if spec != nil {
					base = baseText(spec, spec.Policy)
				}
				if b := bases[u]; o.LiveBase && spec != nil {
					switch {
					case b == nil:
						base = "base chain is missing"
					case len(b.Rules) != 2:
						base = fmt.Sprintf("base chain holds %d rules instead of fwslot's 2", len(b.Rules))
					case policyOf(b.Rules[1]) != b.Base.Policy:
						base = fmt.Sprintf("base chain has policy %d but its policy rule says %d", b.Base.Policy, policyOf(b.Rules[1]))
					default:
						base = baseText(b.Base, b.Base.Policy)
					}
				}
			} else if ch.Base != nil {
				base = baseText(ch.Base, ch.Base.Policy)
			}
			cc := CanonChain{Base: base, Attrs: fmt.Sprintf("%x", attrs)}
			for _, r := range ch.Rules {
				t, err := cn.ruleText(r)
				if err != nil {
					return nil, fmt.Errorf("chain %s: %w", ch.Name, err)
				}
				cc.Rules = append(cc.Rules, t)
			}
			c.Chains[prefix+" "+name] = cc
		}
		for _, s := range tab.Sets {
			if s.anonymous() || other(s.Name) || (o.MaskState && s.Shared) {
				continue
			}
			d, err := cn.setDigest(s)
			if err != nil {
				return nil, err
			}
			c.Objects[fmt.Sprintf("%s set %s", prefix, user(s.Name))] = fmt.Sprintf("shared=%v %s", s.Shared, d)
		}
		for _, ob := range tab.Objs {
			if other(ob.Name) || (o.MaskState && ob.Shared) {
				continue
			}
			c.Objects[fmt.Sprintf("%s %s %s", prefix, nfnl.ObjTypeName(ob.Type), user(ob.Name))] = fmt.Sprintf("type=%d %x", ob.Type, ob.Attrs)
		}
		for _, f := range tab.Flowtables {
			c.Objects[fmt.Sprintf("%s flowtable %s", prefix, f.Name)] = fmt.Sprintf("%x", f.Attrs)
		}
	}
	return c, nil
}

// Diff lists, in words, how b differs from a (a is what should be).
func (a *Canon) Diff(b *Canon) []string {
	var out []string
	for _, k := range sortedCanon(a.Chains, b.Chains) {
		x, inA := a.Chains[k]
		y, inB := b.Chains[k]
		switch {
		case !inB:
			out = append(out, fmt.Sprintf("chain %s is missing", k))
		case !inA:
			out = append(out, fmt.Sprintf("chain %s was added (%d rules)", k, len(y.Rules)))
		default:
			if x.Base != y.Base {
				out = append(out, fmt.Sprintf("chain %s: hook or policy changed (%s; want %s)", k, y.Base, x.Base))
			}
			if x.Attrs != y.Attrs {
				out = append(out, fmt.Sprintf("chain %s: attributes changed", k))
			}
			if len(x.Rules) != len(y.Rules) {
				out = append(out, fmt.Sprintf("chain %s holds %d rules, want %d", k, len(y.Rules), len(x.Rules)))
				continue
			}
			for i := range x.Rules {
				if x.Rules[i] != y.Rules[i] {
					out = append(out, fmt.Sprintf("chain %s: rule %d changed", k, i+1))
				}
			}
		}
	}
	for _, k := range sortedCanon(a.Objects, b.Objects) {
		x, inA := a.Objects[k]
		y, inB := b.Objects[k]
		switch {
		case !inB:
			out = append(out, k+" is missing")
		case !inA:
			out = append(out, k+" was added")
		case x != y:
			out = append(out, k+" changed")
		}
	}
	return out
}

func sortedCanon[V any](a, b map[string]V) []string {
	seen := map[string]bool{}
	var keys []string
	for _, m := range []map[string]V{a, b} {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	sort.Strings(keys)
	return keys
}

type canoner struct {
	opts CanonOptions
	user func(string) string
	anon map[string]string
	// binding holds the anonymous chains (`jump { ... }`) by their
	// kernel names, which differ from load to load: a jump to one is
	// rendered as the chain's content.
	binding map[string]*Chain
}

// bindingText renders a binding chain as its attributes and rules.
func (cn *canoner) bindingText(c *Chain) (string, error) {
	attrs, err := userAttrs(c.Attrs)
	if err != nil {
		return "", err
	}
	out := fmt.Sprintf("bind{%x", attrs)
	for _, r := range c.Rules {
		t, err := cn.ruleText(r)
		if err != nil {
			return "", fmt.Errorf("anonymous chain: %w", err)
		}
		out += "\n" + t
	}
	return out + "}", nil
}

func (cn *canoner) ref(n string) string {
	if a, ok := cn.anon[n]; ok {
		return a
	}
	return cn.user(n)
}

func baseText(b *BaseSpec, policy uint32) string {
	return fmt.Sprintf("hook=%x type=%s flags=%d policy=%d", b.Hook, b.Type, b.Flags&^nfnl.ChainFlagBase, policy)
}

// userAttrs drops fwslot's own userdata TLV from a slot chain's attributes.
func userAttrs(attrs []byte) ([]byte, error) {
	as, err := nfnl.ParseAttrs(attrs)
	if err != nil {
		return nil, err
	}
	return rewriteAttrs(as, nfnl.ChainUserdata, func(a nfnl.Attr, e *nfnl.Encoder) error {
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
		return nil
	})
}

// slotBaseSpec returns the base chain spec fwslot recorded in a slot
// chain's userdata, or nil for a regular chain.
func slotBaseSpec(attrs []byte) (*BaseSpec, error) {
	ud, ok, err := findAttr(attrs, nfnl.ChainUserdata)
	if err != nil || !ok {
		return nil, err
	}
	v, ok := parseUdata(ud)[udataBaseSpec]
	if !ok {
		return nil, nil
	}
	return decodeBaseSpec(v)
}

// policyOf reads the verdict of fwslot's policy rule.
func policyOf(rule []byte) uint32 {
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

// ruleText renders a rule with every name it references mapped and
// batch-local set ids dropped; everything else is the kernel's bytes,
// copied without formatting (drift checks canonicalize every rule of both
// slots). Only expressions that name other objects are parsed.
func (cn *canoner) ruleText(rule []byte) (string, error) {
	out, err := attrsText(make([]byte, 0, len(rule)+16), rule, nfnl.RuleExpressions, cn.exprsText)
	return string(out), err
}

// exprsText appends a rule's expressions (NFTA_RULE_EXPRESSIONS) to out.
func (cn *canoner) exprsText(out []byte, a nfnl.Attr) ([]byte, error) {
	list, err := nfnl.ParseAttrs(a.Data)
	if err != nil {
		return nil, err
	}
	for _, el := range list {
		name, exprData, _, err := exprParts(el.Data)
		if err != nil {
			return nil, err
		}
		out = append(out, '|')
		out = append(out, name...)
		switch {
		case cn.opts.MaskState && statefulExprs[name]:
			continue
		case name == "immediate" || name == "lookup" || name == "dynset" || name == "objref":
		default:
			out = append(out, '{')
			out = append(out, exprData...)
			out = append(out, '}')
			continue
		}
		data, err := nfnl.ParseAttrs(exprData)
		if err != nil {
			return nil, err
		}
		for _, d := range data {
			switch {
			case name == "immediate" && d.Kind() == nfnl.ImmediateData:
				t, err := cn.dataText(d.Data)
				if err != nil {
					return nil, err
				}
				out = appendField(out, d.Kind(), []byte(t))
			case name == "lookup" && d.Kind() == nfnl.LookupSet,
				name == "dynset" && d.Kind() == nfnl.DynsetSetName,
				name == "objref" && (d.Kind() == nfnl.ObjrefSetName || d.Kind() == nfnl.ObjrefImmName):
				out = appendField(out, d.Kind(), []byte(cn.ref(nfnl.Str(d.Data))))
			case name == "lookup" && d.Kind() == nfnl.LookupSetID,
				name == "dynset" && d.Kind() == nfnl.DynsetSetID,
				name == "objref" && d.Kind() == nfnl.ObjrefSetID:
			case name == "dynset" && d.Kind() == nfnl.DynsetTimeout && nfnl.U64(d.Data) == 0:
			default:
				out = appendField(out, d.Kind(), d.Data)
			}
		}
	}
	return out, nil
}

// appendField appends a kind, a length and the bytes, so that different
// fields never run together into the same text.
func appendField(out []byte, kind uint16, data []byte) []byte {
	out = append(out, byte(kind>>8), byte(kind), byte(len(data)>>8), byte(len(data)))
	return append(out, data...)
}

// dataText renders an NFTA_DATA payload, the chain of a verdict mapped
// (a binding chain rendered whole).
func (cn *canoner) dataText(b []byte) (string, error) {
	out, err := attrsText(nil, b, nfnl.DataVerdict, func(out []byte, a nfnl.Attr) ([]byte, error) {
		return attrsText(out, a.Data, nfnl.VerdictChain, func(out []byte, v nfnl.Attr) ([]byte, error) {
			name := nfnl.Str(v.Data)
			if bc := cn.binding[name]; bc != nil {
				t, err := cn.bindingText(bc)
				if err != nil {
					return nil, err
				}
				return appendField(out, 0xfffe, []byte(t)), nil
			}
			return appendField(out, 0xffff, []byte(cn.ref(name))), nil
		})
	})
	return string(out), err
}

// Element attributes that packets change (NFTA_SET_ELEM_EXPR,
// NFTA_SET_ELEM_EXPRESSIONS).
const (
	setElemExpr        = 7
	setElemExpressions = 11
)

// setDigest renders a set's definition and sorted elements (verdict
// chains and object names mapped) as a short digest.
func (cn *canoner) setDigest(s *Set) (string, error) {
	var elems []string
	// The elements of a dynamic set are what packets put there (a
	// meter's are, and meters are anonymous, so never shared).
	dynamic := s.Flags&(nfnl.SetFlagEval|nfnl.SetFlagTimeout) != 0
	for _, e := range s.Elems {
		if cn.opts.MaskState && dynamic {
			break
		}
		as, err := nfnl.ParseAttrs(e)
		if err != nil {
			return "", err
		}
		var parts []string
		for _, a := range as {
			switch {
			case a.Kind() == nfnl.SetElemData:
				d, err := cn.dataText(a.Data)
				if err != nil {
					return "", err
				}
				parts = append(parts, "data="+d)
			case a.Kind() == nfnl.SetElemObjref:
				parts = append(parts, "obj="+cn.user(nfnl.Str(a.Data)))
			case cn.opts.MaskState && (a.Kind() == setElemExpr || a.Kind() == setElemExpressions):
			default:
				parts = append(parts, fmt.Sprintf("%d=%x", a.Kind(), a.Data))
			}
		}
		elems = append(elems, strings.Join(parts, ","))
	}
	sort.Strings(elems)
	h := sha256.Sum256([]byte(fmt.Sprintf("%x|%s", s.Attrs, strings.Join(elems, "|"))))
	return fmt.Sprintf("%d-elems-%s", len(elems), hex.EncodeToString(h[:8])), nil
}
