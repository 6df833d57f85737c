package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/fwslot/fwslot/internal/testnet"
	"github.com/fwslot/fwslot/probe"
)

// watch --swap goes through the same lockout guard as load and swap: a
// version that would cut the kept session is neither staged nor made
// live, and production stays as it was.
func TestWatchSwapKeepsTheGuard(t *testing.T) {
	ns, g := newTarget(t)
	db := dbOf(g)
	if out, code := run(t, append(g, "load", writeFile(t, "ssh.nft", sshOnly))...); code != 0 {
		t.Fatalf("load: %s", out)
	}
	if out, code := run(t, append(g, "swap")...); code != 0 {
		t.Fatalf("swap: %s", out)
	}
	ps, err := probe.Parse("web.probes", strings.NewReader("accept tcp 203.0.113.9:40000 -> 192.0.2.10:80 in eth0\n"))
	if err != nil {
		t.Fatal(err)
	}
	before := testnet.Run(t, ns, "nft", "list", "ruleset")
	st := &cliStager{
		g:    &globals{netns: ns, db: db, wait: 5 * time.Second, stderr: io.Discard},
		swap: true, confirm: 10 * time.Minute, probes: ps,
		keep: testnet.PeerIP + ":50022 -> " + testnet.TargetIP + ":22",
	}
	out, err := st.Stage(context.Background(), writeFile(t, "web.nft", webOnly))
	if err == nil || !strings.Contains(err.Error(), "would cut your session") || out.Live {
		t.Fatalf("watch staged or swapped a version that cuts the kept session: %+v, %v", out, err)
	}
	if after := testnet.Run(t, ns, "nft", "list", "ruleset"); after != before {
		t.Fatalf("the refused version changed the kernel:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if v := liveVersion(t, g...); v != 1 {
		t.Fatalf("live version %d, want 1", v)
	}
}
