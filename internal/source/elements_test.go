package source

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// TestElementLists checks which element lists the fast path may take and
// that blanking them keeps every other byte, offset and line.
func TestElementLists(t *testing.T) {
	cases := []struct {
		name string
		text string
		want []string // "family table set: n elements"
	}{
		{"one set", "table inet t {\n set s { type ipv4_addr; elements = { 1.2.3.4, 5.6.7.8,\n 9.9.9.9 } }\n}\n", []string{"inet t s: 3"}},
		{"default family, map", "flush ruleset\ntable t {\n map m {\n  type inet_service : verdict\n  elements = { 22 : accept, 80 : drop }\n }\n chain c { }\n}\n", []string{"ip t m: 2"}},
		{"flush later", "table inet t {\n set s { type ipv4_addr; elements = { 1.2.3.4 } }\n}\nflush set inet t s\n", nil},
		{"declared twice", "table inet t {\n set s { type ipv4_addr; elements = { 1.2.3.4 } }\n}\ntable inet t {\n set s { type ipv4_addr; elements = { 5.6.7.8 } }\n}\n", nil},
		{"nested brace", "table inet t {\n set s { type ipv4_addr; elements = { 1.2.3.4 } ; }\n set u { type ipv4_addr; elements = { $x } }\n}\n", []string{"inet t s: 1"}},
		{"set in a chain is a rule", "table inet t {\n chain c { ip saddr { 1.2.3.4 } accept }\n}\n", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := FromText("/r.nft", tc.text)
			if err != nil {
				t.Fatal(err)
			}
			ls := b.ElementLists(0)
			var got []string
			for _, l := range ls {
				got = append(got, l.Family+" "+l.Table+" "+l.Set+": "+strconv.Itoa(l.Len()))
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			s := b.WithoutElements(ls)
			c := string(s.Files[0].Content)
			if strings.Count(c, "\n") != strings.Count(tc.text, "\n") {
				t.Fatalf("removing the lists changed the lines:\n%s", c)
			}
			for _, l := range ls {
				if strings.Contains(c, l.Elem(0)[0]) {
					t.Fatalf("element list of %s left in:\n%s", l.Set, c)
				}
			}
			if string(b.Files[0].Content) != tc.text {
				t.Fatal("the original bundle changed")
			}
		})
	}
}
