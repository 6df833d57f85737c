package probe

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/fwslot/fwslot/internal/nfnl"
	"github.com/fwslot/fwslot/internal/source"
	"github.com/fwslot/fwslot/slots"
)

// CompileLoader returns a Loader that compiles a ruleset file for the
// twin's interfaces and makes it live there in fwslot's slot layout, as it
// would run on a real target.
func CompileLoader(ctx context.Context, file string) Loader {
	return func(ns string) error {
		ifs, err := slots.Interfaces(ns)
		if err != nil {
			return err
		}
		rs, err := slots.Compile(ctx, file, ifs)
		if err != nil {
			return err
		}
		return install(ns, rs)
	}
}

// RulesetLoader returns a Loader that makes an already compiled ruleset
// (a slot's content from history) live in the twin.
func RulesetLoader(rs *slots.Ruleset) Loader {
	return func(ns string) error { return install(ns, rs) }
}

func install(ns string, rs *slots.Ruleset) error {
	c, err := nfnl.Dial(ns)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := slots.Install(c, rs, slots.Tag{}); err != nil {
		return fmt.Errorf("load the ruleset into the twin: %w", err)
	}
	return nil
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

// MirrorIndexes gives the twin's interfaces the indexes that interfaces of
// the same name have on the target, so a ruleset compiled for the target
// (iif/oif match indexes) behaves the same in the twin.
func MirrorIndexes(topo Topology, target []slots.Iface) Topology {
	idx := map[string]int{}
	for _, i := range target {
		idx[i.Name] = i.Index
	}
	out := topo
	out.Interfaces = append([]Interface(nil), topo.Interfaces...)
	for i := range out.Interfaces {
		if n, ok := idx[out.Interfaces[i].Name]; ok {
			out.Interfaces[i].Index = n
		}
	}
	return out
}
