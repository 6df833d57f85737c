package slots

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/fwslot/fwslot/internal/source"
	"github.com/fwslot/fwslot/internal/testnet"
)

// fastCases are sets of every key and data type the fast path encodes,
// intervals included (prefixes, ranges, single values, adjacent and
// overlapping intervals with auto-merge, intervals at zero and at the
// maximum), each in a table with a rule that uses it.
var fastCases = []struct {
	name, decl string
}{
	{"ipv4", `set s { type ipv4_addr; elements = { 10.0.0.1, 10.0.0.2, 192.168.1.1 } }`},

	{"ipv4 intervals", `set s { type ipv4_addr; flags interval; elements = { 10.0.0.0/24, 10.1.0.1-10.1.0.9, 10.2.0.5, 10.3.0.0 - 10.3.0.255, 10.3.1.0/24, 10.9.9.9/16 } }`},
	{"ipv4 auto-merge", `set s { type ipv4_addr; flags interval; auto-merge; elements = { 10.0.0.0/24, 10.0.1.0/24, 10.0.0.5, 10.0.0.100-10.0.2.7, 172.16.0.0/12 } }`},
	{"ipv4 zero and max", `set s { type ipv4_addr; flags interval; elements = { 0.0.0.0/8, 255.255.255.0/24 } }`},
	{"ipv4 whole space", `set s { type ipv4_addr; flags interval; elements = { 0.0.0.0/0 } }`},
	{"ipv6", `set s { type ipv6_addr; elements = { ::1, 2001:db8::1, fe80::1:2:3:4 } }`},
	{"ipv6 intervals", `set s { type ipv6_addr; flags interval; elements = { 2001:db8::/32, 2001:db9::1-2001:db9::ff, ffff::/16 } }`},
	{"ports", `set s { type inet_service; elements = { 22, 80, 443, 0x1f90 } }`},
	{"port intervals", `set s { type inet_service; flags interval; elements = { 1000-2000, 22, 0-10, 65535 } }`},
	{"protocols", `set s { type inet_proto; elements = { tcp, udp, 47, icmp } }`},
	{"marks", `set s { type mark; elements = { 0x1, 42, 0xffffffff } }`},
	{"ether", `set s { type ether_addr; elements = { 00:11:22:33:44:55, aa:bb:cc:dd:ee:ff } }`},
	{"ifnames", `set s { type ifname; elements = { "eth0", lo, "veth-a.1" } }`},
	{"concat", `set s { type ipv4_addr . inet_service; elements = { 10.0.0.1 . 22, 10.0.0.2 . 80 } }`},
	{"concat three", `set s { type ipv4_addr . inet_proto . inet_service; elements = { 10.0.0.1 . tcp . 22, 10.0.0.1 . udp . 53 } }`},
	{"concat ipv6 ifname", `set s { type ipv6_addr . ifname; elements = { ::1 . "lo", 2001:db8::1 . "eth0" } }`},
	{"concat intervals", `set s { type ipv4_addr . inet_service; flags interval; elements = { 10.0.0.0/24 . 22-25, 10.1.0.1 . 80, 10.2.0.0-10.2.0.9 . 1024-65535 } }`},
	{"verdict map", `map s { type inet_service : verdict; elements = { 22 : accept, 80 : drop, 443 : jump other, 8080 : goto other, 53 : continue, 54 : return } }`},
	{"verdict map intervals", `map s { type ipv4_addr : verdict; flags interval; elements = { 10.0.0.0/8 : accept, 192.168.0.0-192.168.0.255 : jump other } }`},
	{"data map", `map s { type ipv4_addr : mark; elements = { 10.0.0.1 : 0x5, 10.0.0.2 : 7 } }`},
	{"address map", `map s { type ipv4_addr : ipv4_addr; elements = { 10.0.0.1 : 192.168.0.1 } }`},
	{"port map", `map s { type inet_service : inet_service; elements = { 80 : 8080, 443 : 8443 } }`},
	{"concat verdict map", `map s { type ipv4_addr . inet_service : verdict; elements = { 10.0.0.1 . 22 : accept, 10.0.0.2 . 22 : drop } }`},
	{"repeated elements", `set s { type ipv4_addr; elements = { 10.0.0.1, 10.0.0.2, 10.0.0.1 } }`},
	{"repeated map element", `map s { type ipv4_addr : mark; elements = { 10.0.0.1 : 1, 10.0.0.1 : 1 } }`},
	{"interval data map", `map s { type ipv4_addr : mark; flags interval; elements = { 10.0.0.0/24 : 1, 10.0.1.0/24 : 2 } }`},
}

