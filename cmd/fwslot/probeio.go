package main

import (
	"fmt"
	"io"
	"os"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/source"
	"github.com/fwslot/fwslot/probe"
)

// Reading a probe command's inputs (probes, topology, ruleset) and
// writing its report.
// probesFailed is returned when probes ran and some did not pass: exit 1.
type probesFailed struct{ failed, total int }

func (e probesFailed) Error() string {
	return fmt.Sprintf("%d of %d probes failed", e.failed, e.total)
}

// readProbes reads a probe file; an unreadable or empty one is a usage error.
func readProbes(path string) ([]probe.Probe, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, usageError{fmt.Errorf("probes: %w", err)}
	}
	defer f.Close()
	ps, err := probe.Parse(path, f)
	if err != nil {
		return nil, usageError{err}
	}
	if len(ps) == 0 {
		return nil, usagef("%s holds no probes", path)
	}
	return ps, nil
}

// readProbeSet reads a probe file and its topology file (none: the
// default topology).
func readProbeSet(probesFile, topoFile string) ([]probe.Probe, probe.Topology, error) {
	ps, err := readProbes(probesFile)
	if err != nil {
		return nil, probe.Topology{}, err
	}
	topo, err := readTopology(topoFile)
	if err != nil {
		return nil, probe.Topology{}, err
	}
	return ps, topo, nil
}

// readTopology reads a topology file; no path means the default topology.
func readTopology(path string) (probe.Topology, error) {
	if path == "" {
		return probe.Topology{}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return probe.Topology{}, usageError{fmt.Errorf("topology: %w", err)}
	}
	defer f.Close()
	t, err := probe.ParseTopology(path, f)
	if err != nil {
		return probe.Topology{}, usageError{err}
	}
	return t, nil
}

// readRuleset reads a ruleset file and its includes under the include
// policy every command applies: regular files in the file's own directory
// or an --include-dir, symbolic links resolved. What it returns is what
// gets compiled, hashed and shown.
func readRuleset(g *globals, file string) (*source.Bundle, error) {
	return source.Load(file, source.Options{IncludeDirs: g.includeDirs})
}

// locatorFor maps the rules of a ruleset file to their source lines.
func locatorFor(g *globals, file string) (probe.Locator, error) {
	b, err := readRuleset(g, file)
	if err != nil {
		return nil, err
	}
	return probe.SourceLocator(b)
}

// historyLocator rebuilds a version's source bundle from history.
func historyLocator(v history.Version) probe.Locator {
	if len(v.Files) == 0 {
		return nil
	}
	b := &source.Bundle{Main: v.Files[0].Path, Flat: v.Source, Hash: v.Hash}
	for _, f := range v.Files {
		b.Files = append(b.Files, source.File{Path: f.Path, Content: f.Content})
	}
	loc, err := probe.SourceLocator(b)
	if err != nil {
		return nil
	}
	return loc
}

// writeReport writes rep as text or JSON (and as JUnit to junit if set),
// and returns probesFailed when a probe did not pass.
func writeReport(g *globals, w io.Writer, rep probe.Report, junit, suite string) error {
	if junit != "" {
		f, err := os.Create(junit)
		if err != nil {
			return fmt.Errorf("junit report: %w", err)
		}
		err = probe.WriteJUnit(f, suite, rep)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("junit report %s: %w", junit, err)
		}
	}
	if g.json {
		if err := printJSON(w, rep); err != nil {
			return err
		}
	} else if err := probe.WriteText(w, rep); err != nil {
		return err
	}
	if !rep.OK() {
		return probesFailed{rep.Failed, len(rep.Results)}
	}
	return nil
}
