package history

import (
	"errors"
	"testing"
)

// A history gets its identity once, keeps it across opens, and adopts
// another only while it holds no version.
func TestIdentity(t *testing.T) {
	s, path := openTemp(t)
	id, err := s.ID()
	if err != nil || !validID(id) {
		t.Fatalf("a new history has identity %q, %v", id, err)
	}
	if again, err := s.EnsureID(); err != nil || again != id {
		t.Fatalf("EnsureID changed the identity: %q -> %q, %v", id, again, err)
	}
	s.Close()
	s2, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := s2.ID(); got != id {
		t.Fatalf("identity after reopening: %q, want %q", got, id)
	}
	s2.Close()
	other, _ := openTemp(t)
	if o, _ := other.ID(); o == id {
		t.Fatal("two histories share an identity")
	}

	cases := []struct {
		name     string
		versions int
		id       string
		err      error
	}{
		{"empty history adopts", 0, "00112233445566778899aabbccddeeff", nil},
		{"history with versions refuses", 1, "00112233445566778899aabbccddeeff", ErrNotEmpty},
		{"not an identity", 0, "../../x y", errors.New("not an fwslot history identity")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, _ := openTemp(t)
			before, _ := s.ID()
			for i := 0; i < c.versions; i++ {
				if _, err := s.AddVersion("netns:x", Version{Source: "table inet t {}"}, nil); err != nil {
					t.Fatal(err)
				}
			}
			err := s.AdoptID(c.id)
			got, _ := s.ID()
			switch {
			case c.err == nil && (err != nil || got != c.id):
				t.Fatalf("AdoptID: %v, identity %q", err, got)
			case c.err != nil && (err == nil || got != before):
				t.Fatalf("AdoptID should fail and keep %q: %v, identity %q", before, err, got)
			case errors.Is(c.err, ErrNotEmpty) && !errors.Is(err, ErrNotEmpty):
				t.Fatalf("AdoptID: %v, want ErrNotEmpty", err)
			}
		})
	}
}
