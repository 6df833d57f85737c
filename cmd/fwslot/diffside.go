package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/slots"
	"github.com/fwslot/fwslot/internal/source"
	"github.com/fwslot/fwslot/probe"
	"github.com/fwslot/fwslot/rulediff"
	"github.com/fwslot/fwslot/session"
)

// diffSide is one ruleset a diff compares.
type diffSide struct {
	Spec    string `json:"spec"`
	Label   string `json:"label"`
	Version uint64 `json:"version,omitempty"`
	File    string `json:"file,omitempty"`
	// canon is the side's canonical form (history's, or a file's from
	// its source); nil when it has none.
	canon *rulediff.Ruleset
	// rs and loc are the compiled ruleset and the source locator, loaded
	// for versions only when probes or the nft rendering need them.
	rs  *slots.Ruleset
	loc probe.Locator
}

// sideResolver turns diff arguments into rulesets, reading the target's
// status and history only when an argument needs them.
type sideResolver struct {
	ctx    context.Context
	g      *globals
	t      *session.Target
	status *slots.Status
	// ifaces are the target's interfaces, read by interfaces() when a
	// side is compiled or rendered.
	ifaces []slots.Iface
	// needCompiled loads the compiled form of every side (probes run it).
	needCompiled bool
}

func (r *sideResolver) resolve(spec string) (*diffSide, error) {
	s := &diffSide{Spec: spec}
	switch {
	case spec == "production" || spec == "staging":
		if r.status == nil {
			st, err := r.t.Status(context.Background())
			if err != nil {
				return nil, err
			}
			r.status = st
		}
		info := r.status.Production
		if spec == "staging" {
			info = r.status.Staging
		}
		if info == nil {
			return nil, fmt.Errorf("the %s slot is empty; name a version number or a file instead", spec)
		}
		if err := r.version(s, info.Version); err != nil {
			return nil, err
		}
		s.Label = fmt.Sprintf("%s (version %d)", spec, info.Version)
	case isNumber(spec):
		n, _ := strconv.ParseUint(spec, 10, 64)
		if err := r.version(s, n); err != nil {
			return nil, err
		}
		s.Label = "version " + spec
	default:
		if _, err := os.Stat(spec); err != nil {
			return nil, usagef("diff: %q is not a version number, production, staging or a readable file (%v)", spec, err)
		}
		// Read under the include policy before nft sees anything, and
		// compile exactly what was read, once.
		b, err := readRuleset(r.g, spec)
		if err != nil {
			return nil, err
		}
		ifs, err := r.interfaces()
		if err != nil {
			return nil, err
		}
		rs, err := slots.CompileBundle(r.ctx, b, ifs, nil)
		if err != nil {
			return nil, err
		}
		loc, err := probe.SourceLocator(b)
		if err != nil {
			return nil, err
		}
		s.File, s.rs, s.loc, s.Label = spec, rs, loc, spec
		if c, err := rulediff.FromSource(b.Flat); err == nil {
			s.canon = c
		}
	}
	return s, nil
}

// interfaces returns the target's interfaces, read once.
func (r *sideResolver) interfaces() ([]slots.Iface, error) {
	if r.ifaces == nil {
		ifs, err := slots.Interfaces(r.g.netns)
		if err != nil {
			return nil, err
		}
		r.ifaces = append([]slots.Iface{}, ifs...)
	}
	return r.ifaces, nil
}

func isNumber(s string) bool {
	n, err := strconv.ParseUint(s, 10, 64)
	return err == nil && n > 0
}

// version resolves stored version n: its canonical form when history
// keeps one, and its compiled form when probes need it or there is no
// canonical form to compare.
func (r *sideResolver) version(s *diffSide, n uint64) error {
	if r.t.Store == nil {
		return usagef("no history yet (%s does not exist)", r.g.db)
	}
	if _, err := r.t.Store.Meta(r.t.Key(), n); err != nil {
		if errors.Is(err, history.ErrNotFound) {
			return usageError{err}
		}
		return err
	}
	s.Version = n
	text, ok, err := r.t.Store.Canonical(r.t.Key(), n)
	if err != nil {
		return err
	}
	if ok {
		// A canonical form that does not read back is rendered by nft.
		if c, err := rulediff.ParseCanonical(text); err == nil {
			s.canon = c
		}
	}
	if s.canon == nil || r.needCompiled {
		return r.load(s)
	}
	return nil
}

// load reads a version's compiled form (or, when history holds none,
// compiles its flattened source) and its source locator.
func (r *sideResolver) load(s *diffSide) error {
	if s.rs != nil {
		return nil
	}
	n := s.Version
	v, err := r.t.Store.Get(r.t.Key(), n)
	if err != nil {
		return err
	}
	s.loc = historyLocator(v)
	blob, err := r.t.Store.Compiled(r.t.Key(), n)
	if err != nil {
		return err
	}
	if len(blob) > 0 {
		s.rs, err = slots.Decode(blob)
		return err
	}
	// Compiled from memory: no file a user could swap in between.
	b, err := source.FromText(fmt.Sprintf("/version-%d.nft", n), v.Source)
	if err != nil {
		return fmt.Errorf("version %d: %w", n, err)
	}
	ifs, err := r.interfaces()
	if err != nil {
		return err
	}
	s.rs, err = slots.CompileBundle(r.ctx, b, ifs, nil)
	return err
}

// compare diffs the two sides: in their canonical forms when both have
// one (no nft, no namespace), else as nft renders them in a private
// namespace.
func (r *sideResolver) compare(sides [2]*diffSide) ([]rulediff.Change, error) {
	if sides[0].canon != nil && sides[1].canon != nil {
		changes := rulediff.Compare(sides[0].canon, sides[1].canon)
		if len(changes) == 0 {
			return changes, nil
		}
		// Sources can spell the same kernel objects two ways (a port
		// name, priority 0 for filter): equal compiled forms differ in
		// nothing the kernel runs.
		same, err := r.sameCompiled(sides)
		if err != nil || same {
			return []rulediff.Change{}, err
		}
		return changes, nil
	}
	var rendered [2]*rulediff.Ruleset
	for i, s := range sides {
		if err := r.load(s); err != nil {
			return nil, err
		}
		ifs, err := r.interfaces()
		if err != nil {
			return nil, err
		}
		if rendered[i], err = rulediff.RenderCompiled(r.ctx, s.rs, ifs); err != nil {
			return nil, fmt.Errorf("render %s: %w", s.Label, err)
		}
	}
	return rulediff.Compare(rendered[0], rendered[1]), nil
}

// sameCompiled reports whether both sides compiled to the same kernel
// objects, by the digests of their compiled forms (history's from the
// manifests, no chunk read).
func (r *sideResolver) sameCompiled(sides [2]*diffSide) (bool, error) {
	var digests [2]string
	for i, s := range sides {
		if s.File != "" {
			blob, err := s.rs.Encode()
			if err != nil {
				return false, err
			}
			digests[i] = history.DigestOf(blob)
			continue
		}
		d, ok, err := r.t.Store.CompiledDigest(r.t.Key(), s.Version)
		if err != nil || !ok {
			return false, err // no digest: show the differences
		}
		digests[i] = d
	}
	return digests[0] == digests[1], nil
}
