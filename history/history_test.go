package history

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fwslot/fwslot/internal/linediff"
	bolt "go.etcd.io/bbolt"
)

type boltTx = bolt.Tx

// holdEnv makes the test binary act as a second process that holds a history
// file open until its stdin closes.
const holdEnv = "FWSLOT_HISTORY_TEST_HOLD"

func TestMain(m *testing.M) {
	if path := os.Getenv(holdEnv); path != "" {
		os.Exit(holdAndWait(path))
	}
	os.Exit(m.Run())
}

func holdAndWait(path string) int {
	s, err := Open(path, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // returns at EOF
	if err := s.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	return openTempWith(t, Options{})
}

// openTempWith opens a new history file with opts, closed when the test
// ends, and returns it with its path.
func openTempWith(t testing.TB, opts Options) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "lib", "fwslot", "fwslot.db")
	s, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, path
}

func TestVersionRoundTrip(t *testing.T) {
	s, _ := openTemp(t)
	when := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	tests := []struct {
		name     string
		target   string
		in       Version
		compiled []byte
		want     uint64
	}{
		{"first host", "host", Version{User: "alice", Time: when, Message: "initial", Origin: "adopted", Source: "table inet filter {}\n", Tables: []string{"inet filter"}, Rules: 0}, []byte{1, 2, 3}, 1},
		{"second host", "host", Version{User: "bob", Time: when, Message: "ssh", Origin: "file", Source: "table inet filter { chain c { tcp dport 22 accept } }\n",
			Files: []File{{Path: "/etc/fwslot/main.nft", Content: []byte("include \"x\"\n")}, {Path: "/etc/fwslot/x", Content: []byte{0xff}}}, Tables: []string{"inet filter"}, Rules: 1}, []byte("blob"), 2},
		{"netns starts at 1", "netns:blue", Version{User: "ci", Time: when, Origin: "import", Source: "x"}, nil, 1},
		{"host continues", "host", Version{User: "alice", Time: when, Source: "table inet filter {}\n"}, []byte{}, 3},
		{"netns continues", "netns:blue", Version{User: "ci", Time: when, Source: "y"}, []byte("z"), 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.AddVersion(tt.target, tt.in, tt.compiled)
			if err != nil {
				t.Fatal(err)
			}
			if got.Number != tt.want {
				t.Fatalf("Number = %d, want %d", got.Number, tt.want)
			}
			if got.Hash != HashSource(tt.in.Source) {
				t.Fatalf("Hash = %s, want sha256 of source", got.Hash)
			}
			full, err := s.Get(tt.target, got.Number)
			if err != nil {
				t.Fatal(err)
			}
			if full.Summary == nil || full.Summary.Lines != len(linediff.Split(tt.in.Source)) {
				t.Fatalf("Summary = %+v, want %d lines", full.Summary, len(linediff.Split(tt.in.Source)))
			}
			want := tt.in
			want.Number, want.Hash, want.Summary = tt.want, got.Hash, full.Summary
			if !reflect.DeepEqual(full, want) {
				t.Fatalf("Get = %+v\nwant  %+v", full, want)
			}
			blob, err := s.Compiled(tt.target, got.Number)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(blob, tt.compiled) || blob == nil {
				t.Fatalf("Compiled = %v, want %v", blob, tt.compiled)
			}
		})
	}
	for target, want := range map[string][]uint64{"host": {1, 2, 3}, "netns:blue": {1, 2}, "netns:red": nil} {
		vs, err := s.Versions(target)
		if err != nil {
			t.Fatal(err)
		}
		var got []uint64
		for _, v := range vs {
			if v.Source != "" || v.Files != nil {
				t.Errorf("%s: Versions loaded the source of %d", target, v.Number)
			}
			got = append(got, v.Number)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: Versions = %v, want %v", target, got, want)
		}
	}
}

func TestErrors(t *testing.T) {
	s, _ := openTemp(t)
	if _, err := s.AddVersion("host", Version{Source: "a"}, nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		run  func() error
		is   error
		msg  string
	}{
		{"get missing", func() error { _, err := s.Get("host", 7); return err }, ErrNotFound, "version 7 not found"},
		{"get unknown target", func() error { _, err := s.Get("netns:x", 1); return err }, ErrNotFound, "version 1 not found"},
		{"compiled missing", func() error { _, err := s.Compiled("host", 2); return err }, ErrNotFound, "version 2 not found"},
		{"bad target", func() error { _, err := s.AddVersion("netns:", Version{}, nil); return err }, nil, "invalid history target"},
		{"hash mismatch", func() error { _, err := s.AddVersion("host", Version{Source: "a", Hash: "00"}, nil); return err }, nil, "does not match"},
		{"activation to missing", func() error { _, err := s.addActivation("host", Activation{To: 9}); return err }, ErrNotFound, "version 9 not found"},
		{"activation from missing", func() error { _, err := s.addActivation("host", Activation{From: 5, To: 1}); return err }, ErrNotFound, "version 5 not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			if err == nil {
				t.Fatal("no error")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %q is not %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not contain %q", err, tt.msg)
			}
		})
	}
}

