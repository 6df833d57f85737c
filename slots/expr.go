package slots

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/fwslot/fwslot/internal/names"
	"github.com/fwslot/fwslot/internal/nfnl"
)

// setRef is what a reference to a user set becomes in a slot.
type setRef struct {
	name string
	id   uint32 // non-zero for anonymous sets created in the same batch
}

// renamer maps the user's names of one table to their names in a slot.
type renamer struct {
	chains map[string]string
	sets   map[string]setRef
	objs   map[string]string
	// renameOnly keeps attributes the kernel dumps but refuses on input
	// (reading a slot back keeps rules as a compile reads them).
	renameOnly bool
}

func (r *renamer) chain(n string) (string, error) {
	if s, ok := r.chains[n]; ok {
		return s, nil
	}
	return "", fmt.Errorf("reference to unknown chain %q", n)
}

func (r *renamer) set(n string) (setRef, error) {
	if s, ok := r.sets[n]; ok {
		return s, nil
	}
	return setRef{}, fmt.Errorf("reference to unknown set %q", n)
}

func (r *renamer) obj(n string) string {
	if s, ok := r.objs[n]; ok {
		return s
	}
	return n
}

// Byte patterns of the expressions patchExpr rewrites: their names, and
// the verdict codes of jump and goto (big-endian -3 and -4) that an
// immediate carries with a chain name.
var (
	patchedNames = [][]byte{[]byte("lookup\x00"), []byte("dynset\x00"), []byte("objref\x00"), []byte("exthdr\x00")}
	jumpCodes    = [][]byte{{0xff, 0xff, 0xff, 0xfd}, {0xff, 0xff, 0xff, 0xfc}}
)

// needsPatch reports whether a rule may name another object. Most rules
// (matches and a verdict) do not, and are copied without being parsed.
func needsPatch(rule []byte) bool {
	for _, p := range patchedNames {
		if bytes.Contains(rule, p) {
			return true
		}
	}
	for _, p := range jumpCodes {
		if bytes.Contains(rule, p) {
			return true
		}
	}
	return false
}

// patchRule rewrites the names a rule uses to point at the slot's objects
// and copies everything else byte for byte.
func patchRule(rule []byte, rn *renamer) ([]byte, error) {
	if !needsPatch(rule) {
		return rule, nil
	}
	attrs, err := nfnl.ParseAttrs(rule)
	if err != nil {
		return nil, err
	}
	var out nfnl.Encoder
	for _, a := range attrs {
		if a.Kind() != nfnl.RuleExpressions {
			out.Attr(a)
			continue
		}
		list, err := nfnl.ParseAttrs(a.Data)
		if err != nil {
			return nil, err
		}
		var le nfnl.Encoder
		for _, el := range list {
			p, err := patchExpr(el.Data, rn)
			if err != nil {
				return nil, err
			}
			le.Raw(el.Type, p)
		}
		out.Raw(a.Type, le.Bytes())
	}
	return out.Bytes(), nil
}

// patchExpr rewrites one expression (NFTA_EXPR_NAME + NFTA_EXPR_DATA).
// Only the expressions that name other objects are touched.
func patchExpr(expr []byte, rn *renamer) ([]byte, error) {
	ea, err := nfnl.ParseAttrs(expr)
	if err != nil {
		return nil, err
	}
	na, _ := nfnl.Find(ea, nfnl.ExprName)
	name := nfnl.Str(na.Data)
	var patch func([]nfnl.Attr) ([]byte, error)
	switch name {
	case "immediate":
		patch = func(d []nfnl.Attr) ([]byte, error) { return patchImmediate(d, rn) }
	case "lookup":
		patch = func(d []nfnl.Attr) ([]byte, error) { return patchSetRef(d, rn, nfnl.LookupSet, nfnl.LookupSetID) }
	case "dynset":
		patch = func(d []nfnl.Attr) ([]byte, error) {
			// The kernel dumps a zero timeout for every dynset but
			// refuses one on a set without timeouts.
			var kept []nfnl.Attr
			for _, a := range d {
				if a.Kind() == nfnl.DynsetTimeout && nfnl.U64(a.Data) == 0 && !rn.renameOnly {
					continue
				}
				kept = append(kept, a)
			}
			return patchSetRef(kept, rn, nfnl.DynsetSetName, nfnl.DynsetSetID)
		}
	case "objref":
		patch = func(d []nfnl.Attr) ([]byte, error) { return patchObjref(d, rn) }
	case "exthdr":
		// A header write (`tcp option maxseg size set ...`) is dumped
		// with a zero flags attribute that the kernel refuses on input.
		ea0, _ := nfnl.Find(ea, nfnl.ExprData)
		data, err := nfnl.ParseAttrs(ea0.Data)
		if err != nil {
			return nil, err
		}
		if _, write := nfnl.Find(data, exthdrSreg); !write || rn.renameOnly {
			return expr, nil
		}
		patch = func(d []nfnl.Attr) ([]byte, error) {
			var e nfnl.Encoder
			for _, a := range d {
				if a.Kind() == exthdrFlags && nfnl.U32(a.Data) == 0 {
					continue
				}
				e.Attr(a)
			}
			return e.Bytes(), nil
		}
	default:
		return expr, nil
	}
	var out nfnl.Encoder
	for _, a := range ea {
		if a.Kind() != nfnl.ExprData {
			out.Attr(a)
			continue
		}
		data, err := nfnl.ParseAttrs(a.Data)
		if err != nil {
			return nil, err
		}
		p, err := patch(data)
		if err != nil {
			return nil, fmt.Errorf("%s expression: %w", name, err)
		}
		out.Raw(a.Type, p)
	}
	return out.Bytes(), nil
}

