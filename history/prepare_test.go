package history

import (
	"path/filepath"
	"testing"
)

// TestPrepared: a version prepared outside the write transaction is
// stored exactly as addVersion with later stores it (same blobs, same summary,
// byte-identical read back), the prepare commits nothing, and what
// changed in between is redone in the write: another version stored
// since (prepared against the wrong version before), or the blobs it
// meant to share deleted.
func TestPrepared(t *testing.T) {
	const n = 50000
	v1 := bigSetSource(n, nil)
	some := map[int]bool{}
	for i := 0; i < n; i += 100 {
		some[i] = true
	}
	v2 := bigSetSource(n, some)
	other := "table inet other {\n}\n"
	tests := []struct {
		name    string
		before  []string // versions stored before preparing
		src     string   // the prepared version
		between func(*Store) error
		against uint64 // the summary's version before
	}{
		{"first version", nil, v1, nil, 0},
		{"1% changed: deltas", []string{v1}, v2, nil, 1},
		{"a version stored in between", []string{v1}, v2, func(s *Store) error {
			_, err := s.AddVersion("host", Version{Source: other}, []byte("x"))
			return err
		}, 2},
		{"shared blobs deleted in between", []string{v1, other}, v1, func(s *Store) error {
			return s.DeleteVersion("host", 1)
		}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			open := func(name string) *Store {
				s, err := Open(filepath.Join(dir, name), Options{})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			}
			s, ref := open("prepared.db"), open("direct.db")
			for _, st := range []*Store{s, ref} {
				for _, src := range tt.before {
					if _, err := st.AddVersion("host", Version{Source: src}, []byte(src+"compiled")); err != nil {
						t.Fatal(err)
					}
				}
			}
			compiled := []byte(tt.src + "compiled")
			commits := s.Commits()
			p, err := s.Prepare("host", Version{Source: tt.src, Files: []File{{Path: "/etc/main.nft", Content: []byte(tt.src)}}}, compiled)
			if err != nil {
				t.Fatal(err)
			}
			if s.Commits() != commits {
				t.Errorf("Prepare committed %d times", s.Commits()-commits)
			}
			if tt.between != nil {
				if err := tt.between(s); err != nil {
					t.Fatal(err)
				}
				if err := tt.between(ref); err != nil {
					t.Fatal(err)
				}
			}
			var got, want Version
			if err := s.Update(func(tx *Tx) error { got, err = tx.AddPrepared(p); return err }); err != nil {
				t.Fatal(err)
			}
			if err := ref.Update(func(tx *Tx) error {
				want, err = tx.addVersion("host", Version{Source: tt.src, Files: []File{{Path: "/etc/main.nft", Content: []byte(tt.src)}}}, compiled, true)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			checkStore(t, s)
			if got.Number != want.Number || got.Hash != want.Hash {
				t.Errorf("stored as %d %s, directly %d %s", got.Number, got.Hash, want.Number, want.Hash)
			}
			back, err := s.Get("host", got.Number)
			if err != nil || back.Source != tt.src || len(back.Files) != 1 || string(back.Files[0].Content) != tt.src {
				t.Fatalf("read back: source equal %v, files %d, %v", back.Source == tt.src, len(back.Files), err)
			}
			c, err := s.Compiled("host", got.Number)
			if err != nil || string(c) != string(compiled) {
				t.Errorf("compiled form equal %v, %v", string(c) == string(compiled), err)
			}
			if back.Summary == nil || back.Summary.Against != tt.against {
				t.Errorf("summary %+v, want against %d", back.Summary, tt.against)
			}
			wantBack, _ := ref.Get("host", want.Number)
			if *back.Summary != *wantBack.Summary {
				t.Errorf("summary %+v, stored directly %+v", *back.Summary, *wantBack.Summary)
			}
			gb, gc := blobBytes(t, s)
			wb, wc := blobBytes(t, ref)
			if gb != wb || gc != wc {
				t.Errorf("blobs %d bytes in %d, stored directly %d in %d", gb, gc, wb, wc)
			}
		})
	}
}
