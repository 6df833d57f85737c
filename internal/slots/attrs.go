package slots

import "github.com/fwslot/fwslot/internal/nfnl"

// findAttr parses the netlink attributes in b and returns the data of the
// first one of kind; ok is false when there is none.
func findAttr(b []byte, kind uint16) (data []byte, ok bool, err error) {
	attrs, err := nfnl.ParseAttrs(b)
	if err != nil {
		return nil, false, err
	}
	a, ok := nfnl.Find(attrs, kind)
	return a.Data, ok, nil
}

// rewriteAttrs encodes attrs again, copying them but those of kind, which
// it hands to fn to encode their replacement (or nothing) into out.
func rewriteAttrs(attrs []nfnl.Attr, kind uint16, fn func(a nfnl.Attr, out *nfnl.Encoder) error) ([]byte, error) {
	var out nfnl.Encoder
	for _, a := range attrs {
		if a.Kind() != kind {
			out.Attr(a)
			continue
		}
		if err := fn(a, &out); err != nil {
			return nil, err
		}
	}
	return out.Bytes(), nil
}

// attrsText appends the netlink attributes in b to out as fields
// (appendField), but those of kind, which fn renders.
func attrsText(out, b []byte, kind uint16, fn func(out []byte, a nfnl.Attr) ([]byte, error)) ([]byte, error) {
	attrs, err := nfnl.ParseAttrs(b)
	if err != nil {
		return nil, err
	}
	for _, a := range attrs {
		if a.Kind() != kind {
			out = appendField(out, a.Kind(), a.Data)
			continue
		}
		if out, err = fn(out, a); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// exprParts parses one expression of a rule (an NFTA_LIST_ELEM): its name
// and its data (NFTA_EXPR_DATA); ok is false when it has no data.
func exprParts(b []byte) (name string, data []byte, ok bool, err error) {
	ea, err := nfnl.ParseAttrs(b)
	if err != nil {
		return "", nil, false, err
	}
	na, _ := nfnl.Find(ea, nfnl.ExprName)
	da, ok := nfnl.Find(ea, nfnl.ExprData)
	return nfnl.Str(na.Data), da.Data, ok, nil
}
