// Package sandbox builds a throwaway pair of network namespaces joined by
// a veth pair: a target (the "host" whose firewall fwslot manages) and a
// client that sends it packets. The demo, the benchmarks and the tests use
// it; Close removes everything, and nothing touches the root namespace.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"time"

	"github.com/fwslot/fwslot/internal/nsutil"
	"github.com/fwslot/fwslot/internal/sysbin"
)

// Addresses of the two ends, from the documentation ranges.
const (
	TargetIP  = "192.0.2.1"
	ClientIP  = "192.0.2.2"
	TargetIP6 = "2001:db8::1"
	ClientIP6 = "2001:db8::2"
)

// Sandbox is a target namespace and a client namespace joined by veth
// interfaces both named eth0.
type Sandbox struct {
	Target, Client string
	closers        []func()
}

// New creates the pair; names start with prefix. Pairs of the same prefix
// that a killed process left behind are removed first.
func New(prefix string) (sb *Sandbox, err error) {
	for _, side := range []string{"tgt-", "cli-"} {
		if _, err := nsutil.SweepStale(prefix + side); err != nil {
			return nil, err
		}
	}
	sb = &Sandbox{}
	defer func() {
		if err != nil {
			sb.Close()
		}
	}()
	if sb.Target, err = nsutil.Create(prefix + "tgt-"); err != nil {
		return nil, err
	}
	if sb.Client, err = nsutil.Create(prefix + "cli-"); err != nil {
		return nil, err
	}
	steps := [][]string{
		{sb.Target, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0c", "netns", sb.Client},
		{sb.Client, "ip", "link", "set", "eth0c", "name", "eth0"},
	}
	for _, side := range []struct{ ns, v4, v6 string }{{sb.Target, TargetIP, TargetIP6}, {sb.Client, ClientIP, ClientIP6}} {
		steps = append(steps,
			[]string{side.ns, "sysctl", "-qw", "net.ipv6.conf.eth0.accept_dad=0"},
			[]string{side.ns, "ip", "addr", "add", side.v4 + "/24", "dev", "eth0"},
			[]string{side.ns, "ip", "addr", "add", side.v6 + "/64", "dev", "eth0", "nodad"},
			[]string{side.ns, "ip", "link", "set", "eth0", "up"})
	}
	for _, s := range steps {
		if out, err := Exec(s[0], s[1:]...); err != nil {
			return nil, fmt.Errorf("sandbox: %s: %v: %s", strings.Join(s[1:], " "), err, out)
		}
	}
	return sb, nil
}

// Close stops listeners and removes both namespaces.
func (sb *Sandbox) Close() error {
	for _, c := range sb.closers {
		c()
	}
	sb.closers = nil
	var errs []error
	for _, ns := range []string{sb.Client, sb.Target} {
		if ns != "" {
			errs = append(errs, nsutil.Delete(ns))
		}
	}
	return errors.Join(errs...)
}

// Exec runs a command inside ns and returns its combined output. A
// program named without a / is taken from the system directories, never
// from $PATH (fwslot demo runs as root).
func Exec(ns string, args ...string) (string, error) {
	bin := args[0]
	if !strings.Contains(bin, "/") {
		var err error
		if bin, err = sysbin.Find(bin, "install it from your distribution"); err != nil {
			return "", err
		}
	}
	var out []byte
	err := nsutil.Do(ns, func() error {
		var err error
		out, err = exec.Command(bin, args[1:]...).CombinedOutput()
		return err
	})
	return string(out), err
}

// Listen accepts TCP connections on the given ports of the target (and
// closes them at once) until Close.
func (sb *Sandbox) Listen(ports ...int) error {
	for _, p := range ports {
		l, err := ListenIn(sb.Target, "tcp", fmt.Sprintf(":%d", p))
		if err != nil {
			return fmt.Errorf("sandbox: listen on %d: %w", p, err)
		}
		sb.closers = append(sb.closers, func() { l.Close() })
	}
	return nil
}

// ListenIn opens a listener inside namespace ns (it stays there after
// this returns) that accepts connections and closes them at once, until
// the caller closes it.
func ListenIn(ns, network, addr string) (net.Listener, error) {
	var l net.Listener
	err := nsutil.Do(ns, func() error {
		var err error
		l, err = net.Listen(network, addr)
		return err
	})
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return l, nil
}

// Connect reports whether a TCP connection from the client to the target's
// port is established within timeout.
func (sb *Sandbox) Connect(port int, timeout time.Duration) bool {
	return Connect(sb.Client, net.JoinHostPort(TargetIP, fmt.Sprint(port)), timeout)
}

// Connect tries a TCP connection from ns to addr within timeout.
func Connect(ns, addr string, timeout time.Duration) bool {
	ok := false
	_ = nsutil.Do(ns, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		var d net.Dialer
		if c, err := d.DialContext(ctx, "tcp", addr); err == nil {
			ok = true
			c.Close()
		}
		return nil
	})
	return ok
}