func TestFindHash(t *testing.T) {
	s, _ := openTemp(t)
	for _, src := range []string{"a", "b", "a", "c"} {
		if _, err := s.AddVersion("host", Version{Source: src}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.AddVersion("netns:n", Version{Source: "d"}, nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		target, source string
		found          bool
		want           uint64
	}{
		{"host", "a", true, 3},
		{"host", "b", true, 2},
		{"host", "c", true, 4},
		{"host", "d", false, 0},
		{"netns:n", "d", true, 1},
		{"netns:n", "a", false, 0},
		{"netns:none", "a", false, 0},
	}
	for _, tt := range tests {
		v, found, err := s.FindHash(tt.target, HashSource(tt.source))
		if err != nil {
			t.Fatal(err)
		}
		if found != tt.found || v.Number != tt.want {
			t.Errorf("FindHash(%s, %q) = %d, %v; want %d, %v", tt.target, tt.source, v.Number, found, tt.want, tt.found)
		}
	}
}

func TestActivations(t *testing.T) {
	s, _ := openTemp(t)
	if _, ok, err := s.LastActivation("host"); ok || err != nil {
		t.Fatalf("LastActivation on empty = %v, %v", ok, err)
	}
	for _, src := range []string{"a", "b"} {
		for _, target := range []string{"host", "netns:n"} {
			if _, err := s.AddVersion(target, Version{Source: src}, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	when := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	in := []struct {
		target string
		a      Activation
		seq    uint64
	}{
		{"host", Activation{From: 0, To: 1, How: "swap", User: "a", Time: when}, 1},
		{"host", Activation{From: 1, To: 2, How: "swap", User: "a", Time: when, Note: "x"}, 2},
		{"netns:n", Activation{From: 0, To: 2, How: "restore", Time: when}, 1},
		{"host", Activation{From: 2, To: 1, How: "rollback", Time: when}, 3},
	}
	want := map[string][]Activation{}
	for _, tt := range in {
		got, err := s.addActivation(tt.target, tt.a)
		if err != nil {
			t.Fatal(err)
		}
		if got.Seq != tt.seq {
			t.Fatalf("Seq = %d, want %d", got.Seq, tt.seq)
		}
		want[tt.target] = append(want[tt.target], got)
	}
	for target, w := range want {
		got, err := s.Activations(target)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, w) {
			t.Errorf("%s: Activations = %+v, want %+v", target, got, w)
		}
		last, ok, err := s.LastActivation(target)
		if err != nil || !ok || !reflect.DeepEqual(last, w[len(w)-1]) {
			t.Errorf("%s: LastActivation = %+v, %v, %v", target, last, ok, err)
		}
	}
}

func TestReopenAndModes(t *testing.T) {
	s, path := openTemp(t)
	if _, err := s.AddVersion("host", Version{Source: "a"}, []byte("c")); err != nil {
		t.Fatal(err)
	}
	holder := path + ".holder"
	for name, want := range map[string]os.FileMode{filepath.Dir(path): 0o700 | os.ModeDir, filepath.Dir(filepath.Dir(path)): 0o700 | os.ModeDir, path: 0o600, holder: 0o600} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("mode of %s = %v, want %v", name, fi.Mode(), want)
		}
	}
	data, err := os.ReadFile(holder)
	if err != nil {
		t.Fatal(err)
	}
	h, err := parseHolder(string(data))
	if err != nil || h.PID != os.Getpid() || time.Since(h.Since) > time.Minute {
		t.Errorf("holder %q parsed as %+v, %v", data, h, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(holder); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("holder file still there after Close: %v", err)
	}
	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	v, err := ro.Get("host", 1)
	if err != nil || v.Source != "a" {
		t.Fatalf("Get after reopen = %+v, %v", v, err)
	}
	if _, err := ro.AddVersion("host", Version{Source: "b"}, nil); err == nil {
		t.Error("AddVersion on a read-only store succeeded")
	}
}

func TestReadOnlyMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none.db")
	if _, err := Open(path, Options{ReadOnly: true}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open read-only of a missing file: %v, want ErrNotExist", err)
	}
}

func TestNewerSchema(t *testing.T) {
	s, path := openTemp(t)
	err := s.update(func(tx *boltTx) error { return tx.Bucket(bucketMeta).Put(keySchema, u64(schemaVersion+1)) })
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = Open(path, Options{})
	if err == nil || !strings.Contains(err.Error(), "use a newer fwslot") {
		t.Fatalf("Open of a newer schema: %v", err)
	}
}

func TestDamaged(t *testing.T) {
	big := bytes.Repeat([]byte("compiled "), 100_000)
	dir, realData := damageBase(t, func(s *Store) {
		for i := 0; i < 20; i++ {
			if _, err := s.AddVersion("host", Version{Source: fmt.Sprint(i)}, big); err != nil {
				t.Fatal(err)
			}
		}
	})
	garbage := bytes.Repeat([]byte("\x13garbage\xff"), 10_000)
	tests := []struct {
		name string
		data []byte
	}{
		{"tiny garbage", []byte("hello")},
		{"garbage", garbage},
		{"truncated to one page", realData[:4096]},
		{"truncated to half", realData[:len(realData)/2]},
		{"meta pages zeroed", append(make([]byte, 8192), realData[8192:]...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeCopy(t, dir, tt.name, tt.data)
			s, err := Open(path, Options{Timeout: time.Second})
			if err == nil {
				// bbolt accepted the file; reading it must still fail cleanly.
				_, err = s.Versions("host")
				_ = s.Close()
			}
			checkRefused(t, path, err)
		})
	}
}

func TestBusySameProcess(t *testing.T) {
	s, path := openTemp(t)
	_ = s
	start := time.Now()
	_, err := Open(path, Options{Timeout: 200 * time.Millisecond})
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("second Open in the same process: %v, want ErrBusy", err)
	}
	if d := time.Since(start); d < 100*time.Millisecond || d > 3*time.Second {
		t.Errorf("second Open returned after %v, want about 200ms", d)
	}
	want := fmt.Sprintf("history %s is busy: held by pid %d (", path, os.Getpid())
	if !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), "; try again") {
		t.Errorf("error %q, want prefix %q", err, want)
	}
}

func TestBusyOtherProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fwslot.db")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holdEnv+"="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("holder process said %q, %v; stderr %s", line, err, stderr.String())
	}

	for _, tt := range []struct {
		name string
		opts Options
	}{
		{"writer", Options{Timeout: 300 * time.Millisecond}},
		{"reader", Options{Timeout: 300 * time.Millisecond, ReadOnly: true}},
		{"no wait", Options{Timeout: -1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(path, tt.opts)
			if !errors.Is(err, ErrBusy) {
				t.Fatalf("Open while another process holds the file: %v", err)
			}
			want := fmt.Sprintf("held by pid %d (history.test -test.run=^$) since ", cmd.Process.Pid)
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not contain %q", err, want)
			}
			t.Log(err)
		})
	}

	if err := stdin.Close(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("holder process: %v; stderr %s", err, stderr.String())
	}
	s, err := Open(path, Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("Open after the holder exited: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestFormatSince(t *testing.T) {
	now := time.Date(2025, 6, 1, 15, 0, 0, 0, time.UTC)
	tests := []struct {
		t    time.Time
		want string
	}{
		{time.Date(2025, 6, 1, 12, 0, 1, 0, time.UTC), "12:00:01"},
		{time.Date(2025, 5, 31, 12, 0, 1, 0, time.UTC), "2025-05-31 12:00:01"},
	}
	for _, tt := range tests {
		if got := formatSince(tt.t, now); got != tt.want {
			t.Errorf("formatSince(%v) = %q, want %q", tt.t, got, tt.want)
		}
	}
}

func TestParseHolder(t *testing.T) {
	tests := []struct {
		in      string
		want    holder
		wantErr bool
	}{
		{"pid=12 cmd=fwslot swap --netns a since=2025-06-01T12:00:01Z\n", holder{12, "fwslot swap --netns a", time.Date(2025, 6, 1, 12, 0, 1, 0, time.UTC)}, false},
		{"pid=x cmd=a since=2025-06-01T12:00:01Z", holder{}, true},
		{"garbage", holder{}, true},
	}
	for _, tt := range tests {
		got, err := parseHolder(tt.in)
		if (err != nil) != tt.wantErr || !got.Since.Equal(tt.want.Since) || got.PID != tt.want.PID || got.Cmd != tt.want.Cmd {
			t.Errorf("parseHolder(%q) = %+v, %v", tt.in, got, err)
		}
	}
}

func BenchmarkVersions(b *testing.B) {
	s, _ := openTempWith(b, Options{})
	src := strings.Repeat("add rule inet filter input tcp dport 22 accept\n", 100)
	blob := bytes.Repeat([]byte{7}, 10_000)
	const n = 10_000
	// One transaction for the setup: 10k AddVersion calls would be 10k fsyncs.
	err := s.update(func(tx *boltTx) error {
		for i := 0; i < n; i++ {
			v := Version{User: "bench", Time: time.Now().UTC(), Message: fmt.Sprintf("change %d", i), Origin: "file", Source: fmt.Sprint(i, src), Tables: []string{"inet filter"}, Rules: 100}
			v.Hash = HashSource(v.Source)
			if err := putVersion(tx, &s.codec, "host", &v, sourceDoc{Source: v.Source}, blob); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		vs, err := s.Versions("host")
		if err != nil {
			b.Fatal(err)
		}
		if len(vs) != n {
			b.Fatalf("%d versions, want %d", len(vs), n)
		}
	}
}
