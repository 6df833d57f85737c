package history

import (
	"errors"
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// MaxNumber is the largest version or activation number history accepts
// from an import. Numbers count up from 1 and are never reused; a number
// near the top of uint64 would make the next one wrap to 0 and wedge the
// target, and no real history gets near 2^53 (the largest integer a JSON
// reader that uses float64 keeps exactly).
const MaxNumber = 1 << 53

// ErrUntrusted is returned (wrapped) by Import when the records or
// activations carry something no fwslot writes: numbers out of range or
// repeated, a pending activation, control characters in text fields.
var ErrUntrusted = errors.New("import refused")

// checkText returns an error when s holds a control character or an
// invisible formatting character (bidirectional overrides and the like),
// which would let a stored text forge or hide rows of `fwslot history`
// and `fwslot status`. field names s in the message.
func checkText(field, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s %q is not valid UTF-8", field, s)
	}
	for i, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return fmt.Errorf("%s %q holds the control character %U at byte %d", field, s, r, i)
		}
	}
	return nil
}

// CheckImport refuses records and activations that no fwslot export holds.
// Import runs it before its transaction, so a refused import writes
// nothing; callers run it before they spend time on the records.
func CheckImport(recs []Record, acts []Activation, seq uint64) error {
	refuse := func(format string, a ...any) error {
		return &kindError{kind: ErrUntrusted, msg: fmt.Sprintf(format, a...)}
	}
	seen := map[uint64]bool{}
	for _, r := range recs {
		switch {
		case r.Number == 0:
			return refuse("a version without a number")
		case r.Number > MaxNumber:
			return refuse("version number %d is above %d; no real history gets there", r.Number, uint64(MaxNumber))
		case seen[r.Number]:
			return refuse("version %d appears twice", r.Number)
		}
		seen[r.Number] = true
		fields := []textField{{"user", r.User}, {"message", r.Message}, {"origin", r.Origin}, {"hash", r.Hash}}
		for _, t := range r.Tables {
			fields = append(fields, textField{"table", t})
		}
		for _, f := range r.Files {
			fields = append(fields, textField{"file path", f.Path})
		}
		if err := checkFields("version "+strconv.FormatUint(r.Number, 10), fields); err != nil {
			return refuse("%v", err)
		}
	}
	if seq > MaxNumber {
		return refuse("the version sequence %d is above %d; no real history gets there", seq, uint64(MaxNumber))
	}
	seenAct := map[uint64]bool{}
	for _, a := range acts {
		switch {
		case a.Seq == 0:
			return refuse("an activation without a number")
		case a.Seq > MaxNumber || a.From > MaxNumber || a.To > MaxNumber:
			return refuse("activation %d (from %d to %d) has a number above %d; no real history gets there", a.Seq, a.From, a.To, uint64(MaxNumber))
		case seenAct[a.Seq]:
			return refuse("activation %d appears twice", a.Seq)
		case a.Result == "pending":
			return refuse("activation %d is pending confirmation; a swap waiting for `fwslot confirm` belongs to the machine it ran on: confirm or let it revert there, then export again", a.Seq)
		}
		seenAct[a.Seq] = true
		fields := []textField{{"user", a.User}, {"note", a.Note}, {"how", a.How}, {"result", a.Result}}
		if err := checkFields("activation "+strconv.FormatUint(a.Seq, 10), fields); err != nil {
			return refuse("%v", err)
		}
	}
	return nil
}

// textField is a named text field of an imported version or activation.
type textField struct{ name, val string }

// checkFields runs checkText on each field of what ("version 3").
func checkFields(what string, fields []textField) error {
	for _, f := range fields {
		if err := checkText(what+" "+f.name, f.val); err != nil {
			return err
		}
	}
	return nil
}
