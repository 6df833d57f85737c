package source

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// MaxIncludes is how many times a ruleset may include files in all, counting
// every file a pattern matches and every repeated inclusion: nft reads a
// file again each time it is included, so a few small files including each
// other in a fan-out would cost hours.
const MaxIncludes = 1024

// pseudoFS are the directories whose files describe the system, not
// rulesets: a ruleset never includes them (their files look regular and
// empty to stat, and hold environments, memory and keys).
var pseudoFS = []string{"/proc", "/sys", "/dev"}

// policy is the include policy every command applies: the files of a
// ruleset (its main file too) must be regular files inside the main file's
// directory or an include directory, once symbolic links are resolved.
type policy struct {
	names []string // the directories as the user gave them, for messages
	dirs  []string // their resolved paths
}

// newPolicy allows mainDir and dirs (and below), resolved.
func newPolicy(mainDir string, dirs []string) (*policy, error) {
	p := &policy{}
	for i, d := range append([]string{mainDir}, dirs...) {
		what := "include directory"
		if i == 0 {
			what = "directory"
		}
		a, err := filepath.Abs(d)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", what, d, err)
		}
		r, err := filepath.EvalSymlinks(a)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", what, d, err)
		}
		p.names = append(p.names, a)
		p.dirs = append(p.dirs, r)
	}
	return p, nil
}

// allows reports whether the resolved path real is in an allowed directory.
func (p *policy) allows(real string) bool {
	for _, d := range pseudoFS {
		if within(real, d) {
			return false
		}
	}
	for _, d := range p.dirs {
		if within(real, d) {
			return true
		}
	}
	return false
}

// within reports whether path is dir or below it.
func within(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, strings.TrimSuffix(dir, "/")+"/")
}

func (p *policy) String() string { return strings.Join(p.names, ", ") }

// checkDotDot refuses a path whose .. would be resolved differently by the
// kernel and by cleaning the text: "sub/../x" with sub a symbolic link
// names x in the directory above sub's target, not the x beside sub. raw
// is the path as written, joined to its directory without cleaning.
func checkDotDot(raw string) error {
	comps := strings.Split(raw, "/")
	last := -1
	for i, c := range comps {
		if c == ".." {
			last = i
		}
	}
	if last < 0 {
		return nil
	}
	prefix := strings.Join(comps[:last+1], "/")
	if isWildcard(prefix) {
		return errors.New("a wildcard before .. is not supported: write the directory without the dots")
	}
	kernel, err := filepath.EvalSymlinks(prefix)
	if errors.Is(err, os.ErrNotExist) {
		return nil // nothing there to read; the include reports it
	} else if err != nil {
		return err
	}
	lexical, err := filepath.EvalSymlinks(filepath.Clean(prefix))
	if err != nil || lexical != kernel {
		return fmt.Errorf("%s goes through a symbolic link before \"..\", so it is %s, not %s: write the path without the dots", prefix, kernel, filepath.Clean(prefix))
	}
	return nil
}
