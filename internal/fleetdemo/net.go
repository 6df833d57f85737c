package fleetdemo

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/fwslot/fwslot/internal/sandbox"
)

// servicePorts are the ports every demo host serves on.
var servicePorts = []int{443, 8443, checkPort}

// hostAddr and clientAddr are the two ends of the link between the
// client namespace and host i (1-based): one /24 per host.
func hostAddr(i int) string   { return fmt.Sprintf("10.200.%d.1", i) }
func clientAddr(i int) string { return fmt.Sprintf("10.200.%d.2", i) }

// link joins host i's namespace (eth0) to the client namespace (an
// interface named after the host) with a veth pair.
func link(client string, i int, h *Host) error {
	peer := fmt.Sprintf("to-%d", i)
	steps := [][]string{
		{h.NetNS, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", peer, "netns", client},
		{h.NetNS, "ip", "addr", "add", hostAddr(i) + "/24", "dev", "eth0"},
		{h.NetNS, "ip", "link", "set", "eth0", "up"},
		{client, "ip", "addr", "add", clientAddr(i) + "/24", "dev", peer},
		{client, "ip", "link", "set", peer, "up"},
	}
	for _, s := range steps {
		if out, err := sandbox.Exec(s[0], s[1:]...); err != nil {
			return fmt.Errorf("link %s: %s: %v: %s", h.Name, strings.Join(s[1:], " "), err, strings.TrimSpace(out))
		}
	}
	return nil
}

// listen accepts TCP connections on ports in ns (closing each at once)
// until the returned function runs.
func listen(ns string, ports []int) (stop func() error, err error) {
	var ls []net.Listener
	stop = func() error {
		for _, l := range ls {
			l.Close()
		}
		return nil
	}
	for _, p := range ports {
		l, err := sandbox.ListenIn(ns, "tcp", fmt.Sprintf(":%d", p))
		if err != nil {
			stop()
			return nil, fmt.Errorf("listen on %d in %s: %w", p, ns, err)
		}
		ls = append(ls, l)
	}
	return stop, nil
}

// reach opens one real TCP connection from the client to each port of
// host i and says which were accepted.
func reach(client string, i int) map[int]bool {
	out := map[int]bool{}
	for _, p := range servicePorts {
		out[p] = sandbox.Connect(client, net.JoinHostPort(hostAddr(i), fmt.Sprint(p)), time.Second)
	}
	return out
}
