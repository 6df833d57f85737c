package history

import (
	"errors"
	"testing"
)

// TestUpdateIsAllOrNothing: what an Update records reaches the file in
// one commit, or not at all when its function fails.
func TestUpdateIsAllOrNothing(t *testing.T) {
	s, _ := openTemp(t)
	v, err := s.AddVersion("host", Version{Source: "a"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	tests := []struct {
		name    string
		fail    error
		commits uint64
		acts    int
		kernel  bool
	}{
		{"failed update leaves nothing", boom, 0, 0, false},
		{"update records both in one commit", nil, 1, 1, true},
	}
	for _, tt := range tests {
		before := s.Commits()
		err := s.Update(func(tx *Tx) error {
			if _, err := tx.AddActivation("host", Activation{To: v.Number, How: "swap"}); err != nil {
				return err
			}
			if err := tx.SetKernel("host", Kernel{Production: v.Number, Gen: 7}); err != nil {
				return err
			}
			return tt.fail
		})
		if !errors.Is(err, tt.fail) {
			t.Fatalf("%s: Update = %v, want %v", tt.name, err, tt.fail)
		}
		if got := s.Commits() - before; got != tt.commits {
			t.Errorf("%s: %d commits, want %d", tt.name, got, tt.commits)
		}
		acts, err := s.Activations("host")
		if err != nil || len(acts) != tt.acts {
			t.Errorf("%s: activations %+v (%v), want %d", tt.name, acts, err, tt.acts)
		}
		k, ok, err := s.Kernel("host")
		if err != nil || ok != tt.kernel || (ok && k.Production != v.Number) {
			t.Errorf("%s: kernel %+v %v %v, want recorded=%v", tt.name, k, ok, err, tt.kernel)
		}
	}
}
