package source

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// Copy is a private copy of a bundle for nft to compile: exactly the files
// Load read, with their content as read, and each include statement
// pointing at the copies of exactly the files Load resolved it to. nft
// never opens the user's paths, so what it compiles is what was hashed.
type Copy struct {
	// Main is the copy of the main file: run nft -f Main.
	Main string
	// names maps each private path to the user's path (or include name).
	names *strings.Replacer
}

// UserPaths rewrites nft's output so the private paths it names read as the
// user's files (file:line points into the user's file).
func (c *Copy) UserPaths(s string) string { return c.names.Replace(s) }

// WriteCopy writes the private copy into dir, which must be a new directory
// only the caller can read (os.MkdirTemp makes one). Each file is dir/fN.nft
// (N its index in Files); the files of include statement K are hard links
// dir/sK/NNNNNN.nft in nft's order, included as "dir/sK/*.nft", so nft
// reads each include as it would have read the user's (in its own buffer,
// in order, an empty pattern being no error).
func (b *Bundle) WriteCopy(dir string) (*Copy, error) {
	if b.sites == nil && len(b.Files) > 1 {
		return nil, errors.New("private copy of a ruleset: the bundle has no include resolutions (it was not read by Load)")
	}
	index := map[string]int{}
	for i, f := range b.Files {
		index[f.Path] = i
	}
	private := func(i int) string { return filepath.Join(dir, fmt.Sprintf("f%d.nft", i)) }
	var pairs []string
	for i, f := range b.Files {
		pairs = append(pairs, private(i), f.Path)
	}
	// The sites of each file in order of their offset; the numbering of
	// sites is arbitrary but fixed here.
	perFile := map[string][]siteKey{}
	for k := range b.sites {
		perFile[k.file] = append(perFile[k.file], k)
	}
	site := 0
	for i, f := range b.Files {
		keys := perFile[f.Path]
		sort.Slice(keys, func(a, b int) bool { return keys[a].off < keys[b].off })
		var out strings.Builder
		copied := 0
		for _, k := range keys {
			s := b.sites[k]
			end := k.off + 1 + strings.IndexByte(string(f.Content[k.off+1:]), '"') + 1
			if s.start < copied || s.start >= k.off || f.Content[k.off] != '"' || end <= k.off+1 {
				return nil, fmt.Errorf("private copy of %s: no include statement at offset %d", f.Path, k.off)
			}
			sdir := filepath.Join(dir, fmt.Sprintf("s%d", site))
			site++
			if err := os.Mkdir(sdir, 0o700); err != nil {
				return nil, fmt.Errorf("private copy of %s: %w", f.Path, err)
			}
			for n, p := range s.paths {
				j, ok := index[p]
				if !ok {
					return nil, fmt.Errorf("private copy of %s: included file %s was not read", f.Path, p)
				}
				link := filepath.Join(sdir, fmt.Sprintf("%06d.nft", n))
				pairs = append(pairs, link, p)
				// The link is made before its target is written: fine,
				// both name one inode once the target exists.
				if err := writeOnce(private(j)); err != nil {
					return nil, err
				}
				if err := os.Link(private(j), link); err != nil {
					return nil, fmt.Errorf("private copy of %s: %w", f.Path, err)
				}
			}
			pattern := filepath.Join(sdir, "*.nft")
			pairs = append(pairs, pattern, strings.Trim(string(f.Content[k.off:end]), `"`))
			out.Write(f.Content[copied:s.start])
			fmt.Fprintf(&out, "include %q", pattern)
			// Keep line numbers: a newline the statement spanned (a line
			// continuation) becomes a line continuation.
			out.WriteString(strings.Repeat(" \\\n", strings.Count(string(f.Content[s.start:end]), "\n")))
			copied = end
		}
		out.Write(f.Content[copied:])
		if err := writeContent(private(i), out.String()); err != nil {
			return nil, err
		}
	}
	return &Copy{Main: private(0), names: strings.NewReplacer(pairs...)}, nil
}

// writeOnce creates an empty private file at p unless it exists, so a hard
// link can name it before its content is written.
func writeOnce(p string) error {
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("private copy: %w", err)
	}
	return f.Close()
}

// writeContent writes content into the private file p (created or already
// made by writeOnce), in place so hard links to it see it.
func writeContent(p, content string) error {
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("private copy: %w", err)
	}
	_, err = f.WriteString(content)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("private copy: %w", err)
	}
	return nil
}

// FromText makes a bundle of a single ruleset text that is not read from
// disk (a version's flattened source from history), as if it were the
// file name. An include in it is refused: it could only name files that
// are not part of it.
func FromText(name, text string) (*Bundle, error) {
	if !filepath.IsAbs(name) {
		return nil, fmt.Errorf("ruleset text %s: the name must be absolute", name)
	}
	fs := memFS{name: File{Path: name, Content: []byte(text), Mode: 0o600}}
	l := &loader{fs: fs, dir: filepath.Dir(name), opts: Options{MaxBytes: DefaultMaxBytes}, seen: map[string]int{}, sites: map[siteKey]includeSite{}}
	var flat strings.Builder
	if err := l.load(name, nil, &flat); err != nil {
		return nil, err
	}
	if len(l.files) != 1 {
		return nil, fmt.Errorf("ruleset text %s includes other files; a flattened ruleset includes none", name)
	}
	sum := sha256.Sum256([]byte(flat.String()))
	return &Bundle{Main: name, Files: l.files, Flat: flat.String(), Hash: hex.EncodeToString(sum[:]), sites: l.sites}, nil
}
