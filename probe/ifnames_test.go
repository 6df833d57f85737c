package probe

import (
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fwslot/fwslot/internal/source"
)

// TestRulesetInterfaces: the interface names a ruleset matches and its WAN
// side, from the ways rulesets write them.
func TestRulesetInterfaces(t *testing.T) {
	cases := []struct {
		name, text string
		names, wan string
	}{
		{"quoted and bare", `iifname "eth0" accept
oif eth1 drop`, "eth0 eth1", ""},
		{"masquerade out, dnat in", `oifname "ppp-isp" masquerade
iifname "uplink" tcp dport 80 dnat to 10.0.0.5
iifname "lan0" oifname "uplink" accept`, "ppp-isp uplink lan0", "ppp-isp uplink"},
		{"snat to", `oif "ext0" snat to 192.0.2.1`, "ext0", "ext0"},
		{"ct status dnat is not a dnat", `iifname "lan0" ct status dnat accept`, "lan0", ""},
		{"defines named WAN and LAN", `define WAN_IF = "eth9"
define LAN_IF = "wan2" # named like a wan, defined as the lan
iifname $WAN_IF accept
iifname $LAN_IF accept`, "eth9 wan2", "eth9"},
		{"define of a set of names", `define INSIDE = { "br0", "br1" }
iifname $INSIDE accept`, "br0 br1", ""},
		{"anonymous set", `iifname { "lan0", "lan1" } oifname "wan" accept`, "lan0 lan1 wan", "wan"},
		{"named ifname set", `set lan_devices {
	type ifname
	elements = { "br-lan", "eth2" }
}
set ports { type inet_service; elements = { 22, 80 } }
iifname @lan_devices accept
tcp dport @ports accept`, "br-lan eth2", ""},
		{"fw4 zone", `iifname "eth1" jump input_wan comment "!fw4: Handle wan IPv4/IPv6 input traffic"
oifname "eth1" jump srcnat_wan
iifname "br-lan" jump input_lan`, "eth1 br-lan", "eth1"},
		{"conventional wan names", `iifname "pppoe-wan" accept
iifname "wwan0" accept
iifname "wan6" accept
iifname "wanda" accept`, "pppoe-wan wwan0 wan6 wanda", "pppoe-wan wwan0 wan6"},
		{"negation names but says nothing", `iifname != "eth5" oifname "x" masquerade`, "eth5 x", "x"},
		{"wildcards, lo, comments", `iif "lo" accept
iifname "veth*" accept
# iifname "commented" accept
iifname "a" accept comment "iifname b"`, "a", ""},
		{"verdict map", `iifname vmap { "br-lan" : jump input_lan, "eth1" : jump input_wan }
oifname vmap { lan0 : accept, "wan0" : drop }`, "br-lan eth1 lan0 wan0", "eth1 wan0"},
		{"one line, semicolons", `chain c { type filter hook input priority 0; iifname "x0" accept; oifname "y0" masquerade; }`, "x0 y0", "y0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := rulesetInterfaces(c.text)
			if n := strings.Join(got.Names, " "); n != c.names {
				t.Errorf("names %q, want %q", n, c.names)
			}
			if w := strings.Join(got.WAN, " "); w != c.wan {
				t.Errorf("wan %q, want %q", w, c.wan)
			}
		})
	}
}

// TestExampleRulesetSides: the example rulesets' own names give their
// WAN sides, the sides their topology files route the default through.
func TestExampleRulesetSides(t *testing.T) {
	want := map[string]struct{ names, wan string }{
		"../testdata/examples/homerouter.nft": {"lan wan", "wan"},
		"../testdata/examples/openwrt.nft":    {"eth1 br-lan", "eth1"},
		"../testdata/examples/router.nft":     {"lan0 wan0", "wan0"},
		"../testdata/examples/server.nft":     {"", ""},
		"../testdata/examples/dualstack.nft":  {"", ""},
		"../testdata/examples/webhost.nft":    {"", ""},
		"testdata/router.nft":                 {"lan0 wan0", "wan0"},
	}
	for file, w := range want {
		b, err := source.Load(file, source.Options{})
		if err != nil {
			t.Fatal(err)
		}
		got := rulesetInterfaces(b.Flat)
		if n, x := strings.Join(got.Names, " "), strings.Join(got.WAN, " "); n != w.names || x != w.wan {
			t.Errorf("%s: names %q wan %q, want %q and %q", filepath.Base(file), n, x, w.names, w.wan)
		}
		if topo := base(file) + ".topology"; fileExists(topo) && w.wan != "" {
			tp := readTopologyFile(t, topo)
			if i, ok := tp.lookup(w.wan); !ok || !slices.ContainsFunc(i.Routes, func(p netip.Prefix) bool { return p.Bits() == 0 }) {
				t.Errorf("%s: the topology file routes the default elsewhere than %s", filepath.Base(file), w.wan)
			}
		}
	}
}

