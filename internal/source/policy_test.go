package source

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPolicy: every file of a ruleset, the main file too, is a regular file
// inside the allowed directories once symbolic links are resolved, and is
// read at most once and at most up to the size limit. Each hostile layout
// is refused with its exact message, before anything reads the file.
func TestPolicy(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "x"), []byte("add table ip evil\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(outside, "d"), 0o700); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("TOKEN=hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(secret)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fdLink := fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), f.Fd())

	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string) // besides main.nft
		main    string
		include []string // IncludeDirs, DIR and OUT replaced
		wantErr string   // DIR, OUT replaced
	}{
		{
			name: "symlink then .. (the decoy DIR/x is not what the kernel reads)",
			setup: func(t *testing.T, dir string) {
				symlink(t, filepath.Join(outside, "d"), filepath.Join(dir, "sub"))
				write(t, filepath.Join(dir, "x"), "add table ip decoy\n")
			},
			main:    "include \"./sub/../x\"\n",
			wantErr: "DIR/main.nft:1:9: include \"./sub/../x\": DIR/./sub/.. goes through a symbolic link before \"..\", so it is OUT, not DIR: write the path without the dots",
		},
		{
			name:    "symlink then .., no decoy",
			setup:   func(t *testing.T, dir string) { symlink(t, filepath.Join(outside, "d"), filepath.Join(dir, "sub")) },
			main:    "include \"./sub/../x\"\n",
			wantErr: "goes through a symbolic link before \"..\", so it is OUT, not DIR",
		},
		{
			name:    "backslash in a pattern",
			setup:   func(t *testing.T, dir string) { write(t, filepath.Join(dir, "a.nft"), "\n") },
			main:    "include \"./a\\.n*\"\n",
			wantErr: "DIR/main.nft:1:9: include \"./a\\\\.n*\": a backslash in an include is refused",
		},
		{
			name:    "symlink to a file outside",
			setup:   func(t *testing.T, dir string) { symlink(t, secret, filepath.Join(dir, "rules.nft")) },
			main:    "include \"./rules.nft\"\n",
			wantErr: "DIR/main.nft:1:9: include \"./rules.nft\" reads OUT/secret, outside the allowed directories (DIR)",
		},
		{
			name:    "/proc/self/environ",
			main:    "include \"/proc/self/environ\"\n",
			include: []string{"/proc"},
			wantErr: "DIR/main.nft:1:9: include \"/proc/self/environ\" reads /proc/",
		},
		{
			name:    "an open file descriptor's link",
			main:    "include \"" + fdLink + "\"\n",
			include: []string{"/proc"},
			wantErr: "DIR/main.nft:1:9: include \"" + fdLink + "\" reads OUT/secret, outside the allowed directories",
		},
		{
			name:    "/dev/zero",
			main:    "include \"/dev/zero\"\n",
			include: []string{"/dev"},
			wantErr: "DIR/main.nft:1:9: include \"/dev/zero\" reads /dev/zero, outside the allowed directories",
		},
		{
			name: "a FIFO (would block nft for ever)",
			setup: func(t *testing.T, dir string) {
				if err := syscall.Mkfifo(filepath.Join(dir, "fifo.nft"), 0o600); err != nil {
					t.Fatal(err)
				}
			},
			main:    "include \"./fifo.nft\"\n",
			wantErr: "DIR/main.nft:1:9: DIR/fifo.nft is a FIFO, not a regular file",
		},
		{
			name: "a socket",
			setup: func(t *testing.T, dir string) {
				l, err := net.Listen("unix", filepath.Join(dir, "sock.nft"))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { l.Close() })
			},
			main:    "include \"./sock.nft\"\n",
			wantErr: "DIR/main.nft:1:9: DIR/sock.nft is a socket, not a regular file",
		},
		{
			name:    "a character device inside an include directory",
			setup:   func(t *testing.T, dir string) { mknod(t, filepath.Join(dir, "zero.nft")) },
			main:    "include \"./zero.nft\"\n",
			wantErr: "DIR/main.nft:1:9: DIR/zero.nft is a character device, not a regular file",
		},
		{
			name: "fan-out: 16 includes of 16 includes of ... 8 levels",
			setup: func(t *testing.T, dir string) {
				for lvl := 0; lvl < 8; lvl++ {
					write(t, filepath.Join(dir, fmt.Sprintf("l%d.nft", lvl)), strings.Repeat(fmt.Sprintf("include \"./l%d.nft\"\n", lvl+1), 16))
				}
				write(t, filepath.Join(dir, "l8.nft"), "define x = 1\n")
			},
			main:    "include \"./l0.nft\"\n",
			wantErr: "includes files more than 1024 times in all; include each file once",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			main := filepath.Join(dir, "main.nft")
			write(t, main, tt.main)
			if tt.setup != nil {
				tt.setup(t, dir)
			}
			start := time.Now()
			_, err := Load(main, Options{IncludeDirs: tt.include})
			want := strings.NewReplacer("DIR", dir, "OUT", outside).Replace(tt.wantErr)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("error %v\nwant %s", err, want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error shows a file outside the allowed directories: %v", err)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("refusal took %v", d)
			}
		})
	}
}

