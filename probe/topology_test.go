package probe

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/fwslot/fwslot/internal/slots"
)

func TestInferTopology(t *testing.T) {
	src := `accept tcp 198.51.100.7:40000 -> 192.0.2.10:22 in eth0
accept tcp 10.0.0.7 -> 203.0.113.9:443 in lan0 out wan0 snat 192.0.2.10
accept tcp 203.0.113.9 -> 192.0.2.10:8080 in wan0 out lan0 dnat 10.0.0.5:80
accept udp 192.0.2.10 -> 198.51.100.53:53 out eth0
accept tcp [2001:db8::7] -> [2001:db8::1]:22 in eth0
`
	probes, err := Parse("x", strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	got := InferTopology(probes)
	want := map[string]struct{ addrs, routes string }{
		"eth0": {"2001:db8::1/128", "198.51.100.53/32 198.51.100.7/32 2001:db8::7/128"},
		"lan0": {"198.18.1.1/32", "10.0.0.5/32 10.0.0.7/32"},
		"wan0": {"192.0.2.10/32", "203.0.113.9/32"},
	}
	if len(got.Interfaces) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for _, i := range got.Interfaces {
		w := want[i.Name]
		if j := join(i.Addrs); j != w.addrs {
			t.Errorf("%s addrs %q, want %q", i.Name, j, w.addrs)
		}
		if j := join(i.Routes); j != w.routes {
			t.Errorf("%s routes %q, want %q", i.Name, j, w.routes)
		}
	}
	// 192.0.2.10 is the snat address of wan0: the strongest tie wins,
	// whatever the order of the probes (masquerade takes wan0's address).
	// lan0, left by a forwarded probe, gets a placeholder address.
}

func join[T interface{ String() string }](l []T) string {
	var s []string
	for _, x := range l {
		s = append(s, x.String())
	}
	return strings.Join(s, " ")
}

func TestParseTopology(t *testing.T) {
	tests := []struct {
		name, src, want, wantErr string
	}{
		{"full", "iface eth0 index 7\naddr eth0 192.0.2.10/24 # c\nroute eth0 0.0.0.0/0\nroute wan0 2001:db8::/32\naddr wan0 2001:db8::1\n",
			"eth0#7[192.0.2.10/24][0.0.0.0/0] wan0#0[2001:db8::1/128][2001:db8::/32]", ""},
		{"bad keyword", "link eth0", "", "t:1: expected iface, addr or route, got \"link\""},
		{"bad prefix", "\naddr eth0 300.1.1.1/8", "", "t:2: expected one address prefix like 192.0.2.10/24, got \"300.1.1.1/8\""},
		{"missing name", "iface", "", "t:1: expected interface name after iface, got end of line"},
		{"bad index", "iface eth0 index -1", "", "t:1: expected positive interface index, got \"-1\""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			topo, err := ParseTopology("t", strings.NewReader(tc.src))
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("got %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var parts []string
			for _, i := range topo.Interfaces {
				parts = append(parts, i.Name+"#"+strconv.Itoa(i.Index)+"["+join(i.Addrs)+"]["+join(i.Routes)+"]")
			}
			if got := strings.Join(parts, " "); got != tc.want {
				t.Fatalf("got %s\nwant %s", got, tc.want)
			}
		})
	}
}

// TestMirrorIndexesPrefersTargetAddresses: mirroring a target, its own
// addresses come first (masquerade takes the primary one) and an inferred
// placeholder of a family the target has is dropped.
func TestMirrorIndexesPrefersTargetAddresses(t *testing.T) {
	probes, err := Parse("x", strings.NewReader("accept tcp 10.1.0.7 -> 203.0.113.9:443 in lan0 out wan0\naccept tcp [2001:db8::7] -> [2001:db8:1::9]:443 in lan0 out wan0\n"))
	if err != nil {
		t.Fatal(err)
	}
	topo := InferTopology(probes)
	target := []slots.Iface{{Name: "wan0", Index: 3, Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}}}
	got := MirrorIndexes(topo, target)
	wan, _ := got.lookup("wan0")
	if j := join(wan.Addrs); wan.Index != 3 || j != "192.0.2.1/24 fd00:f510:0:1::1/128" {
		t.Errorf("wan0 #%d addrs %q, want #3 with the target's v4 address first and the v6 placeholder kept", wan.Index, j)
	}
}
