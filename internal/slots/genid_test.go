package slots

import (
	"errors"
	"testing"

	"github.com/fwslot/fwslot/internal/names"
	"github.com/fwslot/fwslot/internal/nfnl"
)

// A batch built from state that another tool changed before the commit is
// refused whole (NFNL_BATCH_GENID), so it never applies over that change.
func TestBatchFromStaleStateFails(t *testing.T) {
	cases := []struct {
		name    string
		between []string // run in the target between reading state and committing
		wantErr error
	}{
		{"nothing in between", nil, nil},
		{"another table appears", []string{"nft", "add", "table", "ip", "f2b"}, nfnl.ErrGenChanged},
		{"a rule is added by hand", []string{"nft", "add", "rule", "inet", "filter", "input", "tcp", "dport", "23", "drop"}, nfnl.ErrGenChanged},
	}
	file := writeFile(t, "table inet filter {\n\tchain input {\n\t\ttype filter hook input priority 0; policy accept;\n\t\ttcp dport 22 accept\n\t}\n}\n")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ns := newTarget(t)
			run(t, ns, "nft", "add table inet filter; add chain inet filter input { type filter hook input priority 0; }")
			rs := compileFor(t, ns, file)
			conn, st := dialState(t, ns)
			b := nfnl.Batch{Gen: st.Gen}
			if err := Stage(&b, st, rs, names.SlotB, Tag{Version: 1, Hash: "h"}, names.SlotA); err != nil {
				t.Fatal(err)
			}
			if c.between != nil {
				run(t, ns, c.between...)
			}
			before := run(t, ns, "nft", "list", "ruleset")
			err := conn.Commit(&b)
			after := run(t, ns, "nft", "list", "ruleset")
			if !errors.Is(err, c.wantErr) || (err == nil) != (c.wantErr == nil) {
				t.Fatalf("commit: %v, want %v", err, c.wantErr)
			}
			if c.wantErr != nil && after != before {
				t.Fatalf("a refused batch changed the kernel:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}
