package slots

import "testing"

// TestRootOwned: uid 0 always owns /tmp as root; the overflow uid (65534
// on this kernel's default) only in a user namespace, where it stands for
// the unmapped host root, and only for a sticky directory: in the initial
// namespace it is a real user (nobody). cmd/fwslot's TestRootlessTest
// compiles through privateDir inside `unshare -Urn`.
func TestRootOwned(t *testing.T) {
	userns := inUserNamespace()
	cases := []struct {
		uid    uint32
		sticky bool
		want   bool
	}{
		{0, true, true},
		{0, false, true},
		{65534, true, userns},
		{65534, false, false},
		{1000, true, false},
	}
	for _, c := range cases {
		if got := rootOwned(c.uid, c.sticky); got != c.want {
			t.Errorf("rootOwned(%d, sticky %v) = %v, want %v", c.uid, c.sticky, got, c.want)
		}
	}
}
