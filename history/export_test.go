package history

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

// exportAll collects Export's records.
func exportAll(t *testing.T, s *Store, target string) []Record {
	t.Helper()
	var out []Record
	if err := s.Export(target, func(r Record) error { out = append(out, r); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestExportImportRoundTrip(t *testing.T) {
	src, _ := openTemp(t)
	for i, body := range []string{"a\n", "b\n", "c\n", "d\n"} {
		v, err := src.AddVersion("host", Version{Source: body, Message: "version " + body[:1], Files: []File{{Path: "/r.nft", Content: []byte(body)}}}, []byte{byte(i), 0, 1})
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			if _, err := src.addActivation("host", Activation{From: v.Number - 1, To: v.Number, How: "swap", Note: "n"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	addN(t, src, "host", 3, "staged")
	if _, err := src.Prune("host", Policy{Keep: 1}); err != nil { // leaves a gap: 5 and 6 go
		t.Fatal(err)
	}
	recs := exportAll(t, src, "host")
	acts, _ := src.Activations("host")
	seq, _ := src.sequence("host")
	if seq != 7 || len(recs) != 5 {
		t.Fatalf("sequence %d, %d records", seq, len(recs))
	}

	dst, _ := openTemp(t)
	res, err := dst.Import("netns:moved", recs, acts, seq)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Versions, []uint64{1, 2, 3, 4, 7}) || len(res.Activations) != 3 {
		t.Fatalf("imported %+v", res)
	}
	got := exportAll(t, dst, "netns:moved")
	for i := range recs {
		a, b := recs[i], got[i]
		if a.Number != b.Number || a.Hash != b.Hash || a.Source != b.Source || !bytes.Equal(a.Compiled, b.Compiled) ||
			!a.Time.Equal(b.Time) || a.Message != b.Message || len(b.Files) != len(a.Files) {
			t.Fatalf("record %d changed in the round trip:\n%+v\n%+v", i, a, b)
		}
	}
	gotActs, _ := dst.Activations("netns:moved")
	if len(gotActs) != len(acts) || gotActs[2] != acts[2] {
		t.Fatalf("activations %+v, want %+v", gotActs, acts)
	}
	if n, _ := dst.Next("netns:moved"); n != 8 {
		t.Fatalf("next number after import %d, want 8", n)
	}
	if v, ok, _ := dst.FindHash("netns:moved", recs[0].Hash); !ok || v.Number != 1 {
		t.Fatalf("hash index not rebuilt: %+v", v)
	}
}

func TestImportIntoNonEmpty(t *testing.T) {
	mk := func(bodies ...string) []Record {
		var out []Record
		for i, b := range bodies {
			out = append(out, Record{Version: Version{Number: uint64(i + 1), Hash: HashSource(b)}, Source: b})
		}
		return out
	}
	cases := []struct {
		name     string
		have     []string
		imp      []Record
		acts     []Activation
		wantErr  error
		wantNums []uint64
	}{
		{"shared prefix adds the tail", []string{"a", "b"}, mk("a", "b", "c", "d"), nil, nil, []uint64{3, 4}},
		{"import is a prefix of ours", []string{"a", "b", "c"}, mk("a", "b"), nil, nil, []uint64{}},
		{"same numbers, other hashes", []string{"a", "x"}, mk("a", "b", "c"), nil, ErrDiverged, nil},
		{"nothing in common", []string{"a"}, mk("a", "b")[1:], nil, ErrDiverged, nil},
		{"activations diverge", []string{"a", "b"}, mk("a", "b", "c"), []Activation{{Seq: 1, From: 0, To: 2}}, ErrDiverged, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, _ := openTemp(t)
			for _, b := range c.have {
				if _, err := s.AddVersion("host", Version{Source: b}, nil); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.addActivation("host", Activation{To: 1, How: "swap"}); err != nil {
				t.Fatal(err)
			}
			before := numbers(t, s, "host")
			res, err := s.Import("host", c.imp, c.acts, 0)
			switch {
			case c.wantErr == nil && err != nil:
				t.Fatal(err)
			case c.wantErr != nil && err == nil:
				t.Fatalf("import succeeded: %+v", res)
			case c.wantErr == ErrDiverged && !errors.Is(err, ErrDiverged):
				t.Fatalf("error %v, want ErrDiverged", err)
			}
			if c.wantErr != nil {
				if got := numbers(t, s, "host"); !slices.Equal(got, before) {
					t.Fatalf("a refused import changed the history: %v", got)
				}
				return
			}
			if !slices.Equal(res.Versions, c.wantNums) {
				t.Fatalf("imported %v, want %v", res.Versions, c.wantNums)
			}
		})
	}
	s, _ := openTemp(t)
	if _, err := s.Import("host", []Record{{Version: Version{Number: 1, Hash: HashSource("a")}, Source: "b"}}, nil, 0); err == nil {
		t.Fatal("import with a wrong hash succeeded")
	}
}
