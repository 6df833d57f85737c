package features

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/fwslot/fwslot/internal/slots"
)

// Need is one line of a ruleset that needs a feature the kernel lacks.
type Need struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Source  string `json:"source"`
	Feature string `json:"feature"`
	Config  string `json:"config"`
}

// MissingError refuses a ruleset that needs features the running kernel
// lacks. It wraps nft's CompileError, so it is bad input like it.
type MissingError struct {
	Needs []Need
	Err   error
}

func (e *MissingError) Error() string {
	var b strings.Builder
	b.WriteString("this kernel lacks what the ruleset needs; nothing was changed:")
	for _, n := range e.Needs {
		fmt.Fprintf(&b, "\n  %s:%d: %s needs %s, which this kernel lacks: %s", n.File, n.Line, n.Feature, n.Config, n.Source)
	}
	b.WriteString("\nbuild the kernel with those options or leave those lines out; `fwslot features` lists what this kernel supports")
	return b.String()
}

func (e *MissingError) Unwrap() error { return e.Err }

// kernelRefusals are nft's words for a kernel that has no code for what a
// command asks (no module: ENOENT; no support in a module: EOPNOTSUPP).
var kernelRefusals = []string{"No such file or directory", "Operation not supported"}

// Explain turns nft's refusal of a ruleset into a MissingError when the
// refused lines use features the kernel lacks (probed now, in a private
// namespace); any other error comes back unchanged.
func Explain(ctx context.Context, err error) error {
	var ce *slots.CompileError
	if !errors.As(err, &ce) {
		return err
	}
	var refused []NftError
	for _, e := range ParseErrors(ce.Output) {
		if !strings.HasPrefix(e.Msg, "Could not process rule:") {
			continue
		}
		for _, r := range kernelRefusals {
			if strings.Contains(e.Msg, r) {
				refused = append(refused, e)
				break
			}
		}
	}
	if len(refused) == 0 {
		return err
	}
	rep, perr := Probe(ctx)
	if perr != nil {
		return errors.Join(err, fmt.Errorf("could not check which features this kernel lacks: %w", perr))
	}
	needs := Match(rep, refused)
	if len(needs) == 0 {
		return err
	}
	return &MissingError{Needs: needs, Err: err}
}

// Match names, for each refused line, the first feature the kernel lacks
// whose keywords the line uses.
func Match(rep *Report, refused []NftError) []Need {
	var needs []Need
	for _, e := range refused {
		for i, f := range All {
			if f.Match == nil || rep.Features[i].Supported || !f.Match.MatchString(e.Source) {
				continue
			}
			needs = append(needs, Need{File: e.File, Line: e.Line, Source: e.Source, Feature: f.Name, Config: f.Config})
			break
		}
	}
	return needs
}
