package history

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOpenRefusesSharedLocations: an existing history directory or file
// that group or others can write is refused with ErrInsecure, read-only
// too, and nothing in it changes; private ones open.
func TestOpenRefusesSharedLocations(t *testing.T) {
	tests := []struct {
		name     string
		dirMode  os.FileMode
		fileMode os.FileMode // 0: no file yet
		want     string      // "" when Open must succeed
	}{
		{"0700 directory, 0600 file", 0o700, 0o600, ""},
		{"0755 directory, 0644 file", 0o755, 0o644, ""},
		{"0700 directory, no file", 0o700, 0, ""},
		{"0777 directory", 0o777, 0o600, "history directory %s is writable by group or others (mode drwxrwxrwx)"},
		{"1777 directory (sticky, like /tmp)", 0o777 | os.ModeSticky, 0, "history directory %s is writable by group or others (mode dtrwxrwxrwx)"},
		{"0770 directory", 0o770, 0o600, "history directory %s is writable by group or others"},
		{"0666 file", 0o700, 0o666, "history file %s is writable by group or others (mode -rw-rw-rw-)"},
		{"0620 file", 0o700, 0o620, "history file %s is writable by group or others"},
	}
	for _, tt := range tests {
		for _, ro := range []bool{false, true} {
			if ro && tt.fileMode == 0 {
				continue // a read-only open needs a file
			}
			t.Run(fmt.Sprintf("%s/readonly=%v", tt.name, ro), func(t *testing.T) {
				dir := filepath.Join(t.TempDir(), "lib")
				path := filepath.Join(dir, "fwslot.db")
				s, err := Open(path, Options{})
				if err != nil {
					t.Fatal(err)
				}
				addN(t, s, "host", 1, "v")
				s.Close()
				if tt.fileMode == 0 {
					os.Remove(path)
				} else if err := os.Chmod(path, tt.fileMode); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(dir, tt.dirMode); err != nil {
					t.Fatal(err)
				}
				before, _ := os.ReadFile(path)
				s, err = Open(path, Options{ReadOnly: ro})
				if tt.want == "" {
					if err != nil {
						t.Fatalf("Open: %v", err)
					}
					s.Close()
					return
				}
				if err == nil {
					s.Close()
					t.Fatal("Open succeeded")
				}
				where := dir
				if strings.HasPrefix(tt.want, "history file") {
					where = path
				}
				if want := fmt.Sprintf(tt.want, where); !strings.Contains(err.Error(), want) || !errors.Is(err, ErrInsecure) {
					t.Fatalf("error %v, want ErrInsecure containing %q", err, want)
				}
				after, _ := os.ReadFile(path)
				if string(before) != string(after) {
					t.Error("the history file's bytes changed")
				}
				if _, err := os.Lstat(path + ".holder"); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("a holder file was written: %v", err)
				}
			})
		}
	}
}

// TestHolderSymlinks: a symlink planted where Open writes its holder file
// never redirects the write: at the temporary name Open refuses; at the
// holder's own name the symlink is replaced, its target untouched.
func TestHolderSymlinks(t *testing.T) {
	for _, at := range []string{"tmp", "holder"} {
		t.Run(at, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "lib")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "fwslot.db")
			victim := filepath.Join(t.TempDir(), "victim")
			if err := os.WriteFile(victim, []byte("precious\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			link := path + ".holder"
			if at == "tmp" {
				link = fmt.Sprintf("%s.holder.%d.tmp", path, os.Getpid())
			}
			if err := os.Symlink(victim, link); err != nil {
				t.Fatal(err)
			}
			s, err := Open(path, Options{})
			switch {
			case at == "tmp" && (err == nil || !errors.Is(err, ErrInsecure) || !strings.Contains(err.Error(), link+" exists and is not a regular file")):
				t.Errorf("Open: %v, want ErrInsecure naming %s", err, link)
			case at == "holder" && err != nil:
				t.Errorf("Open: %v", err)
			}
			if err == nil {
				if fi, err := os.Lstat(path + ".holder"); err != nil || !fi.Mode().IsRegular() {
					t.Errorf("holder file: %v %v", fi, err)
				}
				s.Close()
			}
			if data, err := os.ReadFile(victim); err != nil || string(data) != "precious\n" {
				t.Errorf("the symlink's target changed: %q %v", data, err)
			}
			if _, err := readHolder(link); at == "tmp" && err == nil {
				t.Error("readHolder followed a symlink")
			}
		})
	}
}
