package history

import (
	"strings"
	"testing"
)

// TestCanonicalLater: a version stored by addVersion with later has no
// canonical form until SetCanonical stores one; a second SetCanonical
// replaces it and releases the first one's blobs; a missing version is
// refused.
func TestCanonicalLater(t *testing.T) {
	s, _ := openTempWith(t, Options{Canonical: func(src string) (string, error) {
		return "CANON " + strings.ToUpper(src), nil
	}})
	src := bigSetSource(20000, nil)
	var v Version
	if err := s.Update(func(tx *Tx) error {
		var err error
		v, err = tx.addVersion("host", Version{Source: src}, []byte("compiled"), true)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	checkStore(t, s)
	if _, found, err := s.Canonical("host", v.Number); err != nil || found {
		t.Fatalf("canonical before SetCanonical: found %v, %v", found, err)
	}
	text, ok := s.CanonicalOf(src)
	if !ok || text != "CANON "+strings.ToUpper(src) {
		t.Fatalf("CanonicalOf: %v %.40q", ok, text)
	}
	steps := []struct {
		name string
		n    uint64
		text string
		ok   bool
	}{
		{"first", v.Number, text, true},
		{"replaced", v.Number, text + "# again\n", true},
		{"missing version", v.Number + 5, "x", false},
	}
	for _, st := range steps {
		err := s.Update(func(tx *Tx) error { return tx.SetCanonical("host", st.n, st.text) })
		if (err == nil) != st.ok {
			t.Fatalf("%s: SetCanonical: %v", st.name, err)
		}
		checkStore(t, s)
		if !st.ok {
			continue
		}
		got, found, err := s.Canonical("host", st.n)
		if err != nil || !found || got != st.text {
			t.Errorf("%s: canonical found %v, %v, equal %v", st.name, found, err, got == st.text)
		}
	}
	if err := s.DeleteVersion("host", v.Number); err != nil {
		t.Fatal(err)
	}
	checkStore(t, s)
	if _, count := blobBytes(t, s); count != 0 {
		t.Errorf("%d blobs left after deleting the only version", count)
	}
}

// TestNoDeltaForNewContent: a version whose content shares nothing with
// the version before (a set refilled) is stored without building a
// delta past the first chunk (which holds the header both share), while one with 1% of its elements changed is stored as
// deltas; both read back exactly.
func TestNoDeltaForNewContent(t *testing.T) {
	s, _ := openTemp(t)
	const n = 100000
	if _, err := s.AddVersion("host", Version{Source: bigSetSource(n, nil)}, nil); err != nil {
		t.Fatal(err)
	}
	all, some := map[int]bool{}, map[int]bool{}
	for i := range n {
		all[i] = true
		if i%100 == 0 {
			some[i] = true
		}
	}
	tests := []struct {
		name     string
		src      string
		min, max int64 // deltas built
	}{
		{"every element new", bigSetSource(n, all), 0, 1},
		{"1% changed", bigSetSource(n, some), 3, 100},
	}
	for _, tt := range tests {
		before := s.codec.deltas.Load()
		v, err := s.AddVersion("host", Version{Source: tt.src}, nil)
		if err != nil {
			t.Fatal(err)
		}
		checkStore(t, s)
		if got := s.codec.deltas.Load() - before; got < tt.min || got > tt.max {
			t.Errorf("%s: %d deltas built, want %d to %d", tt.name, got, tt.min, tt.max)
		}
		back, err := s.Get("host", v.Number)
		if err != nil || back.Source != tt.src {
			t.Errorf("%s: read back equal %v, %v", tt.name, back.Source == tt.src, err)
		}
	}
}
