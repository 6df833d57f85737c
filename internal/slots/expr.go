package slots

import (
	"bytes"
	"encoding/binary"
	"errors"
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

// chainRef is what a reference to a user chain becomes in a slot.
type chainRef struct {
	name string
	id   uint32 // non-zero for binding chains created in the same batch
}

// renamer maps the user's names of one table to their names in a slot.
type renamer struct {
	chains map[string]chainRef
	sets   map[string]setRef
	objs   map[ObjKey]string
	// renameOnly keeps attributes the kernel dumps but refuses on input
	// (reading a slot back keeps rules as a compile reads them).
	renameOnly bool
}

func (r *renamer) chain(n string) (chainRef, error) {
	if s, ok := r.chains[n]; ok {
		return s, nil
	}
	return chainRef{}, fmt.Errorf("reference to unknown chain %q", n)
}

func (r *renamer) set(n string) (setRef, error) {
	if s, ok := r.sets[n]; ok {
		return s, nil
	}
	return setRef{}, fmt.Errorf("reference to unknown set %q", n)
}

// obj maps an object of a type; objects are keyed by type and name, and
// shared ones keep the user's name.
func (r *renamer) obj(typ uint32, n string) string {
	if s, ok := r.objs[ObjKey{Type: typ, Name: n}]; ok {
		return s
	}
	return n
}

// Byte patterns of the expressions patchExpr rewrites: their names, and
// the verdict codes of jump and goto (big-endian -3 and -4) that an
// immediate carries with a chain name.
var (
	patchedNames = [][]byte{[]byte("lookup\x00"), []byte("dynset\x00"), []byte("objref\x00"), []byte("exthdr\x00"), []byte("osf\x00")}
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
	return rewriteAttrs(attrs, nfnl.RuleExpressions, func(a nfnl.Attr, out *nfnl.Encoder) error {
		list, err := nfnl.ParseAttrs(a.Data)
		if err != nil {
			return err
		}
		var le nfnl.Encoder
		for _, el := range list {
			p, err := patchExpr(el.Data, rn)
			if err != nil {
				return err
			}
			le.Raw(el.Type, p)
		}
		out.Raw(a.Type, le.Bytes())
		return nil
	})
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
			_, multi := nfnl.Find(d, dynsetExpressions)
			var kept []nfnl.Attr
			for _, a := range d {
				if a.Kind() == nfnl.DynsetTimeout && nfnl.U64(a.Data) == 0 && !rn.renameOnly {
					continue
				}
				if a.Kind() == dynsetFlags && multi && !rn.renameOnly {
					// Two or more statements (NFTA_DYNSET_EXPRESSIONS)
					// need NFT_DYNSET_F_EXPR, which the kernel takes
					// but never dumps (nft_dynset_dump).
					a = nfnl.Attr{Type: a.Type, Data: binary.BigEndian.AppendUint32(nil, nfnl.U32(a.Data)|dynsetFlagExpr)}
				}
				kept = append(kept, a)
			}
			if _, ok := nfnl.Find(d, dynsetFlags); multi && !ok && !rn.renameOnly {
				kept = append(kept, nfnl.Attr{Type: dynsetFlags, Data: binary.BigEndian.AppendUint32(nil, dynsetFlagExpr)})
			}
			return patchSetRef(kept, rn, nfnl.DynsetSetName, nfnl.DynsetSetID)
		}
	case "osf":
		// `osf name`/`osf ttl` are dumped with a zero flags attribute
		// that the kernel refuses on input (only NFT_OSF_F_VERSION is
		// valid).
		patch = func(d []nfnl.Attr) ([]byte, error) {
			var e nfnl.Encoder
			for _, a := range d {
				if a.Kind() == osfFlags && nfnl.U32(a.Data) == 0 && !rn.renameOnly {
					continue
				}
				e.Attr(a)
			}
			return e.Bytes(), nil
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
	return rewriteAttrs(ea, nfnl.ExprData, func(a nfnl.Attr, out *nfnl.Encoder) error {
		data, err := nfnl.ParseAttrs(a.Data)
		if err != nil {
			return err
		}
		p, err := patch(data)
		if err != nil {
			return fmt.Errorf("%s expression: %w", name, err)
		}
		out.Raw(a.Type, p)
		return nil
	})
}

func patchImmediate(data []nfnl.Attr, rn *renamer) ([]byte, error) {
	return rewriteAttrs(data, nfnl.ImmediateData, func(a nfnl.Attr, out *nfnl.Encoder) error {
		p, err := patchData(a.Data, rn)
		if err != nil {
			return err
		}
		out.Raw(a.Type, p)
		return nil
	})
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
	return rewriteAttrs(attrs, nfnl.DataVerdict, func(a nfnl.Attr, out *nfnl.Encoder) error {
		va, err := nfnl.ParseAttrs(a.Data)
		if err != nil {
			return err
		}
		ve, err := rewriteAttrs(va, nfnl.VerdictChain, func(v nfnl.Attr, ve *nfnl.Encoder) error {
			to, err := rn.chain(nfnl.Str(v.Data))
			if err != nil {
				return err
			}
			if to.id != 0 {
				ve.Uint32(nfnl.VerdictChainID, to.id)
			} else {
				ve.String(v.Type, to.name)
			}
			return nil
		})
		if err != nil {
			return err
		}
		out.Raw(a.Type, ve)
		return nil
	})
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
	var typ uint32
	if a, ok := nfnl.Find(data, nfnl.ObjrefImmType); ok {
		typ = nfnl.U32(a.Data)
	}
	for _, a := range data {
		switch a.Kind() {
		case nfnl.ObjrefImmName:
			out.String(a.Type, rn.obj(typ, nfnl.Str(a.Data)))
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
// element; objType is the object type of an object map.
func patchElem(elem []byte, rn *renamer, objType uint32) ([]byte, error) {
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
			out.String(a.Type, rn.obj(objType, nfnl.Str(a.Data)))
		default:
			out.Attr(a)
		}
	}
	return out.Bytes(), nil
}

// anonName returns the name an anonymous set gets in slot: a name nft
// had the kernel number ("__set3", "__objmap0") becomes the template the
// kernel fills in ("__set%d"); a name the user gave (`meter f`, an
// anonymous-flagged set) stays the user's, in the slot's namespace, since
// both slots' copies live in one table.
func anonName(slot names.Slot, name string) string {
	if kernelNumbered(name) {
		return strings.TrimRight(name, "0123456789") + "%d"
	}
	return names.InSlot(slot, name)
}

// kernelNumbered reports whether nft had the kernel number an anonymous
// set's name ("__set3"): such names differ between loads.
func kernelNumbered(name string) bool {
	base := strings.TrimRight(name, "0123456789")
	return strings.HasPrefix(base, "__") && len(base) < len(name)
}

// ErrReserved means a ruleset names a chain, set or object with the
// prefix fwslot reserves for its slots.
var ErrReserved = errors.New("the name is reserved for fwslot's slots")

// checkReserved rejects user names that collide with fwslot's own.
func checkReserved(t *Table) error {
	bad := func(kind, n string) error {
		return fmt.Errorf("table %s: %s name %q starts with %q: %w", t.Key(), kind, n, names.Prefix, ErrReserved)
	}
	for _, c := range t.Chains {
		if names.Reserved(c.Name) {
			return bad("chain", c.Name)
		}
	}
	for _, s := range t.Sets {
		if (!s.anonymous() || !kernelNumbered(s.Name)) && names.Reserved(s.Name) {
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

// Attributes of the exthdr, dynset and osf expressions (NFTA_EXTHDR_*,
// NFTA_DYNSET_*, NFTA_OSF_*) and the dynset flag NFT_DYNSET_F_EXPR.
const (
	exthdrFlags       = 5
	exthdrSreg        = 7
	dynsetFlags       = 9
	dynsetExpressions = 10
	dynsetFlagExpr    = 2
	osfFlags          = 3
)
