package history

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
)

// TestImportRefusesUntrusted: records and activations no fwslot export
// holds are refused with ErrUntrusted, and the history file's bytes do not
// change.
func TestImportRefusesUntrusted(t *testing.T) {
	rec := func(n uint64, src string) Record {
		return Record{Version: Version{Number: n, Hash: HashSource(src), User: "root", Message: "m", Origin: "file"}, Source: src}
	}
	good := []Record{rec(1, "a\n"), rec(2, "b\n")}
	act := Activation{Seq: 1, To: 1, How: "swap", User: "root"}
	with := func(f func(r *Record)) []Record {
		out := []Record{good[0], good[1]}
		f(&out[1])
		return out
	}
	tests := []struct {
		name string
		recs []Record
		acts []Activation
		seq  uint64
		want string
	}{
		{"version 2^64-1", []Record{rec(1<<64-1, "a\n")}, nil, 0, "version number 18446744073709551615 is above 9007199254740992"},
		{"version 2^53+1", []Record{rec(1<<53+1, "a\n")}, nil, 0, "version number 9007199254740993 is above"},
		{"sequence 2^64-1", good, nil, 1<<64 - 1, "the version sequence 18446744073709551615 is above"},
		{"version 0", []Record{rec(0, "a\n")}, nil, 0, "a version without a number"},
		{"duplicate version", []Record{rec(1, "a\n"), rec(1, "b\n")}, nil, 0, "version 1 appears twice"},
		{"activation 2^64-1", good, []Activation{{Seq: 1<<64 - 1, To: 1, How: "swap"}}, 0, "activation 18446744073709551615 (from 0 to 1) has a number above"},
		{"activation to 2^64-1", good, []Activation{{Seq: 1, To: 1<<64 - 1, How: "swap"}}, 0, "has a number above"},
		{"duplicate activation", good, []Activation{act, act}, 0, "activation 1 appears twice"},
		{"pending activation", good, []Activation{{Seq: 1, To: 1, How: "swap", Result: "pending"}}, 0, "activation 1 is pending confirmation"},
		{"newline in message", with(func(r *Record) { r.Message = "ok\n3  2026-01-01  root  forged" }), nil, 0, `version 2 message "ok\n3  2026-01-01  root  forged" holds the control character U+000A`},
		{"escape in user", with(func(r *Record) { r.User = "\x1b[2Jroot" }), nil, 0, "version 2 user \"\\x1b[2Jroot\" holds the control character U+001B"},
		{"bidi override in message", with(func(r *Record) { r.Message = "safe \u202egnp.exe" }), nil, 0, "holds the control character U+202E"},
		{"carriage return in activation user", good, []Activation{{Seq: 1, To: 1, How: "swap", User: "root\rmallory"}}, 0, "activation 1 user \"root\\rmallory\" holds the control character U+000D"},
		{"tab in file path", with(func(r *Record) { r.Files = []File{{Path: "/a\tb"}} }), nil, 0, "version 2 file path"},
		{"invalid UTF-8 in note", good, []Activation{{Seq: 1, To: 1, How: "swap", Note: "\xff"}}, 0, "activation 1 note \"\\xff\" is not valid UTF-8"},
		{"hash does not match source", with(func(r *Record) { r.Source = "c\n" }), nil, 0, "hash"},
	}
	s, path := openTemp(t)
	if _, err := s.Import("host", good[:1], nil, 0); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Import("host", tt.recs, tt.acts, tt.seq)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			if tt.name != "hash does not match source" && !errors.Is(err, ErrUntrusted) {
				t.Errorf("error %v is not ErrUntrusted", err)
			}
			after, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(before, after) {
				t.Error("the history file's bytes changed")
			}
		})
	}
}
