package slots

import (
	"context"
	"errors"
	"testing"

	"github.com/fwslot/fwslot/internal/nfnl"
)

// badRule is a rule the kernel refuses: an immediate into register 99.
// session's load test has its twin.
func badRule() []byte {
	var e nfnl.Encoder
	e.Nested(nfnl.RuleExpressions, func(l *nfnl.Encoder) {
		l.Nested(nfnl.ListElem, func(x *nfnl.Encoder) {
			x.String(nfnl.ExprName, "immediate")
			x.Nested(nfnl.ExprData, func(d *nfnl.Encoder) {
				d.Uint32(nfnl.ImmediateDreg, 99)
				d.Nested(nfnl.ImmediateData, func(dd *nfnl.Encoder) {
					dd.Raw(1, []byte{0, 0, 0, 1}) // NFTA_DATA_VALUE
				})
			})
		})
	})
	return e.Bytes()
}

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
			ifs, err := Interfaces(ns)
			if err != nil {
				t.Fatal(err)
			}
			rs, err := Compile(context.Background(), file, ifs)
			if err != nil {
				t.Fatal(err)
			}
			rs.Tables[0].Chains[0].Rules[tc.rule] = badRule()
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
