package source

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// writeTree writes files (relative names) under a new temporary directory.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, files)
	return dir
}

// writeFiles writes files (relative names, mode 0640) under dir, making
// the directories they need.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
	}
}

// loadTree writes files under a new temporary directory and loads its
// main.nft with default options, failing the test on an error.
func loadTree(t *testing.T, files map[string]string) (string, *Bundle) {
	t.Helper()
	dir := writeTree(t, files)
	b, err := Load(filepath.Join(dir, "main.nft"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	return dir, b
}

func TestLoad(t *testing.T) {
	deep := map[string]string{}
	for i := 0; i < 20; i++ {
		deep[fmt.Sprintf("f%d.nft", i)] = fmt.Sprintf("include \"f%d.nft\"\n", i+1)
	}
	deep["f20.nft"] = "add table ip t\n"
	deep["main.nft"] = "include \"f0.nft\"\n"
	tests := []struct {
		name      string
		files     map[string]string
		opts      Options
		wantFiles []string // relative to the directory; "" means none checked
		wantFlat  string
		wantErr   string // with "DIR" for the directory
	}{
		{
			name:      "single file",
			files:     map[string]string{"main.nft": "add table ip t\n"},
			wantFiles: []string{"main.nft"},
			wantFlat:  "add table ip t\n",
		},
		{
			name: "glob in block, sorted, hidden skipped, empty glob, nested",
			files: map[string]string{
				"main.nft":          "table ip t {\n\tchain c {\n\t\tinclude \"r.d/*.nft\"\n\t\tinclude \"none/*.nft\"\n\t}\n}\n",
				"r.d/b.nft":         "tcp dport 2 accept\n",
				"r.d/a.nft":         "include \"./lib/x.nft\" # the x rule\n",
				"r.d/.hidden.nft":   "garbage\n",
				"r.d/dir.nft/z.nft": "garbage\n",
				"lib/x.nft":         "tcp dport 1 accept\n",
			},
			wantFiles: []string{"main.nft", "r.d/a.nft", "lib/x.nft", "r.d/b.nft"},
			wantFlat:  "table ip t {\n\tchain c {\n\t\t\n # the x rule\ntcp dport 1 accept\ntcp dport 2 accept\n\t\t\n\t}\n}\n",
		},
		{
			name: "included once per include, listed once",
			files: map[string]string{
				"main.nft": "include \"./x.nft\"\ninclude \"../" + "DIRBASE/x.nft\";accept\n",
				"x.nft":    "add table ip t\n",
			},
			wantFiles: []string{"main.nft", "x.nft"},
			wantFlat:  "\nadd table ip t\n; add table ip t\naccept\n",
		},
		{
			name: "unterminated file joins with what follows",
			files: map[string]string{
				"main.nft": "add table ip t\nadd chain ip t c\ninclude \"./y.nft\";accept\n",
				"y.nft":    "add rule ip t c tcp dport 22",
			},
			wantFiles: []string{"main.nft", "y.nft"},
			wantFlat:  "add table ip t\nadd chain ip t c\n; add rule ip t c tcp dport 22 accept\n",
		},
		{
			name: "unterminated file before an include",
			files: map[string]string{
				"main.nft": "include \"./y.nft\"\ninclude \"./y.nft\"\n",
				"y.nft":    "add table ip t",
			},
			wantErr: "DIR/main.nft:2:1: nft joins the last line of the file included before",
		},
		{
			name:      "comments and strings are not includes",
			files:     map[string]string{"main.nft": "# include \"x\"\ntable ip t { comment \"include x\"; }\n"},
			wantFiles: []string{"main.nft"},
			wantFlat:  "# include \"x\"\ntable ip t { comment \"include x\"; }\n",
		},
		{
			name:    "missing include",
			files:   map[string]string{"main.nft": "add table ip t\n  include \"nope.nft\"\n"},
			wantErr: "DIR/main.nft:2:11: include \"nope.nft\": file not found (looked for /etc/nope.nft, DIR/nope.nft)",
		},
		{
			name:    "missing relative include",
			files:   map[string]string{"main.nft": "include \"./nope.nft\"\n"},
			wantErr: "DIR/main.nft:1:9: include \"./nope.nft\": file not found (looked for DIR/nope.nft)",
		},
		{
			name: "loop",
			files: map[string]string{
				"main.nft": "include \"a.nft\"\n",
				"a.nft":    "\ninclude \"b.nft\"\n",
				"b.nft":    "include \"./a.nft\"\n",
			},
			wantErr: "DIR/b.nft:1:9: include loop: DIR/a.nft:2 includes DIR/b.nft, DIR/b.nft:1 includes DIR/a.nft; remove one of these includes",
		},
		{
			name:    "self loop",
			files:   map[string]string{"main.nft": "include \"main.nft\"\n"},
			wantErr: "include loop: DIR/main.nft:1 includes DIR/main.nft",
		},
		{
			name:    "too deep",
			files:   deep,
			wantErr: "nested more than 16 files deep",
		},
		{
			name:    "NUL byte",
			files:   map[string]string{"main.nft": "include \"x.nft\"\n", "x.nft": "add table\n ip \x00t\n"},
			wantErr: "DIR/x.nft:2:5: not a text file: a NUL byte",
		},
		{
			name:    "invalid UTF-8",
			files:   map[string]string{"main.nft": "add table ip t \xff\xfe\n"},
			wantErr: "DIR/main.nft:1:16: not a text file: invalid UTF-8 (byte 0xff)",
		},
		{
			name:    "too large",
			files:   map[string]string{"main.nft": "include \"x.nft\"\n", "x.nft": strings.Repeat("# padding\n", 10)},
			opts:    Options{MaxBytes: 50},
			wantErr: "DIR/main.nft:1:9: DIR/x.nft makes the ruleset larger than 50 bytes",
		},
		{
			name:    "outside allowed dirs",
			files:   map[string]string{"main.nft": "include \"/etc/hostname\"\n"},
			wantErr: "DIR/main.nft:1:9: include \"/etc/hostname\" reads /etc/hostname, outside the allowed directories (DIR)",
		},
		{
			name:      "inside allowed dirs",
			files:     map[string]string{"main.nft": "include \"sub/x.nft\"\n", "sub/x.nft": "add table ip t\n"},
			opts:      Options{IncludeDirs: []string{"DIR/sub"}},
			wantFiles: []string{"main.nft", "sub/x.nft"},
			wantFlat:  "\nadd table ip t\n",
		},
		{
			name:    "unquoted include",
			files:   map[string]string{"main.nft": "include x.nft\n"},
			wantErr: "DIR/main.nft:1:1: include needs a file name in double quotes",
		},
		{
			name:    "include without separator",
			files:   map[string]string{"main.nft": "table ip t { include \"x.nft\" }\n", "x.nft": "\n"},
			wantErr: "DIR/main.nft:1:22: include needs a newline or ; after the file name",
		},
		{
			name:    "comment at the end of a file",
			files:   map[string]string{"main.nft": "add table ip t # no newline"},
			wantErr: "DIR/main.nft:1:16: nft rejects a comment at the very end of a file",
		},
		{
			name:    "unclosed string",
			files:   map[string]string{"main.nft": "add table ip t\ntable ip t { comment \"x; }\n"},
			wantErr: "DIR/main.nft:2:22: string is not closed",
		},
		{
			name:    "directory",
			files:   map[string]string{"main.nft": "include \"./sub\"\n", "sub/x.nft": ""},
			wantErr: "DIR/sub is a directory",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			files := map[string]string{}
			for k, v := range tt.files {
				files[k] = strings.ReplaceAll(v, "DIRBASE", filepath.Base(dir))
			}
			writeFiles(t, dir, files)
			opts := tt.opts
			for i, d := range opts.IncludeDirs {
				opts.IncludeDirs = append([]string(nil), opts.IncludeDirs...)
				opts.IncludeDirs[i] = strings.ReplaceAll(d, "DIR", dir)
			}
			b, err := Load(filepath.Join(dir, "main.nft"), opts)
			if tt.wantErr != "" {
				want := strings.ReplaceAll(tt.wantErr, "DIR", dir)
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("error %v\nwant %s", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range b.Files {
				rel, _ := filepath.Rel(dir, f.Path)
				got = append(got, rel)
				if f.Mode.Perm() != 0o640 {
					t.Errorf("%s: mode %v", rel, f.Mode)
				}
				if string(f.Content) != files[rel] {
					t.Errorf("%s: content %q", rel, f.Content)
				}
			}
			if !reflect.DeepEqual(got, tt.wantFiles) {
				t.Errorf("files %v, want %v", got, tt.wantFiles)
			}
			if b.Flat != tt.wantFlat {
				t.Errorf("flat %q\nwant %q", b.Flat, tt.wantFlat)
			}
			sum := sha256.Sum256([]byte(b.Flat))
			if b.Hash != hex.EncodeToString(sum[:]) || b.Main != filepath.Join(dir, "main.nft") {
				t.Errorf("hash %s main %s", b.Hash, b.Main)
			}
		})
	}
}

func TestRuleLocations(t *testing.T) {
	type loc struct {
		file string
		line int
		text string
	}
	tests := []struct {
		name  string
		files map[string]string
		want  map[ChainKey][]loc
	}{
		{
			name: "blocks, includes, sets, separators, continuations",
			files: map[string]string{
				"main.nft": `table inet f {
	set s { type ipv4_addr; elements = { 10.0.0.1,
		10.0.0.2 } }
	chain in {
		type filter hook input priority 0; policy drop;
		comment "chain comment"
		tcp   dport 22 accept # ssh
		include "r.d/*.nft"
		tcp dport { 80,
			443 } accept; udp dport 53 accept
		meta l4proto icmp \
			accept
	}
	chain empty {
	}
	counter c { }
}
`,
				"r.d/a.nft": "define x = { 1, 2 }\nct state established accept\n",
			},
			want: map[ChainKey][]loc{
				{"inet", "f", "in"}: {
					{"main.nft", 7, "tcp dport 22 accept"},
					{"r.d/a.nft", 2, "ct state established accept"},
					{"main.nft", 9, "tcp dport { 80, 443 } accept"},
					{"main.nft", 10, "udp dport 53 accept"},
					{"main.nft", 11, "meta l4proto icmp accept"},
				},
				{"inet", "f", "empty"}: {},
			},
		},
		{
			name: "commands",
			files: map[string]string{
				"main.nft": `add table t
add chain t c
add rule t c tcp dport 1 accept
rule ip t c tcp dport 2 accept
insert rule ip t c tcp dport 3 accept
add rule ip t c index 0 tcp dport 4 accept
insert rule ip t c index 1 tcp dport 5 accept
add chain ip6 u d { type filter hook input priority 0; counter; }
add rule ip6 u d position 9 drop
add chain ip6 u gone { accept; }
delete chain ip6 u gone
table arp a { chain x { accept; } }
flush table arp a
include "./part.nft"; accept
`,
				"part.nft": "add rule ip t c udp dport 9",
			},
			want: map[ChainKey][]loc{
				{"ip", "t", "c"}: {
					{"main.nft", 5, "tcp dport 3 accept"},
					{"main.nft", 7, "tcp dport 5 accept"},
					{"main.nft", 6, "tcp dport 4 accept"},
					{"main.nft", 3, "tcp dport 1 accept"},
					{"main.nft", 4, "tcp dport 2 accept"},
					{"part.nft", 1, "udp dport 9 accept"},
				},
				{"ip6", "u", "d"}: {{"main.nft", 8, "counter"}, {"main.nft", 9, "drop"}},
				{"arp", "a", "x"}: {},
			},
		},
		{
			name: "flush ruleset",
			files: map[string]string{"main.nft": `table ip old { chain c { accept; } }
flush ruleset
table ip new { chain c { drop; } }
`},
			want: map[ChainKey][]loc{{"ip", "new", "c"}: {{"main.nft", 3, "drop"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, b := loadTree(t, tt.files)
			got, err := b.RuleLocations()
			if err != nil {
				t.Fatal(err)
			}
			want := map[ChainKey][]Location{}
			for k, ls := range tt.want {
				want[k] = []Location{}
				for _, l := range ls {
					want[k] = append(want[k], Location{File: filepath.Join(dir, l.file), Line: l.line, Text: l.text})
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %v\nwant %v", got, want)
			}
		})
	}
}

// TestRuleLocationsFromFiles checks that a bundle rebuilt from its files
// (as history stores them) gives the same locations without the disk.
func TestRuleLocationsFromFiles(t *testing.T) {
	dir, b := loadTree(t, map[string]string{
		"main.nft":  "table ip t {\n chain c {\n  include \"r/*.nft\"\n }\n}\n",
		"r/1.nft":   "accept\n",
		"r/2.nft":   "drop\n",
		"other.nft": "garbage\n",
	})
	want, err := b.RuleLocations()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	copied := &Bundle{Main: b.Main, Files: b.Files}
	got, err := copied.RuleLocations()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) || len(got[ChainKey{"ip", "t", "c"}]) != 2 {
		t.Errorf("got %v, want %v", got, want)
	}
}
