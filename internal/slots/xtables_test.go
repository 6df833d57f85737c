package slots

import (
	"errors"
	"testing"

	"github.com/fwslot/fwslot/internal/nfnl"
)

func TestRefuseXtables(t *testing.T) {
	base := func(names ...string) map[string]*BaseChain {
		m := map[string]*BaseChain{}
		for _, n := range names {
			m[n] = &BaseChain{Name: n}
		}
		return m
	}
	xtRule := []byte("\x0c\x00\x01\x00match\x00\x00\x00") // an expression named "match"
	cases := []struct {
		name  string
		table *TableState
		rs    *Ruleset
		want  bool
	}{
		{"iptables filter", &TableState{Family: nfnl.FamilyIPv4, Name: "filter", Base: base("INPUT", "OUTPUT")}, nil, true},
		{"ip6tables nat", &TableState{Family: nfnl.FamilyIPv6, Name: "nat", Base: base("POSTROUTING")}, nil, true},
		{"ebtables broute", &TableState{Family: nfnl.FamilyBridge, Name: "broute", Base: base("BROUTING")}, nil, true},
		{"nft filter, lower-case chains", &TableState{Family: nfnl.FamilyIPv4, Name: "filter", Base: base("input")}, nil, false},
		{"inet filter with INPUT", &TableState{Family: nfnl.FamilyInet, Name: "filter", Base: base("INPUT")}, nil, false},
		{"xtables match in a rule", &TableState{Family: nfnl.FamilyIPv4, Name: "docker", Base: base("in")},
			&Ruleset{Tables: []*Table{{Family: nfnl.FamilyIPv4, Name: "docker", Chains: []*Chain{{Name: "in", Rules: [][]byte{xtRule}}}}}}, true},
	}
	for _, c := range cases {
		err := refuseXtables([]*TableState{c.table}, c.rs)
		if got := errors.Is(err, ErrXtables); got != c.want {
			t.Errorf("%s: refused=%v (%v), want %v", c.name, got, err, c.want)
		}
	}
}
