package probe

import (
	"bufio"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/fwslot/fwslot/internal/names"
)

// RuleInfo describes one rule of the ruleset under test. Chain is the
// user's chain name (slot prefixes removed); File and Line point at the
// rule's source when known; Own marks fwslot's own dispatch rules.
type RuleInfo struct {
	Family string `json:"family"`
	Table  string `json:"table"`
	Chain  string `json:"chain"`
	Handle uint64 `json:"handle"`
	Text   string `json:"text"`
	File   string `json:"file,omitempty"`
	Line   int    `json:"line,omitempty"`
	Own    bool   `json:"-"`
}

// Where returns "file:line" or "" when the source is unknown.
func (r RuleInfo) Where() string {
	if r.File == "" {
		return ""
	}
	return fmt.Sprintf("%s:%d", r.File, r.Line)
}

// RuleIndex maps the rules a trace names (family, table, kernel chain name,
// handle) to their text and source, and lists every rule for coverage.
type RuleIndex interface {
	Lookup(family, table, chain string, handle uint64) (RuleInfo, bool)
	All() []RuleInfo
}

type ruleKey struct {
	family, table, chain string
	handle               uint64
}

type chainKey struct{ family, table, chain string }

// nftRuleIndex is a RuleIndex read from `nft -a list ruleset` output. It
// also knows each base chain's hook. It leaves out the probe trace table,
// and All leaves out fwslot's own rules.
type nftRuleIndex struct {
	rules map[ruleKey]RuleInfo
	order []ruleKey
	hooks map[chainKey]string
	types map[chainKey]string // base chain types: filter, nat, route
}

// Lookup finds a rule by its kernel coordinates.
func (x *nftRuleIndex) Lookup(family, table, chain string, handle uint64) (RuleInfo, bool) {
	r, ok := x.rules[ruleKey{family, table, chain, handle}]
	return r, ok
}

// All lists the user's rules in ruleset order.
func (x *nftRuleIndex) All() []RuleInfo {
	var out []RuleInfo
	for _, k := range x.order {
		if r := x.rules[k]; !r.Own {
			out = append(out, r)
		}
	}
	return out
}

// chainType returns the type of a base chain (filter, nat or route).
func (x *nftRuleIndex) chainType(family, table, chain string) (string, bool) {
	t, ok := x.types[chainKey{family, table, chain}]
	return t, ok
}

// hook returns the hook of a base chain (kernel chain name).
func (x *nftRuleIndex) hook(family, table, chain string) (string, bool) {
	h, ok := x.hooks[chainKey{family, table, chain}]
	return h, ok
}

var (
	reTable   = regexp.MustCompile(`^table (\S+) (\S+) \{`)
	reChain   = regexp.MustCompile(`^chain (\S+) \{`)
	reSlotRef = regexp.MustCompile(`\b(jump|goto) ` + names.Prefix + `_[ab]_(\S+)`)
	reSlotSet = regexp.MustCompile(`@` + names.Prefix + `_[ab]_`)
	reHook    = regexp.MustCompile(`^type (\S+) hook (\S+)`)
	reHandle  = regexp.MustCompile(`^(.*?)\s*# handle (\d+)$`)
)

