package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/fwslot/fwslot/internal/testnet"
)

// Drift is shown as nft rules under the user's names, naming the slot:
// never raw attributes or handles.
func TestDriftShownAsNftRules(t *testing.T) {
	ns, g := newTarget(t)
	src := "table inet filter {\n\tset allow {\n\t\ttype ipv4_addr\n\t\telements = { 10.0.0.1 }\n\t}\n\tchain input {\n\t\ttype filter hook input priority 0; policy drop;\n\t\ttcp dport 22 accept\n\t\tip saddr @allow accept\n\t}\n}\n"
	runSteps(t, g, [][]string{{"load", writeFile(t, "d.nft", src)}, {"swap"}})
	testnet.Run(t, ns, "nft", "add", "rule", "inet", "filter", "fwslot_b_input", "tcp", "dport", "80", "accept")
	testnet.Run(t, ns, "nft", "add", "element", "inet", "filter", "fwslot_b_allow", "{ 10.9.9.9 }")
	out, _ := run(t, append(g, "status")...)
	for _, want := range []string{
		"production (version 1, slot b): chain inet filter input",
		"production as nft rules (- what fwslot wrote, + what runs):",
		"  chain input\n",
		"    + tcp dport 80 accept\n",
		"    + element 10.9.9.9\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "fwslot_b_") || strings.Contains(out, "handle") {
		t.Errorf("status shows fwslot's internal names or handles:\n%s", out)
	}
	out, _ = run(t, append(g, "status", "--json")...)
	var st struct {
		Drift      bool              `json:"drift"`
		DriftRules map[string]string `json:"drift_rules"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || !st.Drift || !strings.Contains(st.DriftRules["production"], "+ tcp dport 80 accept") {
		t.Fatalf("status --json drift_rules: %v\n%s", err, out)
	}
}
