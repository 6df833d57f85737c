package session

import (
	"context"
	"testing"

	"github.com/fwslot/fwslot/internal/kerneltest"
	"github.com/fwslot/fwslot/internal/nfnl"
)

// A swap, a rollback and a load read each kernel object once: one connection, and
// exactly the requests of one state read (the generation, then tables,
// chains and fwslot's own rules), nothing twice. With the one history
// commit TestCommitsPerCommand holds them to, this is issue 10's budget.
func TestSwapReadsTheKernelOnce(t *testing.T) {
	ns, tg := sshLiveWebStaged(t, "fwslot-reads")
	ctx := context.Background()
	mustSwap(t, tg)
	cases := []struct {
		name string
		run  func() error
	}{
		{"rollback", func() error { _, err := tg.Rollback(ctx, 0); return err }},
		{"swap", func() error { _, err := tg.Swap(ctx, SwapOptions{}); return err }},
		// A load compiles in a private namespace of its own; on the
		// target it reads the state once and commits one batch.
		{"load", func() error {
			_, err := tg.Load(ctx, writeRuleset(t, "ssh2.nft", onlySSH+"# again\n"), LoadOptions{})
			return err
		}},
	}
	for _, c := range cases {
		want := kerneltest.StateReads(t, ns) // one state read, on a connection of its own
		var conns []*nfnl.Conn
		tg.OnDial = func(c *nfnl.Conn) { conns = append(conns, c) }
		err := c.run()
		tg.OnDial = nil
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got := 0
		for _, conn := range conns {
			got += conn.Requests()
		}
		if len(conns) != 1 || got != want {
			t.Errorf("%s: %d connections and %d kernel requests, want 1 and %d (one state read)", c.name, len(conns), got, want)
		}
	}
}
