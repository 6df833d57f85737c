package main

import (
	"strings"
	"testing"
	"time"

	"github.com/fwslot/fwslot/internal/sandbox"
	"github.com/fwslot/fwslot/internal/testnet"
)

// openAll is another tool's ruleset: nftables.service reloading
// /etc/nftables.conf over fwslot's tables.
const openAll = `flush ruleset
table inet filter {
	chain input {
		type filter hook input priority 0; policy accept;
	}
}
`

// A production that vanished behind fwslot's back is loud: status says
// which version is gone and to run restore (drift in --json), rollback,
// swap and load refuse with the same advice and change nothing (load does
// not adopt what runs now), and restore brings the version back, proven
// with packets.
func TestVanishedProduction(t *testing.T) {
	testnet.RequireRoot(t)
	cases := []struct {
		name string
		wipe []string // nft arguments, run in the target
		file string   // or a file loaded with nft -f
	}{
		{name: "nft delete table", wipe: []string{"delete", "table", "inet", "filter"}},
		{name: "nft flush ruleset", wipe: []string{"flush", "ruleset"}},
		{name: "another ruleset reloaded", file: openAll},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sb := listeningSandbox(t, "fwslot-vp-")
			defer sb.Close()
			g := targetFlags(t, sb.Target)
			runSteps(t, g, twoSwaps(t))
			if c.file != "" {
				if out, err := sandbox.Exec(sb.Target, "nft", "-f", writeFile(t, "other.nft", c.file)); err != nil {
					t.Fatalf("nft -f: %v %s", err, out)
				}
			} else if out, err := sandbox.Exec(sb.Target, append([]string{"nft"}, c.wipe...)...); err != nil {
				t.Fatalf("nft %v: %v %s", c.wipe, err, out)
			}
			const advice = "version 2 is no longer in the kernel"
			s := status(t, g...)
			if !s.Drift || !strings.Contains(strings.Join(s.DriftChanges, "\n"), advice) || !strings.Contains(strings.Join(s.DriftChanges, "\n"), "fwslot restore") {
				t.Fatalf("status --json after the wipe: drift %v, changes %v; want %q and restore", s.Drift, s.DriftChanges, advice)
			}
			if out, code := run(t, append(g, "status")...); code != 0 || !strings.Contains(out, "production  (empty: "+advice) {
				t.Fatalf("status: exit %d, want 0 naming the gone version\n%s", code, out)
			}
			before := testnet.Run(t, sb.Target, "nft", "list", "ruleset")
			for _, cmd := range [][]string{
				{"rollback"},
				{"swap"},
				{"swap", "--force"},
				{"load", writeFile(t, "new.nft", strings.Replace(sshOnly, "dport 22", "dport 2222", 1))},
			} {
				out, code := run(t, append(g, cmd...)...)
				if code != 1 || !strings.Contains(out, advice) || !strings.Contains(out, "run `fwslot restore`") {
					t.Fatalf("%v after the wipe: exit %d, want 1 naming version 2 and restore\n%s", cmd, code, out)
				}
			}
			if after := testnet.Run(t, sb.Target, "nft", "list", "ruleset"); after != before {
				t.Fatalf("refused commands changed the kernel:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			out, code := run(t, append(g, "restore")...)
			if code != 0 || !strings.Contains(out, "version 2 is live") {
				t.Fatalf("restore: exit %d\n%s", code, out)
			}
			if !sb.Connect(80, time.Second) || sb.Connect(22, 300*time.Millisecond) {
				t.Fatal("restored version 2 should let the web in and keep ssh out")
			}
			if s := status(t, g...); s.Drift || len(s.Warnings) != 0 || s.Production == nil || s.Production.Version != 2 {
				t.Fatalf("after restore: %+v", s)
			}
			if out, code := run(t, append(g, "rollback")...); code != 0 || !strings.Contains(out, "version 1 is live") {
				t.Fatalf("rollback after restore: exit %d\n%s", code, out)
			}
		})
	}
}

// When no version was ever kept live (the only swap was never confirmed),
// an emptied kernel is as before fwslot: load goes ahead, and restore says
// there is nothing to bring back, so the operator is never told to run a
// restore that cannot work.
func TestNothingKeptIsNotVanished(t *testing.T) {
	ns, g := newTarget(t)
	runSteps(t, g, [][]string{{"load", writeFile(t, "ssh.nft", sshOnly)}, {"swap", "--confirm", "1h"}})
	testnet.Run(t, ns, "nft", "flush", "ruleset")
	if s := status(t, g...); s.Drift {
		t.Fatalf("nothing was ever kept live, yet status reports %v", s.DriftChanges)
	}
	if out, code := run(t, append(g, "restore")...); code != 1 || !strings.Contains(out, "nothing to restore") {
		t.Fatalf("restore with nothing kept: exit %d\n%s", code, out)
	}
	if out, code := run(t, append(g, "load", writeFile(t, "web.nft", webOnly))...); code != 0 {
		t.Fatalf("load into the emptied kernel: exit %d\n%s", code, out)
	}
}
