package source

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzRoot is where the fuzzed files live in the in-memory file system; no
// real directory has this name.
const fuzzRoot = "/fwslot-fuzz-root"

// FuzzLoad runs the include and define reader on three in-memory files (a
// main file, a file beside it and one in a subdirectory) and the rule
// locator on what it reads. Any input must end in a bundle or a *Error,
// within the size limit, and never panic or loop.
func FuzzLoad(f *testing.F) {
	for _, dir := range []string{"testdata/nested", "testdata/sets", "testdata/commands"} {
		var files []string
		err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
			if err == nil && !fi.IsDir() {
				files = append(files, p)
			}
			return err
		})
		if err != nil {
			f.Fatal(err)
		}
		seeds := make([]string, 3)
		for i, p := range files {
			data, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			if strings.HasSuffix(p, "main.nft") {
				seeds[0] = string(data)
			} else if seeds[1] == "" {
				seeds[1] = string(data)
			} else if i < len(files) {
				seeds[2] += string(data)
			}
		}
		f.Add(seeds[0], seeds[1], seeds[2])
	}
	f.Add("include \"./a.nft\"\ninclude \"d/*.nft\"\ntable inet t { chain c { $X } }\n", "define X = accept\n", "include \"../a.nft\"\n")
	f.Add("include \"./main.nft\"\n", "", "")
	f.Add("include \"a.nft\";include \"a.nft\";include \"a.nft\"\n", "include \"d/b.nft\";include \"d/b.nft\"\n", "add rule inet t c accept\n")
	f.Fuzz(func(t *testing.T, main, a, b string) {
		const maxBytes = 1 << 20
		fs := memFS{
			fuzzRoot + "/main.nft": {Path: fuzzRoot + "/main.nft", Content: []byte(main), Mode: 0o600},
			fuzzRoot + "/a.nft":    {Path: fuzzRoot + "/a.nft", Content: []byte(a), Mode: 0o600},
			fuzzRoot + "/d/b.nft":  {Path: fuzzRoot + "/d/b.nft", Content: []byte(b), Mode: 0o600},
		}
		// The in-memory files need no policy (no links, no devices): the
		// fuzzer aims at the lexer, includes and their bounds.
		l := &loader{fs: fs, dir: fuzzRoot, opts: Options{MaxBytes: maxBytes},
			seen: map[string]int{}, sites: map[siteKey]includeSite{}, keep: true}
		var flat strings.Builder
		err := l.load(fuzzRoot+"/main.nft", nil, &flat)
		if err != nil {
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("error %v (%T) is not a *source.Error", err, err)
			}
			return
		}
		if flat.Len() > maxBytes {
			t.Fatalf("flattened %d bytes past the %d limit", flat.Len(), maxBytes)
		}
		p := &ruleParser{toks: l.toks, out: map[ChainKey][]Location{}}
		if err := p.top(); err != nil {
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("rule locations: error %v (%T) is not a *source.Error", err, err)
			}
		}
	})
}
