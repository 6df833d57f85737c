package nfnl

import (
	"bytes"
	"testing"
)

// FuzzParseAttrs: any buffer parses into attributes or an error, never a
// panic; parsed attributes lie inside the buffer, and encoding them again
// gives a buffer that parses to the same attributes.
func FuzzParseAttrs(f *testing.F) {
	var e Encoder
	e.String(1, "filter")
	e.Uint32(2, 7)
	e.Uint64(3, 1<<40)
	e.Nested(4, func(n *Encoder) {
		n.Raw(1, []byte{1, 2, 3})
		n.Nested(2, func(m *Encoder) { m.String(1, "input") })
	})
	f.Add(e.Bytes())
	f.Add([]byte{})
	f.Add([]byte{4, 0, 1, 0})
	f.Add([]byte{5, 0, 1, 0, 9})
	f.Add([]byte{3, 0, 1, 0})
	f.Add([]byte{255, 255, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		attrs, err := ParseAttrs(b)
		if err != nil {
			return
		}
		var re Encoder
		for _, a := range attrs {
			if len(a.Data) > len(b) {
				t.Fatalf("attribute %d of %d bytes in a %d-byte buffer", a.Type, len(a.Data), len(b))
			}
			re.Attr(a)
			if a.Type&FlagNested != 0 {
				_, _ = ParseAttrs(a.Data) // nested payloads are parsed the same way
			}
		}
		again, err := ParseAttrs(re.Bytes())
		if err != nil {
			t.Fatalf("re-encoded attributes do not parse: %v", err)
		}
		if len(again) != len(attrs) {
			t.Fatalf("%d attributes, %d after encoding again", len(attrs), len(again))
		}
		for i := range attrs {
			if again[i].Type != attrs[i].Type || !bytes.Equal(again[i].Data, attrs[i].Data) {
				t.Fatalf("attribute %d: %+v, %+v after encoding again", i, attrs[i], again[i])
			}
		}
	})
}
