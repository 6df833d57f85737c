package session

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/kerneltest"
	"github.com/fwslot/fwslot/internal/slots"
	"github.com/fwslot/fwslot/internal/testnet"
)

// newTarget returns a fwslot target on ns with a fresh history file.
func newTarget(t *testing.T, ns string) *Target { return targetWith(t, ns, history.Options{}) }

// targetWith is newTarget with its history opened with opts.
func targetWith(t *testing.T, ns string, opts history.Options) *Target {
	t.Helper()
	s, err := history.Open(filepath.Join(t.TempDir(), "fwslot.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &Target{NetNS: ns, Store: s}
}

// compileFor compiles file for the interfaces of ns, as a load on ns
// would.
func compileFor(t *testing.T, ns, file string) *slots.Ruleset {
	t.Helper()
	ifs, err := slots.Interfaces(ns)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := slots.Compile(context.Background(), file, ifs)
	if err != nil {
		t.Fatalf("compile %s: %v", file, err)
	}
	return rs
}

// nsTarget makes a namespace named prefix* and a target on it with a
// fresh history file.
func nsTarget(t *testing.T, prefix string) (ns string, tg *Target) {
	t.Helper()
	ns = testnet.Namespace(t, prefix)
	return ns, newTarget(t, ns)
}

// sshLiveWebStaged makes a target in a new namespace (named prefix*)
// with onlySSH live (version 1) and onlyWeb staged (version 2).
func sshLiveWebStaged(t *testing.T, prefix string) (ns string, tg *Target) {
	t.Helper()
	ns, tg = nsTarget(t, prefix)
	load(t, tg, writeRuleset(t, "ssh.nft", onlySSH))
	mustSwap(t, tg)
	load(t, tg, writeRuleset(t, "web.nft", onlyWeb))
	return ns, tg
}

// confirmOnce confirms in a session of its own, as `fwslot confirm` does.
func confirmOnce(ctx context.Context, tg *Target) (uint64, error) {
	s, err := Open(ctx, tg, Options{})
	if err != nil {
		return 0, err
	}
	defer s.Close()
	return s.Confirm(ctx)
}

// restoreOnce restores in a session of its own, as `fwslot restore` does.
func restoreOnce(ctx context.Context, tg *Target) (*Result, error) {
	s, err := Open(ctx, tg, Options{})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.Restore(ctx, RestoreOptions{})
}

// identity returns the identity and path of tg's history, as the kernel
// is tagged with them.
func identity(t *testing.T, tg *Target) (id, db string) {
	t.Helper()
	s, err := Open(context.Background(), tg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if id, db, err = s.identity(); err != nil {
		t.Fatal(err)
	}
	return id, db
}

func writeRuleset(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func load(t *testing.T, tg *Target, file string) *LoadResult {
	t.Helper()
	res, err := tg.Load(context.Background(), file, LoadOptions{Message: filepath.Base(file)})
	if err != nil {
		t.Fatalf("load %s: %v", file, err)
	}
	return res
}

func mustSwap(t *testing.T, tg *Target) *Result {
	t.Helper()
	res, err := tg.Swap(context.Background(), SwapOptions{})
	if err != nil {
		t.Fatalf("swap: %v", err)
	}
	return res
}

// servingPair makes a target namespace listening on tcp 22 and 80 and a
// peer wired to it (testnet.Pair).
func servingPair(t *testing.T) (target, peer string) {
	t.Helper()
	target, peer = testnet.Pair(t)
	testnet.Listen(t, target, "tcp", ":22")
	testnet.Listen(t, target, "tcp", ":80")
	return target, peer
}

// pendingWeb makes a target in a new namespace (named prefix*) with ssh
// live and web swapped in, waiting an hour for confirmation.
func pendingWeb(t *testing.T, prefix string) (ns string, tg *Target, p *Result) {
	t.Helper()
	ns, tg = sshLiveWebStaged(t, prefix)
	p, err := tg.Swap(context.Background(), SwapOptions{Confirm: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return ns, tg, p
}

func mustRollback(t *testing.T, tg *Target, to uint64) *Result {
	t.Helper()
	res, err := tg.Rollback(context.Background(), to)
	if err != nil {
		t.Fatalf("rollback: %v", err)
	}
	return res
}

// expectReach checks which ports of the target accept a connection from
// the peer. A connection that should work gets time for SYN
// retransmissions (a busy machine, a link that just came up); one that
// should be dropped fails either way, so it gets less.
func expectReach(t *testing.T, peer string, want map[string]bool) {
	t.Helper()
	for port, ok := range want {
		timeout := 300 * time.Millisecond
		if ok {
			timeout = 3500 * time.Millisecond
		}
		got := testnet.Connect(peer, testnet.TargetIP+":"+port, timeout)
		if got != ok {
			t.Errorf("port %s: connection established = %v, want %v", port, got, ok)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

func nftList(t *testing.T, ns string, args ...string) string {
	t.Helper()
	return testnet.Run(t, ns, append([]string{"nft"}, args...)...)
}

func contains(t *testing.T, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Fatalf("want %q in:\n%s", sub, s)
	}
}

// kernelNow is what a refused operation must leave as it was: the
// target's ruleset as nft lists it (handles included) and production.
type kernelNow struct {
	ns      string
	ruleset string
	prod    []byte
}

// readKernel reads the kernel of ns as it is now.
func readKernel(t *testing.T, ns string) kernelNow {
	t.Helper()
	return kernelNow{ns: ns, ruleset: nftList(t, ns, "-a", "list", "ruleset"), prod: kerneltest.Production(t, ns)}
}

// unchanged fails the test when the kernel is no longer as k read it;
// what names the operation that must not have changed it.
func (k kernelNow) unchanged(t *testing.T, what string) {
	t.Helper()
	if !bytes.Equal(kerneltest.Production(t, k.ns), k.prod) {
		t.Fatalf("%s changed production", what)
	}
	if after := nftList(t, k.ns, "-a", "list", "ruleset"); after != k.ruleset {
		t.Fatalf("%s changed the kernel:\n--- before\n%s\n--- after\n%s", what, k.ruleset, after)
	}
}

// mustRefuseStaging loads file, which the kernel must refuse while
// staging it (what names what it must not take), leaving production
// untouched.
func mustRefuseStaging(t *testing.T, tg *Target, file, what string) {
	t.Helper()
	_, err := tg.Load(context.Background(), file, LoadOptions{})
	if err == nil || !strings.Contains(err.Error(), "production untouched") {
		t.Fatalf("the kernel took %s, or the load failed before staging: %v", what, err)
	}
}