// TestPolicyMain: the main file passes the same policy.
func TestPolicyMain(t *testing.T) {
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	write(t, secret, "TOKEN=hunter2\n")
	dir := t.TempDir()
	symlink(t, secret, filepath.Join(dir, "main.nft"))
	_, err := Load(filepath.Join(dir, "main.nft"), Options{})
	want := filepath.Join(dir, "main.nft") + ": the ruleset is " + secret + ", outside the allowed directories (" + dir + ")"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v\nwant %s", err, want)
	}
	for _, p := range []string{"/proc/self/environ", "/dev/zero"} {
		_, err := Load(p, Options{})
		if err == nil || !strings.Contains(err.Error(), "outside the allowed directories") {
			t.Errorf("%s: error %v", p, err)
		}
	}
}

// TestReadOnce: a file included many times is read from disk once; the
// included copies are the bytes first read.
func TestReadOnce(t *testing.T) {
	_, b := loadTree(t, map[string]string{
		"x.nft":    "define a = 1\n",
		"main.nft": strings.Repeat("include \"./x.nft\"\n", 100),
	})
	if len(b.Files) != 2 || strings.Count(b.Flat, "define a = 1") != 100 {
		t.Errorf("files %d, flat %q", len(b.Files), b.Flat)
	}
}

func write(t *testing.T, p, content string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// mknod makes a character device like /dev/zero at p.
func mknod(t *testing.T, p string) {
	t.Helper()
	if err := syscall.Mknod(p, syscall.S_IFCHR|0o600, 1<<8|5); err != nil {
		t.Fatal(err)
	}
}

// TestFromText: a version's flattened source from history compiles from
// memory; an include in it (a forged or imported history) is refused
// rather than read from disk.
func TestFromText(t *testing.T) {
	for _, tt := range []struct {
		name, text, wantErr string
	}{
		{"flat", "table ip t {\n\tchain c { accept; }\n}\n", ""},
		{"absolute include", "include \"/etc/passwd\"\n", "/v.nft:1:9: include \"/etc/passwd\": file not found"},
		{"relative include", "include \"./x.nft\"\n", "/v.nft:1:9: include \"./x.nft\": file not found"},
		{"itself", "include \"/v.nft\"\n", "/v.nft:1:9: include loop"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := FromText("/v.nft", tt.text)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if b.Flat != tt.text || len(b.Files) != 1 {
				t.Errorf("flat %q, files %d", b.Flat, len(b.Files))
			}
			if _, err := b.WriteCopy(t.TempDir()); err != nil {
				t.Error(err)
			}
		})
	}
}
