// Package nfnltest holds nf_tables messages for tests of refusals: rules
// that encode well and that the kernel refuses.
package nfnltest

import "github.com/fwslot/fwslot/internal/nfnl"

// RefusedRule is a rule's attributes that the kernel refuses: an
// immediate into register 99.
func RefusedRule() []byte {
	var e nfnl.Encoder
	e.ImmediateRule(99, func(dd *nfnl.Encoder) {
		dd.Raw(1, []byte{0, 0, 0, 1}) // NFTA_DATA_VALUE
	})
	return e.Bytes()
}
