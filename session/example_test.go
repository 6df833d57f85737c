package session_test

import (
	"context"
	"fmt"
	"log"
	"strings"

	"github.com/fwslot/fwslot/probe"
	"github.com/fwslot/fwslot/session"
)

// Example_lab stages a ruleset on the named namespace "lab" only if its
// probes pass in a twin, makes it live in one transaction, and rolls back,
// all in one session. It needs CAP_NET_ADMIN, so it is compiled with the
// tests but not run; the command tests (cmd/fwslot) run the same calls on
// real namespaces, and Example runs this API on a fake kernel.
func Example_lab() {
	ctx := context.Background()
	s, err := session.Open(ctx, &session.Target{NetNS: "lab"}, session.Options{DB: "/var/lib/fwslot/lab.db"})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	probes, err := probe.Parse("inline", strings.NewReader(
		"accept tcp 198.51.100.7:40000 -> 192.0.2.10:22 in eth0\n"+
			"drop   tcp 203.0.113.9:40001 -> 192.0.2.10:23 in eth0\n"))
	if err != nil {
		log.Fatal(err)
	}
	// Load compiles the file, runs Check on the compiled form, and only
	// then writes the staging slot; production is untouched either way.
	loaded, err := s.Load(ctx, "/etc/fwslot/ruleset.nft", session.LoadOptions{
		Message: "open ssh for the office",
		Check: func(ctx context.Context, file string, rs *session.Ruleset) error {
			rep, err := probe.Run(ctx, probe.Topology{}, probe.RulesetLoader(rs), probes, nil, probe.Options{})
			if err != nil {
				return err
			}
			if !rep.OK() {
				return fmt.Errorf("%s: %d of %d probes failed", file, rep.Failed, len(rep.Results))
			}
			return nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("staged version", loaded.Version)

	live, err := s.Swap(ctx, session.SwapOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("live version", live.To)

	back, err := s.Rollback(ctx, 0)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("live again", back.To)
}
