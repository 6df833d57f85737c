package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fwslot/fwslot/internal/testnet"
)

// features reports what this kernel has: flowtables are missing here
// (CONFIG_NF_FLOW_TABLE is not built), counters are not.
func TestFeaturesCommand(t *testing.T) {
	testnet.RequireRoot(t)
	out, code := run(t, "features", "--json")
	if code != 0 {
		t.Fatalf("features --json: exit %d\n%s", code, out)
	}
	var rep struct {
		Kernel, Nft string
		Features    []struct {
			Name      string
			Supported bool
			Detail    string
			Config    string
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("features --json: %v\n%s", err, out)
	}
	if rep.Kernel == "" || !strings.HasPrefix(rep.Nft, "nftables v") {
		t.Fatalf("kernel %q, nft %q", rep.Kernel, rep.Nft)
	}
	got := map[string]bool{}
	detail := map[string]string{}
	for _, f := range rep.Features {
		got[f.Name] = f.Supported
		detail[f.Name] = f.Detail + " " + f.Config
	}
	for _, c := range []struct {
		name      string
		supported bool
		detail    string
	}{
		{"flowtable", false, "CONFIG_NF_FLOW_TABLE"},
		{"flow offload", false, "CONFIG_NFT_FLOW_OFFLOAD"},
		{"counter", true, "CONFIG_NF_TABLES"},
		{"family inet", true, "CONFIG_NF_TABLES_INET"},
		{"nat", true, "CONFIG_NFT_NAT"},
		{"last", false, "this nft cannot express it"},
	} {
		s, ok := got[c.name]
		if !ok || s != c.supported || !strings.Contains(detail[c.name], c.detail) {
			t.Errorf("%s: supported %v (listed %v), detail %q; want %v and %q", c.name, s, ok, detail[c.name], c.supported, c.detail)
		}
	}
	text, code := run(t, "features")
	if code != 0 || !strings.Contains(text, "flowtable") || !strings.Contains(text, "NO") {
		t.Fatalf("features: exit %d\n%s", code, text)
	}
}

// A ruleset that needs a flowtable is refused by load and test with the
// file:line that needs it and the kernel option, exit 2, and production,
// status and history stay exactly as they were.
func TestMissingFeatureRefused(t *testing.T) {
	ns, g := twoVersionTarget(t)
	db := dbOf(g)
	flow, err := filepath.Abs("../../testdata/corpus/optional/flowtable.nft")
	if err != nil {
		t.Fatal(err)
	}
	probes := writeFile(t, "p.probes", "accept tcp 198.51.100.7:40000 -> 192.0.2.10:22 in eth0\n")
	for _, c := range []struct {
		name string
		args []string
	}{
		{"load", append(append([]string{}, g...), "load", flow)},
		{"load --json", append(append([]string{}, g...), "load", flow, "--json")},
		{"test", []string{"test", flow, "--probes", probes}},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := takeSnapshot(t, ns, g, db)
			out, code := run(t, c.args...)
			if code != 2 {
				t.Fatalf("exit %d, want 2\n%s", code, out)
			}
			for _, want := range []string{"flowtable.nft:3: flowtable needs CONFIG_NF_FLOW_TABLE", "flowtable.nft:8: flow offload needs CONFIG_NFT_FLOW_OFFLOAD", "fwslot features"} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			if d := takeSnapshot(t, ns, g, db).diff(before); d != "" {
				t.Fatalf("a refused ruleset changed something: %s", d)
			}
		})
	}
}
