// Package source reads an nft ruleset file with every file it includes,
// resolving includes exactly as `nft -I DIR -f FILE` does when run in DIR,
// the directory of FILE. It flattens the result into one text and maps the
// rules of each chain back to their source lines.
package source

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// DefaultMaxBytes is the default limit on the total size of a bundle:
// 32 MiB, room for a 100k-rule ruleset (~6 MB) or a 1M-element set (~15 MB).
const DefaultMaxBytes = 32 << 20

// maxDepth is nft's limit on nested files, the main file included.
const maxDepth = 16

// defaultIncludePath is nft's built-in include directory, searched before -I.
const defaultIncludePath = "/etc"

// Bundle is a ruleset file together with every file it includes.
type Bundle struct {
	Main  string // absolute path of the main file
	Files []File // every file read, main first, in order of first inclusion
	Flat  string // flattened text: each include statement replaced by the included text
	Hash  string // hex sha256 of Flat

	// sites are the files each include statement read, as Load resolved
	// them; nil in a bundle rebuilt from history.
	sites map[siteKey]includeSite
}

// includeSite is what an include statement read: the offset of its
// include keyword, and the files, in nft's order.
type includeSite struct {
	start int
	paths []string
}

// siteKey is an include statement: the file it is in and the offset of its
// file name token.
type siteKey struct {
	file string
	off  int
}

// File is one file of a bundle.
type File struct {
	Path    string
	Content []byte
	Mode    os.FileMode
}

// Options limit what Load accepts.
type Options struct {
	// MaxBytes limits the total size of all files (and of the flattened
	// text); zero means DefaultMaxBytes.
	MaxBytes int64
	// IncludeDirs are directories the files of the ruleset may be in
	// besides the main file's own directory (and below), which is always
	// allowed. Every file, the main file too, must be a regular file
	// inside one of them once symbolic links are resolved.
	IncludeDirs []string
}

// Load reads the ruleset at path and everything it includes.
func Load(path string, opts Options) (*Bundle, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("load ruleset %s: %w", path, err)
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	pol, err := newPolicy(filepath.Dir(abs), opts.IncludeDirs)
	if err != nil {
		return nil, &Error{File: path, Msg: err.Error()}
	}
	raw := path
	if !filepath.IsAbs(raw) {
		wd, err := os.Getwd()
		if err != nil {
			return nil, fmt.Errorf("load ruleset %s: %w", path, err)
		}
		raw = wd + "/" + path
	}
	if err := checkDotDot(raw); err != nil {
		return nil, &Error{File: path, Msg: err.Error()}
	}
	l := &loader{fs: osFS{}, dir: filepath.Dir(abs), opts: opts, policy: pol, seen: map[string]int{}, sites: map[siteKey]includeSite{}}
	var flat strings.Builder
	if err := l.load(abs, nil, &flat); err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(flat.String()))
	return &Bundle{Main: abs, Files: l.files, Flat: flat.String(), Hash: hex.EncodeToString(sum[:]), sites: l.sites}, nil
}

// frame is one file on the include stack and the include that opened it.
type frame struct {
	path string
	site *token // the include's file name token; nil for the main file
}

type loader struct {
	fs     fileSystem
	dir    string
	opts   Options
	policy *policy // nil: no checks (a bundle's own files)
	files  []File
	seen   map[string]int // path -> index in files
	total  int64
	stack  []frame
	toks   []token // expanded token stream, when wanted
	keep   bool    // collect toks
	// sites holds what each include statement read, resolved once.
	sites      map[siteKey]includeSite
	inclusions int
}

