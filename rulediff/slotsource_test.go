package rulediff

import (
	"strings"
	"testing"

	"github.com/fwslot/fwslot/internal/names"
)

// A listing of fwslot's layout with both slots filled, a rule inserted by
// hand before the dispatch jump and one added after the policy rule.
const bothSlots = `table inet filter {
	set fwslot_a_allowed {
		type ipv4_addr
		elements = { 192.0.2.1 }
	}
	set fwslot_b_allowed {
		type ipv4_addr
		elements = { 192.0.2.9, 192.0.2.2 }
	}
	chain fwslot {
		comment "fwslot active=b"
	}
	chain fwslot_a {
	}
	chain fwslot_b {
	}
	chain input {
		type filter hook input priority filter; policy accept;
		tcp dport 8443 accept
		jump fwslot_b_input comment "fwslot jump slot=b version=1"
		drop comment "fwslot policy slot=b version=1"
		tcp dport 9 accept
	}
	chain fwslot_a_input {
		tcp dport 22 accept
	}
	chain fwslot_b_input {
		ip saddr @fwslot_b_allowed jump fwslot_b_svc
	}
	chain fwslot_b_svc {
		tcp dport 80 accept
	}
}
table ip other {
	chain c {
		type filter hook input priority filter; policy accept;
	}
}
`

func TestSlotSource(t *testing.T) {
	cases := []struct {
		slot      names.Slot
		keep      func(string) bool
		want, not []string
		notes     int
	}{
		{names.SlotB, nil, []string{
			"set allowed {", "elements = { 192.0.2.2,\n", "192.0.2.9 }",
			"chain input {\n\t\ttype filter hook input priority filter; policy drop;\n\t\ttcp dport 8443 accept\n\t\tip saddr @allowed jump svc\n\t\ttcp dport 9 accept\n\t}",
			"chain svc {\n\t\ttcp dport 80 accept\n\t}",
		}, []string{"fwslot", "192.0.2.1", "dport 22", "table ip other"}, 1},
		{names.SlotA, nil, []string{"elements = { 192.0.2.1 }", "tcp dport 22 accept"}, []string{"fwslot", "svc", "192.0.2.9"}, 1},
		{names.SlotB, func(string) bool { return false }, nil, []string{"table"}, 0},
	}
	for _, c := range cases {
		src, notes, err := slotSource(bothSlots, c.slot, c.keep)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range c.want {
			if !strings.Contains(src, w) {
				t.Errorf("slot %s: source lacks %q:\n%s", c.slot, w, src)
			}
		}
		for _, n := range c.not {
			if strings.Contains(src, n) {
				t.Errorf("slot %s: source holds %q:\n%s", c.slot, n, src)
			}
		}
		if len(notes) != c.notes {
			t.Errorf("slot %s: notes %v, want %d", c.slot, notes, c.notes)
		}
	}
}
