package slots

import (
	"errors"
	"strings"
	"testing"

	"github.com/fwslot/fwslot/internal/nfnl"
)

// The refusals of slots say what failed and match their sentinel; what
// to do about it is the command line's to say (cmd/fwslot/advice.go).
func TestRefusalsSayOnlyWhatFailed(t *testing.T) {
	xtables := &TableState{Family: nfnl.FamilyIPv4, Name: "filter", Base: map[string]*BaseChain{"INPUT": {Name: "INPUT"}}}
	twoOwners := &State{Tables: []*TableState{
		{Family: nfnl.FamilyInet, Name: "filter", Managed: true, Owner: "a", OwnerDB: "/a.db"},
		{Family: nfnl.FamilyInet, Name: "other", Managed: true, Owner: "b", OwnerDB: "/b.db"},
	}}
	reserved := &Table{Family: nfnl.FamilyInet, Name: "filter", Chains: []*Chain{{Name: "fwslot_mine"}}}
	_, _, ownerErr := twoOwners.Owner()
	_, dialErr := (&Target{NetNS: "fwslot-no-such-namespace"}).Dial()
	cases := []struct {
		name string
		err  error
		is   error
		text string
	}{
		{"iptables-nft table", refuseXtables([]*TableState{xtables}, nil), ErrXtables, "table ip filter is iptables-nft's"},
		{"tables of two histories", ownerErr, ErrTwoOwners, "a (/a.db) and b (/b.db, table inet other)"},
		{"reserved name", checkReserved(reserved), ErrReserved, `chain name "fwslot_mine" starts with "fwslot": the name is reserved for fwslot's slots`},
		{"no such namespace", dialErr, ErrNoNamespace, `"fwslot-no-such-namespace"`},
		{"table flushed by hand", &FlushedError{Table: "inet filter"}, ErrVanished, "table inet filter holds fwslot's chains without their rules"},
		{"too many rules", &LimitError{"rules", 2, 1}, nil, "holds 2 rules, more than the 1"},
		{"takeover after the first load", &LateTakeoverError{Table: "ip nat", Managed: []string{"inet filter"}}, nil, "table ip nat exists and fwslot does not manage it, while fwslot already manages inet filter"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.err == nil || (c.is != nil && !errors.Is(c.err, c.is)) || !strings.Contains(c.err.Error(), c.text) {
				t.Fatalf("got %v, want %v containing %q", c.err, c.is, c.text)
			}
			for _, a := range []string{"`", "--", "nft delete", "rename it", "remove ", "split it", "see ", "run "} {
				if strings.Contains(c.err.Error(), a) {
					t.Errorf("%q gives advice (%q)", c.err, a)
				}
			}
		})
	}
}
