package slots

import (
	"errors"
	"testing"
)

func TestCheckLimits(t *testing.T) {
	rs := &Ruleset{Tables: []*Table{
		{Name: "a", Chains: []*Chain{{Name: "c", Rules: make([][]byte, 3)}, {Name: "d", Rules: make([][]byte, 2)}},
			Sets: []*Set{{Name: "s", Elems: make([][]byte, 7)}}, Objs: []*Obj{{Name: "o"}}},
		{Name: "b", Chains: []*Chain{{Name: "e", Rules: make([][]byte, 1)}}, Flowtables: []*Flowtable{{Name: "f"}}},
	}}
	roomy := Limits{Tables: 2, Chains: 3, Sets: 1, Objects: 2, Rules: 6, Elements: 7}
	tests := []struct {
		name string
		edit func(*Limits)
		want *LimitError
	}{
		{"at every limit", func(*Limits) {}, nil},
		{"tables", func(l *Limits) { l.Tables = 1 }, &LimitError{"tables", 2, 1}},
		{"chains", func(l *Limits) { l.Chains = 2 }, &LimitError{"chains", 3, 2}},
		{"sets", func(l *Limits) { l.Sets = 0 }, &LimitError{"sets", 1, 0}},
		{"objects and flowtables", func(l *Limits) { l.Objects = 1 }, &LimitError{"objects", 2, 1}},
		{"rules", func(l *Limits) { l.Rules = 5 }, &LimitError{"rules", 6, 5}},
		{"set elements", func(l *Limits) { l.Elements = 6 }, &LimitError{"set elements", 7, 6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := roomy
			tt.edit(&l)
			err := CheckLimits(rs, l)
			var le *LimitError
			switch {
			case tt.want == nil && err != nil:
				t.Fatalf("error %v", err)
			case tt.want != nil && (!errors.As(err, &le) || *le != *tt.want):
				t.Fatalf("error %v, want %v", err, tt.want)
			}
		})
	}
	if err := CheckLimits(rs, DefaultLimits()); err != nil {
		t.Errorf("default limits: %v", err)
	}
	want := "the ruleset holds 1000001 rules, more than the 1000000 fwslot accepts"
	if got := (&LimitError{"rules", 1_000_001, 1_000_000}).Error(); got != want {
		t.Errorf("message %q, want %q", got, want)
	}
}
