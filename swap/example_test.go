package swap_test

import (
	"context"
	"fmt"
	"log"
	"strings"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/probe"
	"github.com/fwslot/fwslot/slots"
	"github.com/fwslot/fwslot/swap"
)

// Example stages a ruleset on the named namespace "lab" only if its probes
// pass in a twin, makes it live in one transaction, and rolls back. It needs
// CAP_NET_ADMIN, so it is compiled with the tests but not run; the command
// tests (cmd/fwslot) run the same calls on real namespaces.
func Example() {
	ctx := context.Background()
	store, err := history.Open("/var/lib/fwslot/lab.db", history.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	t := &slots.Target{NetNS: "lab", Store: store}

	probes, err := probe.Parse("inline", strings.NewReader(
		"accept tcp 198.51.100.7:40000 -> 192.0.2.10:22 in eth0\n"+
			"drop   tcp 203.0.113.9:40001 -> 192.0.2.10:23 in eth0\n"))
	if err != nil {
		log.Fatal(err)
	}
	// Load compiles the file, runs Check on the compiled form, and only
	// then writes the staging slot; production is untouched either way.
	loaded, err := t.Load(ctx, "/etc/fwslot/ruleset.nft", slots.LoadOptions{
		Message: "open ssh for the office",
		Check: func(ctx context.Context, file string, rs *slots.Ruleset) error {
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

	live, err := swap.Swap(ctx, t, swap.Options{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("live version", live.To)

	back, err := swap.Rollback(ctx, t, 0)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("live again", back.To)
}
