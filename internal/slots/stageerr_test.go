package slots

import (
	"errors"
	"testing"

	"github.com/fwslot/fwslot/internal/nfnl"
	"github.com/fwslot/fwslot/internal/nfnltest"
)

// TestInstallRefusalNamesTheRule proves the same for Install, which the
// probe twin uses: LocateRefusal names the refused rule's file and line.
func TestInstallRefusalNamesTheRule(t *testing.T) {
	file := writeFile(t, "table ip t {\n\tchain input {\n\t\ttype filter hook input priority 0; policy accept;\n\t\tudp dport 53 accept\n\t\ttcp dport 22 accept\n\t}\n}\n")
	for _, tc := range []struct {
		name     string
		rule     int
		wantLine int
	}{
		{"first rule", 0, 4},
		{"second rule", 1, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := newTarget(t)
			rs := compileFor(t, ns, file)
			rs.Tables[0].Chains[0].Rules[tc.rule] = nfnltest.RefusedRule()
			c, err := nfnl.Dial(ns)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			err = LocateRefusal(Install(c, rs, Tag{}), file, rs)
			var se *StageError
			if !errors.As(err, &se) || se.File != file || se.Line != tc.wantLine {
				t.Fatalf("want a StageError at %s:%d, got %v", file, tc.wantLine, err)
			}
			if out := run(t, ns, "nft", "list", "ruleset"); out != "" {
				t.Fatalf("a refused install left objects behind:\n%s", out)
			}
		})
	}
}
