package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/fwslot/fwslot/internal/commit"
	"github.com/fwslot/fwslot/internal/slots"
	"github.com/fwslot/fwslot/probe"
	"github.com/fwslot/fwslot/session"
)

// adviceWords betray a next step in an error's text: library errors must
// not hold them.
var adviceWords = []string{"`fwslot", "--", "as root", "nft delete", "rename it", "remove ", "split it", "ip netns", "swap first", "revert first", "use rollback"}

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
		{"table flushed by hand", fmt.Errorf("load: %w", &slots.FlushedError{Table: "inet filter"}), "run `fwslot restore` to rebuild it from history, or `nft delete table inet filter` to start over"},
		{"takeover after the first load", &slots.LateTakeoverError{Table: "ip nat", Managed: []string{"inet filter"}}, "remove the table (nft delete table ip nat) or leave it out of the file"},
		{"iptables-nft table", fmt.Errorf("%w: table ip filter is iptables-nft's", slots.ErrXtables), "put your rules in a table of your own (for example `table inet filter`), or remove that table from the file"},
		{"two histories", fmt.Errorf("%w, a (/a.db) and b (/b.db, table inet filter)", slots.ErrTwoOwners), "remove the tables of the wrong history"},
		{"no such namespace", fmt.Errorf("%w: %q", slots.ErrNoNamespace, "lab"), "see `ip netns list`"},
		{"too many rules", fmt.Errorf("r.nft: %w", &slots.LimitError{Kind: "rules", Count: 2_000_000, Limit: 1_000_000}), "split it or check the generator that wrote it"},
		{"reserved name", fmt.Errorf("table inet filter: chain name %q: %w", "fwslot_a", slots.ErrReserved), "rename it"},
		{"restore over live slots", fmt.Errorf("%w (version 2 is live)", session.ErrNotEmpty), "to change versions, use `fwslot swap` or `fwslot rollback`"},
		{"commit while pending", fmt.Errorf("%w: version 3 reverts to 2 unless confirmed", commit.ErrPending), "run `fwslot confirm` or let it revert first"},
		{"commit before the takeover swap", commit.ErrTakeover, "run `fwslot swap` first"},
		{"plain failure", errors.New("disk full"), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lib := c.err.Error()
			for _, a := range adviceWords {
				if strings.Contains(lib, a) {
					t.Fatalf("library error %q gives command-line advice (%q)", lib, a)
				}
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
