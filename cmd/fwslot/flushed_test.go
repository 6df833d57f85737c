package main

import (
	"strings"
	"testing"
	"time"

	"github.com/fwslot/fwslot/internal/sandbox"
	"github.com/fwslot/fwslot/internal/testnet"
)

// After `nft flush table` by hand, fwslot's chains remain without their
// rules. The host fails closed (the base chain's policy), status says what
// happened and what to do, commands that would build on it refuse, and
// restore rebuilds the table from history in one transaction: proven with
// packets at each step.
func TestHandFlushedTableIsRecoverable(t *testing.T) {
	testnet.RequireRoot(t)
	sb := listeningSandbox(t, "fwslot-fl-")
	defer sb.Close()
	g := targetFlags(t, sb.Target)
	ssh := writeFile(t, "ssh.nft", sshOnly)
	runSteps(t, g, [][]string{{"load", ssh}, {"swap"}})
	reach := func(port int) bool { return sb.Connect(port, 2*time.Second) }
	if !reach(22) || reach(80) {
		t.Fatal("before the flush: want 22 open and 80 closed")
	}
	if out, err := sandbox.Exec(sb.Target, "nft", "flush", "table", "inet", "filter"); err != nil {
		t.Fatalf("nft flush table: %v %s", err, out)
	}
	if reach(22) || reach(80) {
		t.Fatal("after the flush the host must fail closed (policy drop)")
	}
	before, _ := sandbox.Exec(sb.Target, "nft", "list", "ruleset")
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"status", []string{"status"}, 0, "table inet filter was flushed by hand"},
		{"status --json", []string{"status", "--json"}, 0, `"drift": true`},
		{"rollback", []string{"rollback"}, 1, "run `fwslot restore`"},
		{"swap", []string{"swap", "--force"}, 1, "run `fwslot restore`"},
		{"load", []string{"load", ssh}, 1, "run `fwslot restore`"},
	}
	for _, c := range cases {
		out, code := run(t, append(g, c.args...)...)
		if code != c.code || !strings.Contains(out, c.want) {
			t.Errorf("%s: exit %d, want %d with %q:\n%s", c.name, code, c.code, c.want, out)
		}
	}
	if after, _ := sandbox.Exec(sb.Target, "nft", "list", "ruleset"); after != before {
		t.Fatalf("refused commands changed the kernel:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	out, code := run(t, append(g, "restore")...)
	if code != 0 || !strings.Contains(out, "had been flushed by hand; rebuilt from history") {
		t.Fatalf("restore: exit %d\n%s", code, out)
	}
	if !reach(22) || reach(80) {
		t.Fatal("after restore: want 22 open and 80 closed")
	}
	if s := status(t, g...); s.Production == nil || s.Production.Version != 1 || s.Drift {
		t.Fatalf("status after restore: %+v", s)
	}
}
