package rulediff

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fwslot/fwslot/internal/testnet"
)

func TestLines(t *testing.T) {
	split := func(s string) []string {
		if s == "" {
			return nil
		}
		return strings.Split(s, " ")
	}
	cases := []struct {
		a, b       string
		add, rm    int
		wantScript string
	}{
		{"", "", 0, 0, ""},
		{"a b c", "a b c", 0, 0, " a b c"},
		{"a b c", "a x c", 1, 1, " a-b+x c"},
		{"", "a b", 2, 0, "+a+b"},
		{"a b", "", 0, 2, "-a-b"},
		{"a b c d", "b c d e", 1, 1, "-a b c d+e"},
		{"x a y b z", "a b", 0, 3, "-x a-y b-z"},
	}
	for _, c := range cases {
		ops := lineDiff(split(c.a), split(c.b))
		var script strings.Builder
		for _, o := range ops {
			script.WriteByte(o.Kind)
			script.WriteString(o.Text)
		}
		got := strings.ReplaceAll(script.String(), " ", " ")
		add, rm := countOps(ops)
		if add != c.add || rm != c.rm || got != c.wantScript {
			t.Errorf("Lines(%q, %q) = %q (+%d -%d), want %q (+%d -%d)", c.a, c.b, got, add, rm, c.wantScript, c.add, c.rm)
		}
	}
}

// A listing as nft prints fwslot's layout; stripSlots gives the user's view.
const slotListing = `table inet filter {
	set fwslot_a_allowed {
		type ipv4_addr
		flags interval
		elements = { 10.0.0.0/8, 192.0.2.0/24,
			     198.51.100.0/24 }
	}
	chain input {
		type filter hook input priority filter; policy accept;
		jump fwslot_a_input comment "fwslot jump slot=a version=0"
		drop comment "fwslot policy slot=a version=0"
	}
	chain fwslot_a_input {
		ip saddr @fwslot_a_allowed jump fwslot_a_admin
	}
	chain fwslot_a_admin {
		accept
	}
	chain fwslot_a {
		comment "fwslot slot=a version=0 hash="
	}
	chain fwslot {
		continue comment "fwslot active=a"
	}
}
table ip other {
	chain c {
		comment "not fwslot's {"
	}
}
`

func TestParseAndStrip(t *testing.T) {
	rs, err := Parse(slotListing)
	if err != nil {
		t.Fatal(err)
	}
	stripSlots(rs)
	rs.sortAll()
	want := `table inet filter {
	set allowed {
		type ipv4_addr
		flags interval
		element 10.0.0.0/8
		element 192.0.2.0/24
		element 198.51.100.0/24
	}
	chain admin {
		accept
	}
	chain input {
		type filter hook input priority filter; policy drop;
		ip saddr @allowed jump admin
	}
}
table ip other {
	chain c {
		comment "not fwslot's {"
	}
}
`
	if got := rs.String(); got != want {
		t.Fatalf("stripped listing:\n%s\nwant:\n%s", got, want)
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{"chain x {\n}\n", "table inet f {\n\tchain c {\n", "table inet f {\n\tset s {\n\t\telements = { 1,\n"} {
		if _, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) succeeded", in)
		}
	}
}

func TestCompare(t *testing.T) {
	parse := func(s string) *Ruleset {
		rs, err := Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	a := parse("table inet f {\n\tchain input {\n\t\ttcp dport 22 accept\n\t\ttcp dport 80 accept\n\t}\n\tchain old {\n\t\taccept\n\t}\n}\n")
	b := parse("table inet f {\n\tchain new {\n\t\tdrop\n\t}\n\tchain input {\n\t\ttcp dport 2222 accept\n\t\ttcp dport 80 accept\n\t}\n}\ntable ip g {\n}\n")
	changes := Compare(a, b)
	var got []string
	for _, c := range changes {
		got = append(got, c.Table+"/"+c.Kind+" "+c.Name+"/"+c.Status)
	}
	want := []string{"inet f/chain input/changed", "inet f/chain new/added", "inet f/chain old/removed", "ip g/ /added"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("changes %v, want %v", got, want)
	}
	var plain, color bytes.Buffer
	WriteText(&plain, changes, Style{Context: 1})
	WriteText(&color, changes, Style{Color: true})
	for _, w := range []string{"table inet f\n", "  chain input\n", "    - tcp dport 22 accept\n", "    + tcp dport 2222 accept\n", "  chain new (added)\n"} {
		if !strings.Contains(plain.String(), w) {
			t.Errorf("text diff lacks %q:\n%s", w, plain.String())
		}
	}
	if strings.Contains(plain.String(), "\x1b[") || !strings.Contains(color.String(), ansiRed+"    - tcp dport 22 accept"+ansiReset) {
		t.Errorf("colour only when asked:\n%q\n%q", plain.String(), color.String())
	}
}

// The same rules written differently (an include, other whitespace, a
// define) render alike; a real change shows as one changed chain.
func TestRenderIgnoresLayout(t *testing.T) {
	testnet.RequireRoot(t)
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	one := write("one.nft", `table inet filter {
	set allowed { type ipv4_addr; flags interval; elements = { 192.0.2.0/24, 10.0.0.0/8 } }
	chain admin { ip saddr 198.51.100.7 accept; }
	chain input { type filter hook input priority 0; policy drop; ip saddr @allowed tcp dport 22 jump admin; }
}
`)
	write("admin.nft", "chain admin {\n    ip saddr $ADMIN    accept\n}\n")
	two := write("two.nft", `define ADMIN = 198.51.100.7
table inet filter {
	chain input {
		type filter hook input priority 0
		policy drop
		ip saddr @allowed tcp dport 22 jump admin
	}
	include "./admin.nft"
	set allowed {
		type ipv4_addr
		flags interval
		elements = { 10.0.0.0/8,
		             192.0.2.0/24 }
	}
}
`)
	three := write("three.nft", strings.Replace(string(must(os.ReadFile(one))), "198.51.100.7", "198.51.100.8", 1))
	ctx := context.Background()
	r1, err := renderFile(ctx, one, nil)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := renderFile(ctx, two, nil)
	if err != nil {
		t.Fatal(err)
	}
	r3, err := renderFile(ctx, three, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c := Compare(r1, r2); len(c) != 0 {
		var b bytes.Buffer
		WriteText(&b, c, Style{})
		t.Fatalf("layout-only differences show:\n%s", b.String())
	}
	c := Compare(r1, r3)
	if len(c) != 1 || c[0].Name != "admin" || c[0].Added() != 1 || c[0].Removed() != 1 {
		t.Fatalf("one changed rule: %+v", c)
	}
	if strings.Contains(r1.String(), "fwslot") {
		t.Fatalf("rendering shows fwslot's layout:\n%s", r1)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
