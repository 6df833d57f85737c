package bench

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/fwslot/fwslot/internal/nsutil"
	"github.com/fwslot/fwslot/internal/testnet"
)

// The fleet measurement on 3 hosts and small rulesets: every figure is
// measured (none left at zero), the version's bytes cover its source,
// and the namespaces are gone afterwards.
func TestMeasureFleet(t *testing.T) {
	testnet.RequireRoot(t)
	t.Setenv("TMPDIR", t.TempDir())
	cfg := &FleetConfig{Rules: 100, Stagers: 2}
	r, err := MeasureFleet(context.Background(), cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	v1, v2 := fleetRulesets(100)
	if v1 == v2 {
		t.Fatal("the two versions are the same ruleset")
	}
	for name, d := range map[string]int64{"nft loop": int64(r.NftLoop), "first push": int64(r.First), "next push": int64(r.Next),
		"rollback": int64(r.Rollback), "flip max": int64(r.FlipMax), "db growth": r.DBGrowth} {
		if d <= 0 {
			t.Errorf("%s not measured: %d", name, d)
		}
	}
	if r.VersionBytes < int64(len(v2)) {
		t.Errorf("version bytes %d, less than its source (%d)", r.VersionBytes, len(v2))
	}
	entries, _ := os.ReadDir(nsutil.RunDir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "fwsb-fleet-"+strconv.Itoa(os.Getpid())+"-") {
			t.Errorf("namespace left: %s", e.Name())
		}
	}
	var b strings.Builder
	FleetTable(cfg, []*FleetResult{r}, &AgentMemory{Rest: 1 << 20, Peak: 2 << 20}).Fprint(&b)
	if !strings.Contains(b.String(), "| 3 |") || !strings.Contains(b.String(), "1.0 MiB") {
		t.Errorf("table:\n%s", b.String())
	}
}