func base(file string) string { return strings.TrimSuffix(file, ".nft") }

// TestInferTopologyWithNames: interfaces the ruleset names exist, and a
// source probes send from both sides lives where a real router has it.
func TestInferTopologyWithNames(t *testing.T) {
	probes := mustParse(`drop   tcp 10.0.0.7:40000 -> 192.0.2.1:22 in wan0
accept tcp 10.0.0.7:40001 -> 203.0.113.9:443 in lan0 out wan0
drop   tcp 198.51.100.4:40002 -> 10.0.0.1:22 in lan0
accept tcp 198.51.100.4:40003 -> 192.0.2.1:22 in wan0
accept tcp 10.0.0.8:40004 -> 192.0.2.1:22 in lan0
`)
	cases := []struct {
		name   string
		names  rulesetNames
		routes map[string]string
		ifaces string
	}{
		{"no names: the first probe's interface", rulesetNames{},
			map[string]string{"wan0": "203.0.113.9/32 10.0.0.7/32", "lan0": "198.51.100.4/32 10.0.0.8/32"}, "wan0 lan0"},
		{"wan0 named: private on the lan, public on the wan", rulesetNames{Names: []string{"lan0", "wan0", "dmz0"}, WAN: []string{"wan0"}},
			map[string]string{"wan0": "203.0.113.9/32 198.51.100.4/32", "lan0": "10.0.0.7/32 10.0.0.8/32", "dmz0": ""}, "wan0 lan0 dmz0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := inferTopologyWith(probes, c.names)
			var names []string
			for _, i := range got.Interfaces {
				names = append(names, i.Name)
				if r := join(i.Routes); r != c.routes[i.Name] {
					t.Errorf("%s routes %q, want %q", i.Name, r, c.routes[i.Name])
				}
			}
			if n := strings.Join(names, " "); n != c.ifaces {
				t.Errorf("interfaces %q, want %q", n, c.ifaces)
			}
		})
	}
}

// rpfilterRuleset drops packets whose source is not routed back through
// the interface they came in on (fw4's and many routers' reverse path
// filter), and names an interface (dmz0, by index) no probe uses.
const rpfilterRuleset = `table inet filter {
	chain pre {
		type filter hook prerouting priority raw; policy accept;
		fib saddr . iif oif missing drop
	}
	chain input {
		type filter hook input priority 0; policy drop;
		ct state established,related accept
		icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
		iif "dmz0" drop
		tcp dport 22 accept
	}
	chain forward {
		type filter hook forward priority 0; policy drop;
		ct state established,related accept
		iifname "lan0" oifname "wan0" accept
	}
}
table ip nat {
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "wan0" masquerade
	}
}
`

const rpfilterTopo = "addr wan0 192.0.2.1/24\nroute wan0 0.0.0.0/0\naddr lan0 10.0.0.1/24\niface dmz0\n"

// TestInferredSidesMatchARealRouter: with the topology inferred from the
// probes and the ruleset's own interface names, a reverse path filter
// judges spoofed and genuine sources as a real router does. Inferred from
// the probes alone, the twin did not load (no dmz0 for `iif "dmz0"`), and
// without that rule it routed 10.0.0.7 back through wan0, where the first
// probe sends it from: the genuine lan client was dropped.
func TestInferredSidesMatchARealRouter(t *testing.T) {
	probes := mustParse(`drop   tcp 10.0.0.7:40000 -> 192.0.2.1:22 in wan0   # a lan address from the internet
accept tcp 10.0.0.7:40001 -> 203.0.113.9:443 in lan0 out wan0
drop   tcp 198.51.100.4:40002 -> 10.0.0.1:22 in lan0  # an internet address from the lan
accept tcp 198.51.100.4:40003 -> 192.0.2.1:22 in wan0
accept tcp 10.0.0.8:40004 -> 192.0.2.1:22 in lan0
`)
	file := writeTemp(t, "rpfilter.nft", rpfilterRuleset)
	topo := inferTopologyWith(probes, rulesetInterfaces(rpfilterRuleset))
	outs := runDiff(t, file, topoOf(t, rpfilterTopo), topo, probes, nil)
	requireAgreement(t, outs)
	agree := 0
	for _, d := range outs {
		if d.twin.Passed() && d.agree() {
			agree++
		} else {
			t.Errorf("%s: got %s %v %s\n%s", d.probe, d.twin.Got, d.twin.Err, d.twin.Failure, d.twin.Path)
		}
	}
	t.Logf("%d of %d probes agree with a real router", agree, len(outs))
}