// parseNftRuleset builds an nftRuleIndex from `nft -a list ruleset` text.
func parseNftRuleset(text string) (*nftRuleIndex, error) {
	x := &nftRuleIndex{rules: map[ruleKey]RuleInfo{}, hooks: map[chainKey]string{}, types: map[chainKey]string{}}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	var family, table, chain string
	depth := 0    // brace depth
	skipTo := -1  // inside a non-chain block: skip until depth drops to this
	chainAt := -1 // depth of the current chain's body
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		d := braceDelta(line)
		switch {
		case skipTo >= 0:
		case depth == 0:
			if m := reTable.FindStringSubmatch(line); m != nil {
				family, table = m[1], m[2]
			}
		case depth == 1 && table != "":
			if m := reChain.FindStringSubmatch(line); m != nil {
				chain, chainAt = m[1], depth+1
			} else if d > 0 {
				skipTo = depth
			}
		case depth == chainAt && table != traceTable:
			if m := reHook.FindStringSubmatch(line); m != nil {
				x.hooks[chainKey{family, table, chain}] = m[2]
				x.types[chainKey{family, table, chain}] = m[1]
				break
			}
			if m := reHandle.FindStringSubmatch(line); m != nil && d == 0 {
				h, err := strconv.ParseUint(m[2], 10, 64)
				if err != nil {
					return nil, fmt.Errorf("rule handle in %q: %w", line, err)
				}
				k := ruleKey{family, table, chain, h}
				x.rules[k] = RuleInfo{Family: family, Table: table, Chain: userChain(chain), Handle: h, Text: userText(m[1]),
					Own: strings.Contains(m[1], `comment "`+names.TagPrefix) || names.Reserved(chain) && !isSlotChain(chain)}
				x.order = append(x.order, k)
			}
		}
		depth += d
		if depth < 0 {
			return nil, fmt.Errorf("unbalanced braces in nft listing at %q", line)
		}
		if skipTo >= 0 && depth <= skipTo {
			skipTo = -1
		}
		if depth < chainAt {
			chainAt = -1
		}
		if depth == 0 {
			table = ""
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read nft listing: %w", err)
	}
	return x, nil
}

// userText is a rule's text in the user's names: the slot layout's chain,
// set and map names (jump fwslot_a_x, @fwslot_a_x) without their prefix.
func userText(s string) string {
	return reSlotSet.ReplaceAllString(reSlotRef.ReplaceAllString(s, "$1 $2"), "@")
}

func isSlotChain(c string) bool { _, _, ok := names.FromSlot(c); return ok }

// braceDelta counts { minus } outside double-quoted strings.
func braceDelta(line string) int {
	d, inq := 0, false
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case c == '\\' && inq:
			i++
		case c == '"':
			inq = !inq
		case c == '{' && !inq:
			d++
		case c == '}' && !inq:
			d--
		}
	}
	return d
}

// TwinRuleIndex reads the twin's ruleset with `nft -a list ruleset` (run
// once, inside the twin) and indexes it, with each user rule's source
// file and line from locate when it is set. Result.EvalCost counts rules
// against such an index.
func TwinRuleIndex(tw *Twin, locate Locator) (RuleIndex, error) {
	x, err := twinRuleIndex(tw, locate)
	if err != nil {
		return nil, err // a nil RuleIndex, not a nil *nftRuleIndex in one
	}
	return x, nil
}

func twinRuleIndex(tw *Twin, locate Locator) (*nftRuleIndex, error) {
	out, err := nftOutput(tw.ns, "", "-a", "list", "ruleset")
	if err != nil {
		return nil, fmt.Errorf("list twin ruleset: %w", err)
	}
	x, err := parseNftRuleset(out)
	if err != nil {
		return nil, err
	}
	x.annotate(locate)
	return x, nil
}

// Locator returns the source file and line of the n-th rule (from 0) of a
// user chain, as the ruleset file spells it.
type Locator func(family, table, chain string, n int) (file string, line int, ok bool)

// annotate fills in File and Line of every user rule from locate, counting
// rules per chain in ruleset order.
func (x *nftRuleIndex) annotate(locate Locator) {
	if locate == nil {
		return
	}
	seen := map[chainKey]int{}
	for _, k := range x.order {
		r := x.rules[k]
		if r.Own {
			continue
		}
		ck := chainKey{r.Family, r.Table, r.Chain}
		n := seen[ck]
		seen[ck] = n + 1
		if f, l, ok := locate(r.Family, r.Table, r.Chain, n); ok {
			r.File, r.Line = f, l
			x.rules[k] = r
		}
	}
}
