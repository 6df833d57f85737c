package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/fwslot/fwslot/internal/slots"
	"github.com/fwslot/fwslot/probe"
	"github.com/fwslot/fwslot/session"
)

// Library errors say what failed and never what to run; the command line
// adds the next step, once.
func TestAdviceIsTheCommandLines(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want string // advice the CLI prints; "" for none
	}{
		{"nothing staged", session.ErrNothingStaged, "run `fwslot load FILE` first"},
		{"pending", fmt.Errorf("%w: version 2 reverts to 1", session.ErrPending), "run `fwslot confirm` first"},
		{"drift", fmt.Errorf("%w: chain extra was added by hand", session.ErrDrift), "swap with --force"},
		{"no earlier version", fmt.Errorf("%w: version 1", session.ErrNoEarlier), "--to N"},
		{"confirm of a version not live", fmt.Errorf("%w: version 2", session.ErrNotLive), "run `fwslot restore`"},
		{"vanished", slots.VanishedError(2), "run `fwslot restore`"},
		{"mixed slot", fmt.Errorf("%w: slot a", slots.ErrMixedSlot), "`fwslot load`"},
		{"other history", fmt.Errorf("t is managed by history x: %w", slots.ErrNotOwner), "use --db"},
		{"no privilege", slots.ErrPermission, "run it as root"},
		{"no twin namespaces", fmt.Errorf("%w; %w", slots.ErrPermission, probe.ErrNoNamespaces), "unshare -Urn fwslot test"},
		{"iptables-save input", fmt.Errorf("nft rejected f: %w", slots.ErrIptablesInput), "--from-iptables"},
		{"CRLF line endings", fmt.Errorf("nft rejected f: %w", slots.ErrCRLF), "sed -i"},
		{"plain failure", errors.New("disk full"), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lib := c.err.Error()
			if strings.Contains(lib, "`fwslot") || strings.Contains(lib, "--") || strings.Contains(lib, "as root") {
				t.Fatalf("library error %q gives command-line advice", lib)
			}
			got := withAdvice(c.err)
			if !errors.Is(got, c.err) {
				t.Fatalf("withAdvice lost the error: %v", got)
			}
			if c.want == "" {
				if got.Error() != lib {
					t.Fatalf("advice for %q: %q", lib, got)
				}
				return
			}
			if !strings.HasPrefix(got.Error(), lib) || !strings.Contains(got.Error(), c.want) {
				t.Fatalf("withAdvice(%q) = %q, want it followed by %q", lib, got, c.want)
			}
			// An error that names its next step already keeps one copy.
			if twice := withAdvice(got); strings.Count(twice.Error(), advice(c.err)) != 1 {
				t.Fatalf("advice doubled: %q", twice)
			}
		})
	}
}
