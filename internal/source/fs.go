package source

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// fileSystem is where includes are resolved: the real one for Load, and the
// files of a bundle for RuleLocations (a bundle holds every file its includes
// found, so resolving against it repeats what Load did).
type fileSystem interface {
	stat(path string) (size int64, mode os.FileMode, err error)
	readFile(path string) ([]byte, error)
	// glob returns the regular files matching pattern as glob(3) does (no
	// match for a leading dot unless the pattern has one), sorted; a pattern
	// without wildcards returns the file when it exists.
	glob(pattern string) ([]string, error)
}

type osFS struct{}

func (osFS) stat(path string) (int64, os.FileMode, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, 0, err
	}
	return fi.Size(), fi.Mode(), nil
}

func (osFS) readFile(path string) ([]byte, error) { return os.ReadFile(path) }

func (osFS) glob(pattern string) ([]string, error) {
	if !isWildcard(pattern) {
		if _, err := os.Stat(pattern); errors.Is(err, os.ErrNotExist) {
			return nil, nil // no match; the caller reports it
		} else if err != nil {
			return nil, err
		}
		return []string{pattern}, nil
	}
	matches, err := filepath.Glob(goPattern(pattern))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range matches {
		if hiddenMatch(pattern, m) {
			continue
		}
		if fi, err := os.Stat(m); err == nil && fi.IsDir() {
			continue // nft skips directories a pattern matches
		}
		out = append(out, m)
	}
	sort.Strings(out)
	return out, nil
}

// memFS is the files of a bundle.
type memFS map[string]File

func (m memFS) stat(path string) (int64, os.FileMode, error) {
	f, ok := m[path]
	if !ok {
		return 0, 0, &os.PathError{Op: "stat", Path: path, Err: os.ErrNotExist}
	}
	return int64(len(f.Content)), f.Mode, nil
}

func (m memFS) readFile(path string) ([]byte, error) {
	f, ok := m[path]
	if !ok {
		return nil, &os.PathError{Op: "open", Path: path, Err: os.ErrNotExist}
	}
	return f.Content, nil
}

func (m memFS) glob(pattern string) ([]string, error) {
	if !isWildcard(pattern) {
		if _, ok := m[pattern]; ok {
			return []string{pattern}, nil
		}
		return nil, nil
	}
	gp := goPattern(pattern)
	var out []string
	for p := range m {
		ok, err := filepath.Match(gp, p)
		if err != nil {
			return nil, err
		}
		if ok && !hiddenMatch(pattern, p) {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out, nil
}

// goPattern turns glob(3)'s negated class [!...] into Go's [^...].
func goPattern(p string) string { return strings.ReplaceAll(p, "[!", "[^") }

// hiddenMatch reports whether a wildcard component of pattern matched a name
// starting with a dot, which glob(3) does not allow.
func hiddenMatch(pattern, match string) bool {
	pc := strings.Split(filepath.Clean(pattern), "/")
	mc := strings.Split(filepath.Clean(match), "/")
	if len(pc) != len(mc) {
		return false
	}
	for i := range pc {
		if strings.HasPrefix(mc[i], ".") && !strings.HasPrefix(pc[i], ".") {
			return true
		}
	}
	return false
}
