package slots

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fwslot/fwslot/internal/nfnl"
	"github.com/fwslot/fwslot/internal/nsutil"
	"github.com/fwslot/fwslot/internal/source"
	"github.com/vishvananda/netlink"
)

// Iface is a network interface that rulesets may name (iif, oif, netdev
// chains, flowtables).
type Iface struct {
	Name  string
	Index int
	// Addrs are its addresses (global scope), for probe twins that
	// mirror the target.
	Addrs []netip.Prefix
}

// CompileError is nft's own rejection of a ruleset file, with file:line:col.
type CompileError struct {
	File   string
	Output string
	// Hint names a likely cause nft's message does not (iptables-save
	// input, CRLF line endings); empty when there is none.
	Hint string
	// cause is the sentinel for Hint (ErrIptablesInput, ErrCRLF) or for
	// fwslot's own refusal (ErrReserved), if any.
	cause error
}

// Unwrap returns the sentinel of the likely cause (ErrIptablesInput,
// ErrCRLF, ErrReserved), or nil.
func (e *CompileError) Unwrap() error { return e.cause }

func (e *CompileError) Error() string {
	msg := fmt.Sprintf("nft rejected %s:\n%s", e.File, strings.TrimRight(e.Output, "\n"))
	if e.Hint != "" {
		msg += "\n" + e.Hint
	}
	return msg
}

