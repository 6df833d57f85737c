package slots

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fwslot/fwslot/internal/names"
	"github.com/fwslot/fwslot/internal/nfnl"
	"github.com/fwslot/fwslot/internal/nsutil"
	"github.com/fwslot/fwslot/internal/source"
	"github.com/fwslot/fwslot/internal/testnet"
)

// newTarget creates a throwaway namespace with ifb devices eth0 and eth1 and
// removes it when the test ends.
func newTarget(t testing.TB) string {
	t.Helper()
	testnet.RequireRoot(t)
	ns, err := nsutil.Create("fwslot-t-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nsutil.Delete(ns) })
	for _, l := range []string{"eth0", "eth1"} {
		// Left down: no stray packet may move a counter that the
		// fidelity test compares.
		run(t, ns, "ip", "link", "add", l, "type", "ifb")
	}
	return ns
}

func run(t testing.TB, ns string, args ...string) string {
	t.Helper()
	var out []byte
	err := nsutil.Do(ns, func() error {
		var err error
		out, err = exec.Command(args[0], args[1:]...).CombinedOutput()
		return err
	})
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func writeFile(t testing.TB, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ruleset.nft")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// targetIfaces makes a target namespace (newTarget) and lists its
// interfaces.
func targetIfaces(t testing.TB) (ns string, ifs []Iface) {
	t.Helper()
	ns = newTarget(t)
	ifs, err := Interfaces(ns)
	if err != nil {
		t.Fatal(err)
	}
	return ns, ifs
}

// loadBundle reads the ruleset file main and the files it includes.
func loadBundle(t testing.TB, main string) *source.Bundle {
	t.Helper()
	b, err := source.Load(main, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// compileFor compiles file for the interfaces of ns.
func compileFor(t testing.TB, ns, file string) *Ruleset {
	t.Helper()
	ifs, err := Interfaces(ns)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := Compile(context.Background(), file, ifs)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// dialState dials ns and reads its slot state; the connection stays
// open until the test ends.
func dialState(t testing.TB, ns string) (*nfnl.Conn, *State) {
	t.Helper()
	c, err := nfnl.Dial(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	st, err := ReadState(c)
	if err != nil {
		t.Fatal(err)
	}
	return c, st
}

// stageAndFlip compiles file for ns, stages it into the inactive slot and
// optionally makes it live, each in one transaction.
func stageAndFlip(t testing.TB, ns, file string, version uint64, flip bool) {
	t.Helper()
	rs := compileFor(t, ns, file)
	c, st := dialState(t, ns)
	active := names.SlotA
	for _, ts := range st.Managed() {
		active = ts.Active
	}
	slot := active.Other()
	var b nfnl.Batch
	if err := Stage(&b, st, rs, slot, Tag{Version: version, Hash: "h"}, active); err != nil {
		t.Fatal(err)
	}
	if err := c.Commit(&b); err != nil {
		t.Fatalf("stage: %v", err)
	}
	if !flip {
		return
	}
	st, err := ReadState(c)
	if err != nil {
		t.Fatal(err)
	}
	var fb nfnl.Batch
	if err := Flip(&fb, st, slot, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Commit(&fb); err != nil {
		t.Fatalf("flip: %v", err)
	}
}
