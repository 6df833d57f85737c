package slots

import (
	"bytes"
	"errors"
	"fmt"
	"sort"

	"github.com/fwslot/fwslot/internal/nfnl"
)

// ErrXtables means a ruleset names a table that iptables-nft (or
// ip6tables-, ebtables-, arptables-nft) owns. fwslot never adopts or
// changes such a table: docker, kube-proxy and iptables itself insert into
// it, and would fail (or be undone) once it sat in fwslot's slot layout.
var ErrXtables = errors.New("table belongs to iptables-nft")

// xtablesBuiltins lists, per family and table name, the base chains that
// iptables-nft and its siblings create.
var xtablesBuiltins = map[uint8]map[string][]string{
	nfnl.FamilyIPv4: {
		"filter": {"INPUT", "FORWARD", "OUTPUT"}, "nat": {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"},
		"mangle": {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"}, "raw": {"PREROUTING", "OUTPUT"},
		"security": {"INPUT", "FORWARD", "OUTPUT"},
	},
	nfnl.FamilyBridge: {"filter": {"INPUT", "FORWARD", "OUTPUT"}, "nat": {"PREROUTING", "OUTPUT", "POSTROUTING"}, "broute": {"BROUTING"}},
	nfnl.FamilyARP:    {"filter": {"INPUT", "OUTPUT", "FORWARD"}},
}

func init() { xtablesBuiltins[nfnl.FamilyIPv6] = xtablesBuiltins[nfnl.FamilyIPv4] }

// xtablesChains returns the base chains of t that iptables-nft would have
// created, sorted; none for a table it does not own.
func xtablesChains(t *TableState) []string {
	var out []string
	for _, name := range xtablesBuiltins[t.Family][t.Name] {
		if _, ok := t.Base[name]; ok {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// xtablesExprs are the expressions of iptables-nft's compatibility layer:
// a rule that holds one runs an xtables match or target.
var xtablesExprs = [][]byte{[]byte("match\x00"), []byte("target\x00")}

// usesXtables reports whether a rule runs xtables matches or targets.
func usesXtables(rule []byte) bool {
	for _, x := range xtablesExprs {
		if bytes.Contains(rule, x) {
			return true
		}
	}
	return false
}

// refuseXtables returns an error naming the first table of tables that
// iptables-nft owns, judged by its built-in base chains, or by the
// xtables matches and targets in rs (the tables' content, when read).
func refuseXtables(tables []*TableState, rs *Ruleset) error {
	why := map[tkey]string{}
	for _, t := range tables {
		if chains := xtablesChains(t); len(chains) > 0 {
			why[tkey{t.Family, t.Name}] = fmt.Sprintf("it has iptables' built-in chains %v", chains)
		}
	}
	if rs != nil {
		for _, t := range rs.Tables {
			for _, c := range t.Chains {
				for _, r := range c.Rules {
					if k := (tkey{t.Family, t.Name}); why[k] == "" && usesXtables(r) {
						why[k] = fmt.Sprintf("chain %s runs xtables matches or targets", c.Name)
					}
				}
			}
		}
	}
	for _, t := range tables {
		if w := why[tkey{t.Family, t.Name}]; w != "" {
			return fmt.Errorf("%w: table %s is iptables-nft's (%s; docker, kube-proxy or iptables itself write it), and fwslot never adopts or changes it", ErrXtables, t.Key(), w)
		}
	}
	return nil
}