// Interfaces lists the interfaces of the named namespace ("" = current).
func Interfaces(netns string) ([]Iface, error) {
	var out []Iface
	err := nsutil.Do(netns, func() error {
		links, err := netlink.LinkList()
		if err != nil {
			return fmt.Errorf("list interfaces: %w", err)
		}
		for _, l := range links {
			a := l.Attrs()
			i := Iface{Name: a.Name, Index: a.Index}
			addrs, err := netlink.AddrList(l, netlink.FAMILY_ALL)
			if err != nil {
				return fmt.Errorf("list addresses of %s: %w", a.Name, err)
			}
			for _, ad := range addrs {
				if ad.Scope != int(netlink.SCOPE_UNIVERSE) || ad.IPNet == nil {
					continue
				}
				ip, ok := netip.AddrFromSlice(ad.IP)
				if !ok {
					continue
				}
				ones, _ := ad.Mask.Size()
				i.Addrs = append(i.Addrs, netip.PrefixFrom(ip.Unmap(), ones))
			}
			out = append(out, i)
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out, err
}

// MirrorInterfaces creates, in the calling thread's (private) namespace,
// interfaces with the names and indexes of ifaces, so rulesets compile and
// print there as on the target.
func MirrorInterfaces(ifaces []Iface) error {
	for _, i := range ifaces {
		if i.Name == "lo" {
			continue
		}
		// ifb: the dummy driver is not in every kernel; ifb is a plain
		// device that netdev hooks and flowtables accept.
		d := &netlink.Ifb{LinkAttrs: netlink.LinkAttrs{Name: i.Name, Index: i.Index}}
		if err := netlink.LinkAdd(d); err != nil {
			return fmt.Errorf("mirror interface %s (index %d) in a private namespace: %w", i.Name, i.Index, err)
		}
	}
	return nil
}

// Compile reads file with every file it includes, under the include policy
// (regular files in the file's own directory and below), and compiles
// what it read with CompileBundle.
func Compile(ctx context.Context, file string, ifaces []Iface) (*Ruleset, error) {
	b, err := source.Load(file, source.Options{})
	if err != nil {
		return nil, err
	}
	return CompileBundle(ctx, b, ifaces, nil)
}

// CompileBundle runs nft on a private copy of exactly the files of b, as
// read and hashed (never on the user's paths, which may have changed or
// resolve differently), in a private network namespace that has the given
// interfaces with the same names and indexes, and reads back what nft
// built. nft's messages name the user's files. A bundle nft rejects
// returns a *CompileError; nothing outside the private namespace changes,
// whatever the file says (`flush ruleset` included). timer, when set,
// receives the phases (namespace setup, nft, read back).
//
// Element lists of FastElements or more elements are encoded from the
// source (fastelems.go) instead: nft compiles the bundle without them, and
// the sets it builds must then be exactly the declarations those lists
// were encoded for, or the bundle is compiled whole.
func CompileBundle(ctx context.Context, b *source.Bundle, ifaces []Iface, timer Timer) (*Ruleset, error) {
	rs, _, err := compileBundle(ctx, b, ifaces, timer, FastElements)
	return rs, err
}

// FastElements is the size from which a set's element list is encoded
// from the source rather than compiled and read back: the kernel's set
// dump costs the square of the set's size (issue 11).
const FastElements = 1000

// compileBundle is CompileBundle with the fast path taking element lists
// of at least min elements (min < 0: never); it also returns how many
// lists went the fast way.
func compileBundle(ctx context.Context, b *source.Bundle, ifaces []Iface, timer Timer, min int) (*Ruleset, int, error) {
	var fast []*fastSet
	if min >= 0 && classify(sniffHead(b.Flat)) != kindJSON { // nft syntax only
		mark := time.Now()
		fast = planFast(b, min)
		timer.lap(PhaseFastElems, mark)
	}
	if len(fast) == 0 {
		rs, err := compileWhole(ctx, b, ifaces, timer)
		return rs, 0, err
	}
	lists := make([]source.ElementList, len(fast))
	for i, f := range fast {
		lists[i] = f.list
	}
	rs, err := compileWhole(ctx, b.WithoutElements(lists), ifaces, timer)
	if err != nil {
		// nft's message about the file without its big lists may
		// point at a line a list shifted; compile it whole for nft's
		// own words.
		rs, err = compileWhole(ctx, b, ifaces, timer)
		return rs, 0, err
	}
	mark := time.Now()
	if !attachFast(rs, fast) {
		// nft read a declaration otherwise than the encoding assumed:
		// compile it all, elements included.
		rs, err := compileWhole(ctx, b, ifaces, timer)
		return rs, 0, err
	}
	timer.lap(PhaseFastElems, mark)
	// Verdict maps of the lists may jump deeper than the rules alone.
	if err := checkDepth(b, rs); err != nil {
		return nil, 0, err
	}
	rs.fastLists = len(fast)
	return rs, len(fast), nil
}

// compileWhole compiles b as it is and reads back everything nft built.
func compileWhole(ctx context.Context, b *source.Bundle, ifaces []Iface, timer Timer) (*Ruleset, error) {
	mark := time.Now()
	file := b.Main
	nft, err := nftPath()
	if err != nil {
		return nil, err
	}
	priv, err := privateDir()
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(priv)
	cp, err := b.WriteCopy(priv)
	if err != nil {
		return nil, err
	}
	var rs *Ruleset
	err = nsutil.DoFresh(func() error {
		if err := MirrorInterfaces(ifaces); err != nil {
			return err
		}
		mark = timer.lap(PhaseNetns, mark)
		if err := runNft(ctx, nft, priv, cp, file, classify(sniffHead(b.Flat)), limitsFor(int64(len(b.Flat)))); err != nil {
			return err
		}
		mark = timer.lap(PhaseNft, mark)
		c, err := nfnl.DialHere()
		if err != nil {
			return err
		}
		defer c.Close()
		rs, err = ReadTables(c, nil)
		mark = timer.lap(PhaseReadBack, mark)
		return err
	})
	if err != nil {
		return nil, err
	}
	rs.Ifaces = ifaces
	if len(rs.Tables) == 0 {
		return nil, &CompileError{File: file, Output: "the ruleset declares no table; fwslot manages tables (table inet filter { ... })"}
	}
	for _, t := range rs.Tables {
		if err := checkReserved(t); err != nil {
			return nil, &CompileError{File: file, Output: err.Error(), cause: ErrReserved}
		}
	}
	if err := checkDepth(b, rs); err != nil {
		return nil, err
	}
	return rs, nil
}

// maxLevels is how many levels of chains a ruleset may nest, its base
// chain included: nf_tables validates at most 16 (a base chain and 15
// jumps), and fwslot's dispatch jump into the slot takes one of them.
const maxLevels = 15

// InputError is a ruleset nft accepts but fwslot cannot stage. Like a
// CompileError, it is bad input.
type InputError struct {
	File string
	Line int // 0 when not known
	Msg  string
}

func (e *InputError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// depthMessage says why a ruleset nesting levels deep cannot be staged.
func depthMessage(levels string) string {
	return fmt.Sprintf("the ruleset nests jumps %s levels deep; nf_tables allows 16 and fwslot's dispatch uses one, so at most %d", levels, maxLevels)
}

// checkDepth refuses a ruleset whose chains nest deeper than MaxLevels,
// naming the jump that goes one level too far and the chains on the way.
func checkDepth(b *source.Bundle, rs *Ruleset) error {
	file := b.Main
	for _, t := range rs.Tables {
		path, rules, err := deepestPath(t)
		if err != nil {
			return fmt.Errorf("check jump depth of table %s: %w", t.Key(), err)
		}
		if len(path) <= maxLevels {
			continue
		}
		binding := map[string]bool{}
		for _, c := range t.Chains {
			binding[c.Name] = c.Binding
		}
		// Anonymous chains (`jump { ... }`) have kernel-made names
		// that the user never wrote.
		shown := make([]string, len(path))
		for i, n := range path {
			shown[i] = n
			if binding[n] {
				shown[i] = "jump { ... }"
			}
		}
		e := &InputError{File: file, Msg: fmt.Sprintf("%s (table %s: %s); fold some chains into the ones that jump to them",
			depthMessage(strconv.Itoa(len(path))), t.Key(), strings.Join(shown, " -> "))}
		// The jump from the last chain that fits into the first that
		// does not; inside an anonymous chain, the rule of the user's
		// chain that holds it.
		k := maxLevels - 1
		for k > 0 && binding[path[k]] {
			k--
		}
		if locs, err := b.RuleLocations(); err == nil {
			l := locs[source.ChainKey{Family: nfnl.FamilyName(t.Family), Table: t.Name, Chain: path[k]}]
			if n := rules[k]; n < len(l) {
				e.File, e.Line = l[n].File, l[n].Line
			}
		}
		return e
	}
	return nil
}

// deepestPath returns the longest chain of jumps and gotos (verdict maps
// included) from a base chain of t: the chains on it, and for each but the
// last, the index of the rule that jumps to the next.
func deepestPath(t *Table) ([]string, []int, error) {
	chains := map[string]*Chain{}
	for _, c := range t.Chains {
		chains[c.Name] = c
	}
	vmaps := map[string][]string{}
	for _, s := range t.Sets {
		if s.Flags&nfnl.SetFlagMap == 0 {
			continue
		}
		for _, el := range s.Elems {
			attrs, err := nfnl.ParseAttrs(el)
			if err != nil {
				return nil, nil, err
			}
			if d, ok := nfnl.Find(attrs, nfnl.SetElemData); ok {
				if to, err := verdictChain(d.Data); err != nil {
					return nil, nil, err
				} else if to != "" {
					vmaps[s.Name] = append(vmaps[s.Name], to)
				}
			}
		}
	}
	type link struct {
		levels int
		next   string
		rule   int
	}
	memo := map[string]link{}
	onPath := map[string]bool{}
	var walk func(name string) (link, error)
	walk = func(name string) (link, error) {
		if l, ok := memo[name]; ok {
			return l, nil
		}
		best := link{levels: 1}
		c := chains[name]
		if c == nil || onPath[name] { // the kernel refused loops already
			return best, nil
		}
		onPath[name] = true
		defer delete(onPath, name)
		for i, r := range c.Rules {
			targets, err := jumpTargets(r, vmaps)
			if err != nil {
				return best, fmt.Errorf("chain %s rule %d: %w", name, i, err)
			}
			for _, to := range targets {
				l, err := walk(to)
				if err != nil {
					return best, err
				}
				if l.levels+1 > best.levels {
					best = link{levels: l.levels + 1, next: to, rule: i}
				}
			}
		}
		memo[name] = best
		return best, nil
	}
	var path []string
	var rules []int
	for _, c := range t.Chains {
		if c.Base == nil {
			continue
		}
		l, err := walk(c.Name)
		if err != nil {
			return nil, nil, err
		}
		if l.levels <= len(path) {
			continue
		}
		path, rules = path[:0], rules[:0]
		for n := c.Name; ; {
			path = append(path, n)
			l := memo[n]
			if l.next == "" {
				break
			}
			rules = append(rules, l.rule)
			n = l.next
		}
	}
	return path, rules, nil
}

// jumpTargets lists the chains a rule jumps or goes to, directly or
// through a verdict map.
func jumpTargets(rule []byte, vmaps map[string][]string) ([]string, error) {
	// Most rules neither jump nor look up a map: a jump or goto verdict
	// holds its code (big-endian -3 or -4), a lookup its name.
	if !bytes.Contains(rule, verdictJumpBytes) && !bytes.Contains(rule, verdictGotoBytes) && !bytes.Contains(rule, lookupBytes) {
		return nil, nil
	}
	exprs, ok, err := findAttr(rule, nfnl.RuleExpressions)
	if err != nil || !ok {
		return nil, err
	}
	list, err := nfnl.ParseAttrs(exprs)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, el := range list {
		name, exprData, ok, err := exprParts(el.Data)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		data, err := nfnl.ParseAttrs(exprData)
		if err != nil {
			return nil, err
		}
		switch name {
		case "immediate":
			if d, ok := nfnl.Find(data, nfnl.ImmediateData); ok {
				to, err := verdictChain(d.Data)
				if err != nil {
					return nil, err
				}
				if to != "" {
					out = append(out, to)
				}
			}
		case "lookup":
			if s, ok := nfnl.Find(data, nfnl.LookupSet); ok {
				out = append(out, vmaps[nfnl.Str(s.Data)]...)
			}
		}
	}
	return out, nil
}

var (
	verdictJumpBytes = []byte{0xff, 0xff, 0xff, 0xfd}
	verdictGotoBytes = []byte{0xff, 0xff, 0xff, 0xfc}
	lookupBytes      = []byte("lookup\x00")
)

// verdictChain returns the chain of a jump or goto verdict in an NFTA_DATA
// payload, or "".
func verdictChain(b []byte) (string, error) {
	v, ok, err := findAttr(b, nfnl.DataVerdict)
	if err != nil || !ok {
		return "", err
	}
	c, _, err := findAttr(v, nfnl.VerdictChain)
	return nfnl.Str(c), err
}
