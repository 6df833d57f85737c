package probe

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"

	"github.com/vishvananda/netns"

	"github.com/fwslot/fwslot/internal/nfnl"
	"github.com/fwslot/fwslot/internal/nsutil"
	"github.com/fwslot/fwslot/internal/slots"
	"github.com/fwslot/fwslot/internal/source"
)

// CompileLoader returns a Loader that compiles a ruleset bundle (exactly
// the files source.Load read) for the twin's interfaces and makes it live
// there in fwslot's slot layout, as it would run on a real target.
//
// The compiled ruleset is kept for the next call with the same interfaces:
// a twin reloads it between probes when it holds state (see Options).
func CompileLoader(ctx context.Context, b *source.Bundle) Loader {
	var key string
	var compiled *slots.Ruleset
	return func(ns netns.NsHandle) error {
		var ifs []slots.Iface
		err := nsutil.DoHandle(ns, func() error {
			var err error
			ifs, err = slots.Interfaces("")
			return err
		})
		if err != nil {
			return err
		}
		if k := fmt.Sprint(ifs); compiled == nil || k != key {
			rs, err := slots.CompileBundle(ctx, b, ifs, nil)
			if err != nil {
				return err
			}
			key, compiled = k, rs
		}
		if err := installRaw(ns, compiled); err != nil {
			return fmt.Errorf("load the ruleset into the twin: %w", slots.LocateRefusal(err, b.Main, compiled))
		}
		return nil
	}
}

// RulesetLoader returns a Loader that makes an already compiled ruleset
// (a slot's content from history) live in the twin.
func RulesetLoader(rs *slots.Ruleset) Loader {
	return func(ns netns.NsHandle) error { return install(ns, rs) }
}

func install(ns netns.NsHandle, rs *slots.Ruleset) error {
	if err := installRaw(ns, rs); err != nil {
		return fmt.Errorf("load the ruleset into the twin: %w", err)
	}
	return nil
}

func installRaw(ns netns.NsHandle, rs *slots.Ruleset) error {
	c, err := nfnl.DialHandle(ns)
	if err != nil {
		return err
	}
	defer c.Close()
	return slots.Install(c, rs, slots.Tag{})
}

// SourceLocator maps rules to the lines of a ruleset bundle that wrote
// them. File names are shown relative to the main file's directory.
func SourceLocator(b *source.Bundle) (Locator, error) {
	locs, err := b.RuleLocations()
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(b.Main)
	return func(family, table, chain string, n int) (string, int, bool) {
		l := locs[source.ChainKey{Family: family, Table: table, Chain: chain}]
		if n >= len(l) {
			return "", 0, false
		}
		f := l[n].File
		if rel, err := filepath.Rel(dir, f); err == nil && !filepath.IsAbs(rel) && rel != "" && rel[0] != '.' {
			f = rel
		}
		return f, l[n].Line, true
	}, nil
}

// MirrorIndexes makes the twin mirror the target: every interface of the
// target (loopback aside) with its name, index and addresses, merged with
// what topo (given or inferred from the probes) needs. Indexes matter: a
// ruleset compiled for the target matches iif/oif by index.
func MirrorIndexes(topo Topology, target []slots.Iface) Topology {
	out := Topology{Interfaces: append([]Interface(nil), topo.Interfaces...)}
	for _, ti := range target {
		if ti.Name == "lo" {
			continue
		}
		i, ok := out.lookup(ti.Name)
		if !ok {
			out.Interfaces = append(out.Interfaces, Interface{Name: ti.Name})
			i = &out.Interfaces[len(out.Interfaces)-1]
		}
		i.Index = ti.Index
		// The target's addresses come first (masquerade takes the
		// primary one); an inferred placeholder of a family the target
		// has goes.
		addrs := append([]netip.Prefix(nil), ti.Addrs...)
		for _, a := range i.Addrs {
			if !hasPrefix(addrs, a) && !(isPlaceholder(a.Addr()) && hasFamily(ti.Addrs, a.Addr().Is6())) {
				addrs = append(addrs, a)
			}
		}
		i.Addrs = addrs
	}
	return out
}

func hasPrefix(ps []netip.Prefix, p netip.Prefix) bool {
	for _, q := range ps {
		if q.Addr() == p.Addr() {
			return true
		}
	}
	return false
}