func fastRuleset(decl string) string {
	return "table inet t {\n\t" + decl + "\n\tchain other { counter; }\n\tchain in { type filter hook input priority 0; policy accept; }\n}\n"
}

// TestFastElementsEqualNft proves, for every case, that the fast path is
// taken and that the set it stages is what `nft -f` builds: the encoded
// elements equal those the kernel dumps after nft -f (as multisets, and
// in order for interval sets), the declaration nft compiled without the
// elements equals the one it compiled with them, and the slot staged from
// the fast form, read back from the kernel, equals nft -f's.
func TestFastElementsEqualNft(t *testing.T) {
	testnet.RequireRoot(t)
	for _, tc := range fastCases {
		t.Run(tc.name, func(t *testing.T) {
			ns, ifs := targetIfaces(t)
			b := loadBundle(t, writeFile(t, fastRuleset(tc.decl)))
			fast := planFast(b, 0)
			if len(fast) != 1 {
				t.Fatalf("fast path not planned for %s", tc.decl)
			}
			whole, err := compileWhole(context.Background(), b, ifs, nil)
			if err != nil {
				t.Fatal(err)
			}
			rs, err := compileWhole(context.Background(), b.WithoutElements([]source.ElementList{fast[0].list}), ifs, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !attachFast(rs, fast) {
				t.Fatalf("compiled declaration does not match the encoding: %s", tc.decl)
			}
			ws, fs := setNamed(t, whole, "s"), setNamed(t, rs, "s")
			if !bytes.Equal(ws.Attrs, fs.Attrs) || ws.Flags != fs.Flags || ws.Shared != fs.Shared {
				t.Fatalf("declaration differs: nft %x flags %x shared %v, fast %x flags %x shared %v", ws.Attrs, ws.Flags, ws.Shared, fs.Attrs, fs.Flags, fs.Shared)
			}
			if len(ws.Elems) == 0 {
				t.Fatal("nft built no elements: the case tests nothing")
			}
			if got, want := hexSorted(fs.Elems), hexSorted(ws.Elems); !reflect.DeepEqual(got, want) {
				t.Fatalf("elements differ:\nnft  %v\nfast %v", want, got)
			}
			want, err := Canonical(whole, CanonOptions{})
			if err != nil {
				t.Fatal(err)
			}
			fidelityCycle(t, ns, rs, want)
		})
	}
}

// TestFastElementsFallBack proves that lists the fast path cannot encode
// exactly are compiled by nft: the result (or nft's error) is the same as
// without the fast path.
func TestFastElementsFallBack(t *testing.T) {
	testnet.RequireRoot(t)
	cases := []struct {
		name, body string
		planned    bool // the list is encoded, then refused after compile
	}{
		{"overlap without auto-merge", fastRuleset(`set s { type ipv4_addr; flags interval; elements = { 10.0.0.0/24, 10.0.0.5 } }`), false},
		{"range without interval flag", fastRuleset(`set s { type ipv4_addr; elements = { 10.0.0.0/24 } }`), false},
		{"element comment", fastRuleset(`set s { type ipv4_addr; elements = { 10.0.0.1 comment "x", 10.0.0.2 } }`), false},
		{"counter set", fastRuleset(`set s { type ipv4_addr; counter; elements = { 10.0.0.1, 10.0.0.2 } }`), false},
		{"timeout set", fastRuleset(`set s { type ipv4_addr; flags timeout; elements = { 10.0.0.1 } }`), false},
		{"service names", fastRuleset(`set s { type inet_service; elements = { ssh, http } }`), false},
		{"variable", "define a = 10.0.0.1\n" + fastRuleset(`set s { type ipv4_addr; elements = { $a, 10.0.0.2 } }`), false},
		{"map key twice", fastRuleset(`map s { type ipv4_addr : mark; elements = { 10.0.0.1 : 1, 10.0.0.1 : 2 } }`), false},
		{"jump to a missing chain", fastRuleset(`map s { type inet_service : verdict; elements = { 22 : jump nowhere } }`), true},
		{"constant", fastRuleset(`set s { type ipv4_addr; flags constant; elements = { 10.0.0.1, 10.0.0.2 } }`), false},
		{"mark interval", fastRuleset(`set s { type mark; flags interval; elements = { 1-5 } }`), false},
		{"typeof", fastRuleset(`set s { typeof ip saddr; elements = { 10.0.0.1 } }`), false},
		{"added later", fastRuleset(`set s { type ipv4_addr; elements = { 10.0.0.1 } }`) + "add element inet t s { 10.0.0.9 }\n", true},
		{"flushed later", fastRuleset(`set s { type ipv4_addr; elements = { 10.0.0.1 } }`) + "flush set inet t s\n", false},
		{"bad address", fastRuleset(`set s { type ipv4_addr; elements = { 10.0.0.256 } }`), false},
		{"wrong declared type", strings.Replace(fastRuleset(`set s { type ipv4_addr; elements = { 10.0.0.1 } }`), "inet t", "inet t", 1) +
			"table inet t { set s { type ipv6_addr; } }\n", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, ifs := targetIfaces(t)
			b := loadBundle(t, writeFile(t, tc.body))
			if planned := len(planFast(b, 0)) > 0; planned != tc.planned {
				t.Fatalf("planned %v, want %v", planned, tc.planned)
			}
			want, _, werr := compileBundle(context.Background(), b, ifs, nil, -1)
			got, n, gerr := compileBundle(context.Background(), b, ifs, nil, 0)
			if n != 0 {
				t.Fatalf("%d lists went the fast way", n)
			}
			var we, ge *CompileError
			if errors.As(werr, &we) != errors.As(gerr, &ge) || (werr == nil) != (gerr == nil) {
				t.Fatalf("errors differ: without fast path %v, with %v", werr, gerr)
			}
			if werr != nil {
				if we.Output != ge.Output {
					t.Fatalf("nft's message differs:\n%s\n%s", we.Output, ge.Output)
				}
				return
			}
			sameCanonical(t, want, got)
		})
	}
}

