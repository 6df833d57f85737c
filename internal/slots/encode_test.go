package slots

import (
	"bytes"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/fwslot/fwslot/internal/nfnl"
)

// TestEncodeDeterministic: the same content in another kernel dump order
// encodes to the same bytes (hash sets' elements in byte order), and
// decodes to the same objects; an interval set keeps its order; the
// ruleset encoded is left as it was (a load stages it meanwhile).
func TestEncodeDeterministic(t *testing.T) {
	elems := func(seed uint64) [][]byte {
		var out [][]byte
		for i := range 1000 {
			out = append(out, []byte{12, 0, 1, 0x80, 8, 0, 1, 0, 10, 0, byte(i >> 8), byte(i)})
		}
		rng := rand.New(rand.NewPCG(seed, seed))
		rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
		return out
	}
	mk := func(seed uint64) *Ruleset {
		return &Ruleset{Tables: []*Table{{Family: 2, Name: "filter", Sets: []*Set{
			{Name: "hash", Elems: elems(seed)},
			{Name: "ranges", Flags: nfnl.SetFlagInterval, Elems: elems(7)},
		}}}}
	}
	one := mk(1)
	a, err := one.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(one, mk(1)) {
		t.Fatal("Encode changed the ruleset it encoded")
	}
	b, err := mk(2).Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("the same elements in another order encode differently")
	}
	rs, err := Decode(a)
	if err != nil {
		t.Fatal(err)
	}
	got := rs.Tables[0].Sets
	if !slices.IsSortedFunc(got[0].Elems, bytes.Compare) || len(got[0].Elems) != 1000 {
		t.Errorf("hash set elements not in byte order after encoding")
	}
	if !reflect.DeepEqual(got[1].Elems, elems(7)) {
		t.Errorf("interval set elements reordered")
	}
}
