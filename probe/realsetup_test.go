package probe

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fwslot/fwslot/internal/nsutil"
	"github.com/fwslot/fwslot/internal/sysbin"
)

// readFilterChains prepares rn.unfilter from the router's base chains.
func (rn *realNet) readFilterChains() error {
	out, err := nftOutputNamed(rn.router, "", "-j", "list", "chains")
	if err != nil {
		return err
	}
	var doc struct {
		Nftables []struct {
			Chain *struct {
				Family, Table, Name, Type string
			} `json:"chain"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		return fmt.Errorf("parse chains: %w", err)
	}
	var b strings.Builder
	for _, o := range doc.Nftables {
		c := o.Chain
		if c == nil || (c.Type != "filter" && c.Type != "route") {
			continue
		}
		fmt.Fprintf(&b, "flush chain %[1]s %[2]s %[3]s\nchain %[1]s %[2]s %[3]s { policy accept; }\n", c.Family, c.Table, c.Name)
	}
	rn.unfilter = b.String()
	return nil
}

// reload puts the ruleset back as the file has it, in one transaction: the
// conntrack and NAT hooks never go away, so conntrack entries and their
// NAT bindings stay.
func (rn *realNet) reload() error {
	abs, err := filepath.Abs(rn.file)
	if err != nil {
		return err
	}
	_, err = nftOutputNamed(rn.router, fmt.Sprintf("flush ruleset\ninclude %q\n", abs)+realTraceTable, "-I", filepath.Dir(abs), "-f", "-")
	return err
}

// reset brings the router back to the state a fresh host has: no
// conntrack entries, and the ruleset reloaded when it holds state (limits,
// quotas, dynamic sets), so every packet meets it as loaded.
func (rn *realNet) reset() error {
	if rn.sequential {
		return nil
	}
	if rn.stateful {
		if err := rn.reload(); err != nil {
			return err
		}
	}
	if err := rn.ct.ctFlush(); err != nil {
		return err
	}
	if err := rn.readRouter(nil, ""); err != nil {
		return err
	}
	return rn.readPeers(nil, "")
}

// flushNeighbours empties the neighbour tables of the router and the peers.
func (rn *realNet) flushNeighbours() error {
	if err := ipBatch(rn.router, "neigh flush all\n"); err != nil {
		return err
	}
	for _, ri := range rn.ifs {
		if err := ipBatch(ri.ns, "neigh flush all\n"); err != nil {
			return err
		}
	}
	return nil
}

// listenProtos opens raw receive sockets in the router for the probes'
// protocols, as the twin does: a packet of a protocol nobody listens for
// would be answered with protocol-unreachable instead of being seen.
func (rn *realNet) listenProtos(t testing.TB, probes []Probe) {
	t.Helper()
	s := &sockets{raw4: rn.raw4, raw6: rn.raw6}
	h, err := nsutil.Open(rn.router)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for _, p := range probes {
		if err := s.ensureProto(h, p.Proto.number()); err != nil {
			t.Fatal(err)
		}
	}
	rn.fds = append(rn.fds, s.all...)
}

// ipBatch feeds commands to `ip -n NS -batch -`.
func ipBatch(ns, cmds string) error {
	if cmds == "" {
		return nil
	}
	ip, err := sysbin.IP()
	if err != nil {
		return err
	}
	var stderr bytes.Buffer
	cmd := exec.Command(ip, "-n", ns, "-batch", "-")
	cmd.Stdin = strings.NewReader(cmds)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ip -batch in %s: %w: %s", ns, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}