// sameCanonical fails the test unless got compiles to the same
// canonical ruleset as want.
func sameCanonical(t *testing.T, want, got *Ruleset) {
	t.Helper()
	wc, err := Canonical(want, CanonOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gc, err := Canonical(got, CanonOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d := wc.Diff(gc); len(d) > 0 || !reflect.DeepEqual(wc, gc) {
		t.Fatalf("result differs: %v", d)
	}
}

func setNamed(t *testing.T, rs *Ruleset, name string) *Set {
	t.Helper()
	for _, tb := range rs.Tables {
		for _, s := range tb.Sets {
			if s.Name == name {
				return s
			}
		}
	}
	t.Fatalf("no set %s", name)
	return nil
}

func hexSorted(elems [][]byte) []string {
	out := make([]string, len(elems))
	for i, e := range elems {
		out[i] = fmt.Sprintf("%x", e)
	}
	slices.Sort(out)
	return out
}

// TestFastElementsIncludes compiles a ruleset whose element lists sit in
// the main file before an include and in the included file: the include
// still finds its file once the lists are cut out, and the result equals
// the compile without the fast path.
func TestFastElementsIncludes(t *testing.T) {
	testnet.RequireRoot(t)
	dir := t.TempDir()
	main := filepath.Join(dir, "main.nft")
	mustWrite(t, main, "table inet t {\n\tset a { type ipv4_addr; elements = { 10.0.0.1,\n\t\t10.0.0.2 } }\n}\ninclude \"more.nft\"\n")
	mustWrite(t, filepath.Join(dir, "more.nft"), "table inet t {\n\tset b { type inet_service; flags interval; elements = { 22, 1000-2000 } }\n\tchain in { type filter hook input priority 0; ip saddr @a tcp dport @b accept; }\n}\n")
	b := loadBundle(t, main)
	if n := len(planFast(b, 0)); n != 2 {
		t.Fatalf("fast path planned for %d lists, want 2", n)
	}
	want, _, err := compileBundle(context.Background(), b, nil, nil, -1)
	if err != nil {
		t.Fatal(err)
	}
	got, n, err := compileBundle(context.Background(), b, nil, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("%d lists went the fast way, want 2", n)
	}
	sameCanonical(t, want, got)
	if len(setNamed(t, got, "a").Elems) != 2 || len(setNamed(t, got, "b").Elems) != 5 {
		t.Fatal("elements missing")
	}
}
