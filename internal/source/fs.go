package source

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// fileSystem is where includes are resolved: the real one for Load, and the
// files of a bundle for RuleLocations (a bundle holds every file its includes
// found, so resolving against it repeats what Load did).
type fileSystem interface {
	// realPath returns path with every symbolic link resolved, component
	// by component, as the kernel resolves it.
	realPath(path string) (string, error)
	// readRegular reads the regular file at the resolved path real, at
	// most limit bytes; anything else (a directory, device, FIFO, socket,
	// a larger file) is an error that says so.
	readRegular(real string, limit int64) ([]byte, os.FileMode, error)
	// glob returns the regular files matching pattern as glob(3) does (no
	// match for a leading dot unless the pattern has one), sorted; a pattern
	// without wildcards returns the file when it exists.
	glob(pattern string) ([]string, error)
}

// errTooLarge and errNotRegular are readRegular's refusals.
var (
	errTooLarge   = errors.New("file too large")
	errNotRegular = errors.New("not a regular file")
	errIsDir      = errors.New("is a directory")
)

type osFS struct{}

func (osFS) realPath(path string) (string, error) { return filepath.EvalSymlinks(path) }

// readRegular opens real without following a final symlink and without
// blocking (a FIFO does not hang), refuses anything but a regular file,
// checks that the file opened is the one at real (a directory swapped for a
// symlink between resolving and opening is caught), and reads at most
// limit bytes, whatever stat says (files in /proc say 0).
func (osFS) readRegular(real string, limit int64) ([]byte, os.FileMode, error) {
	// A look before opening: opening a device or a socket is refused
	// without ever opening it; the open file is checked again below.
	if fi, err := os.Lstat(real); err != nil {
		return nil, 0, err
	} else if fi.IsDir() {
		return nil, fi.Mode(), errIsDir
	} else if !fi.Mode().IsRegular() {
		return nil, fi.Mode(), fmt.Errorf("%w (%s)", errNotRegular, fileKind(fi.Mode()))
	}
	f, err := os.OpenFile(real, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, 0, fmt.Errorf("%s changed into a symbolic link while being read", real)
		}
		return nil, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	if fi.IsDir() {
		return nil, fi.Mode(), errIsDir
	}
	if !fi.Mode().IsRegular() {
		return nil, fi.Mode(), fmt.Errorf("%w (%s)", errNotRegular, fileKind(fi.Mode()))
	}
	if fi.Size() > limit {
		return nil, fi.Mode(), errTooLarge
	}
	opened, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", f.Fd()))
	if err != nil {
		return nil, 0, fmt.Errorf("check which file was opened: %w", err)
	}
	if opened != real {
		return nil, 0, fmt.Errorf("%s resolved to %s while being read; a directory on the way changed", real, opened)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, 0, err
	}
	if int64(len(data)) > limit {
		return nil, fi.Mode(), errTooLarge
	}
	return data, fi.Mode(), nil
}

// fileKind names the type of a file that is not a regular file.
func fileKind(m os.FileMode) string {
	switch {
	case m&os.ModeNamedPipe != 0:
		return "a FIFO"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeCharDevice != 0:
		return "a character device"
	case m&os.ModeDevice != 0:
		return "a block device"
	case m&os.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "not a regular file"
}

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

func (m memFS) realPath(path string) (string, error) {
	if _, ok := m[path]; !ok {
		return "", &os.PathError{Op: "stat", Path: path, Err: os.ErrNotExist}
	}
	return path, nil
}

func (m memFS) readRegular(path string, limit int64) ([]byte, os.FileMode, error) {
	f, ok := m[path]
	if !ok {
		return nil, 0, &os.PathError{Op: "open", Path: path, Err: os.ErrNotExist}
	}
	if int64(len(f.Content)) > limit {
		return nil, f.Mode, errTooLarge
	}
	return f.Content, f.Mode, nil
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