func patchImmediate(data []nfnl.Attr, rn *renamer) ([]byte, error) {
	var out nfnl.Encoder
	for _, a := range data {
		if a.Kind() != nfnl.ImmediateData {
			out.Attr(a)
			continue
		}
		p, err := patchData(a.Data, rn)
		if err != nil {
			return nil, err
		}
		out.Raw(a.Type, p)
	}
	return out.Bytes(), nil
}

// patchData rewrites the chain of a verdict inside an NFTA_DATA payload
// (immediate data, or the data of a verdict map element).
func patchData(b []byte, rn *renamer) ([]byte, error) {
	attrs, err := nfnl.ParseAttrs(b)
	if err != nil {
		return nil, err
	}
	if _, ok := nfnl.Find(attrs, nfnl.DataVerdict); !ok {
		return b, nil
	}
	var out nfnl.Encoder
	for _, a := range attrs {
		if a.Kind() != nfnl.DataVerdict {
			out.Attr(a)
			continue
		}
		va, err := nfnl.ParseAttrs(a.Data)
		if err != nil {
			return nil, err
		}
		var ve nfnl.Encoder
		for _, v := range va {
			if v.Kind() == nfnl.VerdictChain {
				to, err := rn.chain(nfnl.Str(v.Data))
				if err != nil {
					return nil, err
				}
				ve.String(v.Type, to)
				continue
			}
			ve.Attr(v)
		}
		out.Raw(a.Type, ve.Bytes())
	}
	return out.Bytes(), nil
}

func patchSetRef(data []nfnl.Attr, rn *renamer, nameKind, idKind uint16) ([]byte, error) {
	var out nfnl.Encoder
	var ref setRef
	for _, a := range data {
		switch a.Kind() {
		case nameKind:
			r, err := rn.set(nfnl.Str(a.Data))
			if err != nil {
				return nil, err
			}
			ref = r
			out.String(a.Type, r.name)
		case idKind:
			// Replaced below: ids are per batch.
		default:
			out.Attr(a)
		}
	}
	if ref.id != 0 {
		out.Uint32(idKind, ref.id)
	}
	return out.Bytes(), nil
}

func patchObjref(data []nfnl.Attr, rn *renamer) ([]byte, error) {
	var out nfnl.Encoder
	var ref setRef
	for _, a := range data {
		switch a.Kind() {
		case nfnl.ObjrefImmName:
			out.String(a.Type, rn.obj(nfnl.Str(a.Data)))
		case nfnl.ObjrefSetName:
			r, err := rn.set(nfnl.Str(a.Data))
			if err != nil {
				return nil, err
			}
			ref = r
			out.String(a.Type, r.name)
		case nfnl.ObjrefSetID:
		default:
			out.Attr(a)
		}
	}
	if ref.id != 0 {
		out.Uint32(nfnl.ObjrefSetID, ref.id)
	}
	return out.Bytes(), nil
}

// patchElem rewrites the verdict chain or object name inside one set
// element.
func patchElem(elem []byte, rn *renamer) ([]byte, error) {
	attrs, err := nfnl.ParseAttrs(elem)
	if err != nil {
		return nil, err
	}
	var out nfnl.Encoder
	for _, a := range attrs {
		switch a.Kind() {
		case nfnl.SetElemData:
			p, err := patchData(a.Data, rn)
			if err != nil {
				return nil, err
			}
			out.Raw(a.Type, p)
		case nfnl.SetElemObjref:
			out.String(a.Type, rn.obj(nfnl.Str(a.Data)))
		default:
			out.Attr(a)
		}
	}
	return out.Bytes(), nil
}

// anonTemplate turns a kernel-assigned anonymous set name ("__set3") into
// the template the kernel fills in ("__set%d").
func anonTemplate(name string) string {
	return strings.TrimRight(name, "0123456789") + "%d"
}

// checkReserved rejects user names that collide with fwslot's own.
func checkReserved(t *Table) error {
	bad := func(kind, n string) error {
		return fmt.Errorf("table %s: %s name %q starts with %q, which fwslot reserves for its slots; rename it", t.Key(), kind, n, names.Prefix)
	}
	for _, c := range t.Chains {
		if names.Reserved(c.Name) {
			return bad("chain", c.Name)
		}
	}
	for _, s := range t.Sets {
		if !s.Anonymous() && names.Reserved(s.Name) {
			return bad("set", s.Name)
		}
	}
	for _, o := range t.Objs {
		if names.Reserved(o.Name) {
			return bad("object", o.Name)
		}
	}
	for _, f := range t.Flowtables {
		if names.Reserved(f.Name) {
			return bad("flowtable", f.Name)
		}
	}
	return nil
}

// Attributes of the exthdr expression (NFTA_EXTHDR_*).
const (
	exthdrFlags = 5
	exthdrSreg  = 7
)