// read returns the content of path, reading each file once. The file must
// pass the policy: a regular file inside the allowed directories once
// symbolic links are resolved, read from the file opened there, never more
// than the size limit.
func (l *loader) read(path string, site *token) ([]byte, error) {
	if i, ok := l.seen[path]; ok {
		return l.files[i].Content, nil
	}
	where := func(msg string) error {
		if site == nil {
			return &Error{File: path, Msg: msg}
		}
		return site.errorf("%s", msg)
	}
	real, err := l.fs.realPath(path)
	if err != nil {
		return nil, where(fmt.Sprintf("read %s: %v", path, err))
	}
	if l.policy != nil && !l.policy.allows(real) {
		if site == nil {
			return nil, where(fmt.Sprintf("the ruleset is %s, outside the allowed directories (%s); give its real path or add its directory with --include-dir", real, l.policy))
		}
		return nil, where(fmt.Sprintf("include %s reads %s, outside the allowed directories (%s); move the file there, fix the include, or allow its directory with --include-dir", site.text, real, l.policy))
	}
	data, mode, err := l.fs.readRegular(real, l.opts.MaxBytes-l.total)
	switch {
	case errors.Is(err, errIsDir):
		return nil, where(fmt.Sprintf("%s is a directory; include its files with a pattern such as \"%s/*.nft\"", path, filepath.Base(path)))
	case errors.Is(err, errNotRegular):
		return nil, where(fmt.Sprintf("%s is %s, not a regular file; rulesets include only regular files", path, fileKind(mode)))
	case errors.Is(err, errTooLarge):
		return nil, where(fmt.Sprintf("%s makes the ruleset larger than %d bytes; split it or raise the limit", path, l.opts.MaxBytes))
	case err != nil:
		return nil, where(fmt.Sprintf("read %s: %v", path, err))
	}
	l.total += int64(len(data))
	if err := checkText(path, data); err != nil {
		return nil, err
	}
	l.seen[path] = len(l.files)
	l.files = append(l.files, File{Path: path, Content: data, Mode: mode})
	return data, nil
}

// load appends the flattened text of path to flat, and its tokens to l.toks.
func (l *loader) load(path string, site *token, flat *strings.Builder) error {
	for i, f := range l.stack {
		if f.path == path {
			chain := make([]string, 0, len(l.stack)-i)
			for _, g := range l.stack[i+1:] {
				chain = append(chain, fmt.Sprintf("%s:%d includes %s", g.site.file, g.site.line, g.path))
			}
			chain = append(chain, fmt.Sprintf("%s:%d includes %s", site.file, site.line, path))
			return site.errorf("include loop: %s; remove one of these includes", strings.Join(chain, ", "))
		}
	}
	if len(l.stack) >= maxDepth {
		return site.errorf("includes nested more than %d files deep (nft's limit); flatten some of them", maxDepth)
	}
	data, err := l.read(path, site)
	if err != nil {
		return err
	}
	// An element list is one token: a big set costs one, not one per
	// element (nft has no include inside an element list).
	toks, err := lexWith(path, data, true, !l.keep && !bytes.Contains(data, []byte("include")))
	if err != nil {
		return err
	}
	l.stack = append(l.stack, frame{path: path, site: site})
	defer func() { l.stack = l.stack[:len(l.stack)-1] }()

	copied := 0 // bytes of data already in flat
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		if t.kind != tWord || t.text != "include" {
			if l.keep {
				l.toks = append(l.toks, t)
			}
			continue
		}
		if i+1 == len(toks) || toks[i+1].kind != tString {
			return t.errorf("include needs a file name in double quotes, like include \"rules.d/*.nft\"")
		}
		name := &toks[i+1]
		if i+2 == len(toks) || !isSep(toks[i+2]) {
			return name.errorf("include needs a newline or ; after the file name")
		}
		sep := toks[i+2]
		key := siteKey{file: path, off: name.off}
		rs, ok := l.sites[key]
		if !ok {
			rs.start = t.off
			if rs.paths, err = l.resolve(strings.Trim(name.text, `"`), name); err != nil {
				return err
			}
			if l.sites != nil {
				l.sites[key] = rs
			}
		}
		paths := rs.paths
		if l.inclusions += len(paths); l.inclusions > MaxIncludes {
			return name.errorf("the ruleset includes files more than %d times in all; include each file once", MaxIncludes)
		}
		// nft reads the included text after the include's separator, and
		// joins an included file's unterminated last line with what follows.
		flat.Write(data[copied:t.off])
		flat.Write(data[name.end:sep.end])
		copied = sep.end
		if l.keep {
			l.toks = append(l.toks, sep)
		}
		for _, p := range paths {
			if err := l.separate(flat, p, name); err != nil {
				return err
			}
			if err := l.load(p, name, flat); err != nil {
				return err
			}
		}
		if f := flat.String(); f != "" && f[len(f)-1] != '\n' && i+3 < len(toks) && toks[i+3].kind == tWord && toks[i+3].text == "include" {
			return toks[i+3].errorf("nft joins the last line of the file included before (it does not end with a newline) with this include; add a newline at the end of %s", paths[len(paths)-1])
		}
		if copied < len(data) && !isSpace(data[copied]) {
			l.separateByte(flat, data[copied])
		}
		if int64(flat.Len()) > l.opts.MaxBytes {
			return name.errorf("the flattened ruleset is larger than %d bytes; include fewer copies or raise the limit", l.opts.MaxBytes)
		}
		i += 2 // the file name and the separator
	}
	flat.Write(data[copied:])
	return nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// separate keeps the end of flat and the start of the file at path apart, as
