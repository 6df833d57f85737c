package linediff

import "testing"

// TestCountWithinBoundedWork: past its edit or work bound CountWithin
// counts lines by content; a reordering then counts nothing, where the
// edit script would move lines.
func TestCountWithinBoundedWork(t *testing.T) {
	a := []string{"1", "2", "3", "4", "5", "6"}
	b := []string{"6", "5", "4", "3", "2", "1", "7"}
	tests := []struct {
		name            string
		maxD, maxWork   int
		wantAdd, wantRm int
	}{
		{"unbounded", 100, 1 << 20, 6, 5},
		{"edit bound", 3, 1 << 20, 1, 0},
		{"work bound", 100, 10, 1, 0},
	}
	for _, tt := range tests {
		add, rm := CountWithin(a, b, tt.maxD, tt.maxWork)
		if add != tt.wantAdd || rm != tt.wantRm {
			t.Errorf("%s: +%d -%d, want +%d -%d", tt.name, add, rm, tt.wantAdd, tt.wantRm)
		}
	}
}
