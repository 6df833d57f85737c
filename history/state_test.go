package history

import "testing"

// LastConfirmed, what restore brings back, never names a version whose
// confirmed swap did not end in confirm.
func TestLastConfirmed(t *testing.T) {
	type act struct {
		from, to uint64
		result   string
	}
	cases := []struct {
		name string
		acts []act
		want uint64
	}{
		{"nothing went live", nil, 0},
		{"plain swaps", []act{{0, 1, ""}, {1, 2, ""}}, 2},
		{"confirmed", []act{{0, 1, ""}, {1, 2, "confirmed"}}, 2},
		{"pending", []act{{0, 1, ""}, {1, 2, "pending"}}, 1},
		{"reverted, then the revert", []act{{0, 1, ""}, {1, 2, "reverted"}, {2, 1, ""}}, 1},
		{"reverted while the kernel was empty", []act{{0, 1, ""}, {1, 2, "reverted"}}, 1},
		{"superseded (written by older fwslot)", []act{{0, 1, ""}, {1, 2, "superseded"}}, 1},
		{"rolled back, then the rollback", []act{{0, 1, ""}, {1, 2, "rolled back"}, {2, 1, ""}}, 1},
		{"first swap pending", []act{{0, 1, "pending"}}, 0},
		{"two unconfirmed in a row", []act{{0, 1, "confirmed"}, {1, 2, "reverted"}, {2, 3, "pending"}}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, _ := openTemp(t)
			for n := uint64(1); n <= 3; n++ {
				if _, err := s.AddVersion("host", Version{Source: string(rune('a' + n))}, nil); err != nil {
					t.Fatal(err)
				}
			}
			for _, a := range c.acts {
				if _, err := s.addActivation("host", Activation{From: a.from, To: a.to, How: "swap", Result: a.result}); err != nil {
					t.Fatal(err)
				}
			}
			got, err := s.LastConfirmed("host")
			if err != nil || got != c.want {
				t.Fatalf("LastConfirmed = %d, %v; want %d", got, err, c.want)
			}
		})
	}
}
