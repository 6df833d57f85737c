package main

import (
	"strings"
	"testing"
)

func TestByteSizeFlag(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  bool
	}{
		{"0", 0, false}, {"1024", 1024, false}, {"1GiB", 1 << 30, false}, {"512MiB", 512 << 20, false},
		{"64K", 64 << 10, false}, {"2 GB", 2 << 30, false}, {"7B", 7, false},
		{"-1", 0, true}, {"lots", 0, true}, {"1.5GiB", 0, true}, {"9999999999TiB", 0, true},
	}
	for _, tt := range tests {
		var b byteSize
		err := b.Set(tt.in)
		if (err != nil) != tt.err || (err == nil && int64(b) != tt.want) {
			t.Errorf("Set(%q) = %d, %v; want %d, error %v", tt.in, b, err, tt.want, tt.err)
		}
	}
	b := byteSize(1 << 30)
	if b.String() != "1GiB" {
		t.Errorf("String() = %q", b.String())
	}
}

// TestKeepBytes: load and prune bound the bytes of never-live versions.
func TestKeepBytes(t *testing.T) {
	_, g := newTarget(t)
	for i, port := range []string{"101", "102", "103", "104"} {
		args := append(append([]string{}, g...), "load", writeFile(t, "r.nft", strings.Replace(good, "9 drop", port+" drop", 1)))
		if i == 3 {
			args = append(args, "--keep-bytes", "1")
		}
		if out, code := run(t, args...); code != 0 {
			t.Fatalf("load: %s", out)
		}
	}
	// The fourth load kept only what the slots hold (staging: 4).
	out, code := run(t, append(g, "history")...)
	if code != 0 || strings.Contains(out, "\n1 ") || strings.Contains(out, "\n3 ") || !strings.Contains(out, "\n4 ") {
		t.Fatalf("history after load --keep-bytes 1: exit %d\n%s", code, out)
	}
	for _, f := range []string{"5", "6"} {
		if out, code := run(t, append(g, "load", writeFile(t, "r.nft", strings.Replace(good, "9 drop", "20"+f+" drop", 1)))...); code != 0 {
			t.Fatalf("load: %s", out)
		}
	}
	if out, code := run(t, append(g, "prune", "--keep-bytes", "1")...); code != 0 || !strings.Contains(out, "pruned 2 versions (4-5); 1 kept") {
		t.Fatalf("prune --keep-bytes 1: exit %d\n%s", code, out)
	}
	if out, code := run(t, append(g, "prune", "--keep-bytes", "lots")...); code != 2 || !strings.Contains(out, `"lots" is not a size`) {
		t.Fatalf("prune --keep-bytes lots: exit %d\n%s", code, out)
	}
}
