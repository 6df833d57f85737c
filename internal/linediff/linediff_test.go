package linediff

import (
	"strings"
	"testing"
)

func TestForward(t *testing.T) {
	for _, c := range []struct {
		name, a, b    string
		maxD, maxWork int
		want          int
	}{
		{"equal", "a b c", "a b c", 10, 1000, 0},
		{"one added", "a c", "a b c", 10, 1000, 1},
		{"one changed", "a b c", "a x c", 10, 1000, 2},
		{"all different", "a b", "x y z", 10, 1000, 5},
		{"past maxD", "a b", "x y z", 4, 1000, -1},
		{"past maxWork", "a b c d", "x y z w", 100, 3, -1},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, b := strings.Fields(c.a), strings.Fields(c.b)
			frontiers := 0
			got := Forward(a, b, c.maxD, c.maxWork, func(f []int) {
				if len(f) != 2*frontiers+1 {
					t.Errorf("frontier before distance %d has %d entries, want %d", frontiers, len(f), 2*frontiers+1)
				}
				frontiers++
			})
			if got != c.want {
				t.Errorf("Forward(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
			}
			if got >= 0 && frontiers != got+1 {
				t.Errorf("before called %d times, want %d", frontiers, got+1)
			}
		})
	}
}
