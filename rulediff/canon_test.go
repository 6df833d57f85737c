package rulediff

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

const canonOne = `table inet filter {
	set allowed { type ipv4_addr; flags interval; elements = { 192.0.2.0/24, 10.0.0.0/8 } }
	chain admin { ip saddr 198.51.100.7 accept; }
	chain input { type filter hook input priority 0; policy drop; ip saddr @allowed tcp dport 22 jump admin; }
}
`

// canonTwo is canonOne written another way: a define, the chain's spec
// over two lines, objects in another order, a table split in two blocks
// (as an include inside a table flattens), elements over lines, comments.
const canonTwo = `define ADMIN = 198.51.100.7
# the input chain
table inet filter {
	chain input {
		type filter hook input priority 0
		policy drop
		ip saddr @allowed tcp dport 22 jump admin   # ssh
	}
}
table inet filter {
chain admin {
    ip saddr $ADMIN    accept
}
	set allowed {
		type ipv4_addr
		flags interval
		elements = { 10.0.0.0/8,
		             192.0.2.0/24 }
	}
}
`

// canonCommands is canonOne as commands.
const canonCommands = `flush ruleset
add table inet filter
add set inet filter allowed { type ipv4_addr; flags interval; }
add element inet filter allowed { 10.0.0.0/8 }
add element inet filter allowed { 192.0.2.0/24 }
add chain inet filter admin
add chain inet filter input { type filter hook input priority 0; policy drop; }
add rule inet filter input ip saddr @allowed tcp dport 22 jump admin
insert rule inet filter admin ip saddr 198.51.100.7 accept
`

// TestFromSource: sources that differ only in layout have one canonical
// form; a changed rule, element or set of elements differs in it exactly
// where it changed; what it cannot read without nft is refused.
func TestFromSource(t *testing.T) {
	one, err := FromSource(canonOne)
	if err != nil {
		t.Fatal(err)
	}
	want := `table inet filter {
	set allowed {
		type ipv4_addr
		flags interval
		element 10.0.0.0/8
		element 192.0.2.0/24
	}
	chain admin {
		ip saddr 198.51.100.7 accept
	}
	chain input {
		type filter hook input priority 0
		policy drop
		ip saddr @allowed tcp dport 22 jump admin
	}
}
`
	if got := canonicalText(one); got != want {
		t.Fatalf("canonical form:\n%s\nwant:\n%s", got, want)
	}
	tests := []struct {
		name    string
		src     string
		changes []string // "kind name +added -removed"
	}{
		{"layout only", canonTwo, nil},
		{"commands", canonCommands, nil},
		{"changed rule", strings.Replace(canonOne, "198.51.100.7", "198.51.100.8", 1), []string{"chain admin +1 -1"}},
		{"added element", strings.Replace(canonOne, "10.0.0.0/8 }", "10.0.0.0/8, 172.16.0.0/12 }", 1), []string{"set allowed +1 -0"}},
		{"new chain", strings.Replace(canonOne, "chain admin", "chain extra { drop; }\n\tchain admin", 1), []string{"chain extra +1 -0"}},
	}
	for _, tt := range tests {
		rs, err := FromSource(tt.src)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		var got []string
		for _, c := range Compare(one, rs) {
			got = append(got, fmt.Sprintf("%s %s +%d -%d", c.Kind, c.Name, c.Added(), c.Removed()))
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.changes) {
			t.Errorf("%s: changes %v, want %v", tt.name, got, tt.changes)
		}
		back, err := ParseCanonical(canonicalText(rs))
		if err != nil || canonicalText(back) != canonicalText(rs) {
			t.Errorf("%s: canonical text does not read back: %v", tt.name, err)
		}
	}
	for _, src := range []string{
		"delete table inet filter\n",
		"table inet filter {\n\tchain c {\n",
		"replace rule inet filter input handle 4 drop\n",
		"table inet filter { chain c { tcp dport $NOPE accept } }\n",
		"add rule inet filter input position 3 drop\n",
	} {
		if _, err := FromSource(src); !errors.Is(err, errNoCanonical) {
			t.Errorf("FromSource(%q) = %v, want errNoCanonical", src, err)
		}
	}
}

// TestCompareBigSet: two sets of a million elements with 1% changed
// compare as sorted lists: the diff holds exactly the changed elements.
func TestCompareBigSet(t *testing.T) {
	const n = 1_000_000
	mk := func(changed bool) *Ruleset {
		o := &object{Kind: "set", Name: "big", Lines: []string{"type ipv4_addr"}}
		for i := range n {
			a := 10<<24 + i
			if changed && i%100 == 7 {
				a = 172<<24 + i
			}
			o.Lines = append(o.Lines, fmt.Sprintf("element %d.%d.%d.%d", a>>24, a>>16&255, a>>8&255, a&255))
		}
		return &Ruleset{tables: []*table{{Family: "ip", Name: "filter", Objects: []*object{o}}}}
	}
	c := Compare(mk(false), mk(true))
	if len(c) != 1 || c[0].Added() != n/100 || c[0].Removed() != n/100 {
		t.Fatalf("changes: %d objects, +%d -%d", len(c), c[0].Added(), c[0].Removed())
	}
}