// nft reads separate files in separate buffers and never joins two tokens.
func (l *loader) separate(flat *strings.Builder, path string, site *token) error {
	data, err := l.read(path, site)
	if err != nil {
		return err
	}
	if len(data) > 0 {
		l.separateByte(flat, data[0])
	}
	return nil
}

// separateByte writes a space when flat ends and next begins with non-space.
func (l *loader) separateByte(flat *strings.Builder, next byte) {
	if f := flat.String(); f != "" && !isSpace(f[len(f)-1]) && !isSpace(next) {
		flat.WriteByte(' ')
	}
}

// searchIncludePath reports whether nft looks name up in the include path
// list rather than relative to the working directory, as nft's
// search_in_include_path does.
func searchIncludePath(name string) bool {
	return !strings.HasPrefix(name, "./") && !strings.HasPrefix(name, "../") && !strings.HasPrefix(name, "/")
}

func isWildcard(name string) bool { return strings.ContainsAny(name, "*?[") }

// resolve returns the files an include of name reads, in nft's order.
func (l *loader) resolve(name string, site *token) ([]string, error) {
	if name == "" {
		return nil, site.errorf("include of an empty file name")
	}
	if strings.Contains(name, `\`) {
		return nil, site.errorf("include %q: a backslash in an include is refused (nft's glob and fwslot's read it differently); rename the file or use a pattern without it", name)
	}
	var paths, searched []string
	wild := isWildcard(name)
	if !searchIncludePath(name) {
		p := name
		if !filepath.IsAbs(p) {
			p = l.dir + "/" + p // relative to nft's working directory
		}
		if l.policy != nil {
			if err := checkDotDot(p); err != nil {
				return nil, site.errorf("include %q: %v", name, err)
			}
		}
		p = filepath.Clean(p)
		m, err := l.fs.glob(p)
		if err != nil {
			return nil, site.errorf("include %q: %v", name, err)
		}
		paths, searched = m, []string{p}
	} else {
		// nft searches its built-in directory, then -I DIR. A plain name is
		// the first one found. A pattern is expanded in every directory, and
		// nft pushes each match on a stack, so the last directory's matches
		// come first (each directory's in sorted order).
		dirs := []string{defaultIncludePath, l.dir}
		if wild {
			slices.Reverse(dirs)
		}
		for _, d := range dirs {
			if l.policy != nil {
				if err := checkDotDot(d + "/" + name); err != nil {
					return nil, site.errorf("include %q: %v", name, err)
				}
			}
			p := filepath.Join(d, name)
			searched = append(searched, p)
			m, err := l.fs.glob(p)
			if err != nil {
				return nil, site.errorf("include %q: %v", name, err)
			}
			paths = append(paths, m...)
			if !wild && len(m) > 0 {
				break
			}
		}
	}
	if len(paths) == 0 && !wild {
		return nil, site.errorf("include %q: file not found (looked for %s); create it or fix the name (a name without ./ or / is searched in %s and then %s)",
			name, strings.Join(searched, ", "), defaultIncludePath, l.dir)
	}
	return paths, nil
}
