// Package testnet builds the throwaway network namespaces that fwslot's
// tests, benchmarks and demo use: a target namespace joined to a peer by a
// veth pair, with addresses from the documentation ranges. Everything it
// creates is removed by t.Cleanup, on failure too. It never touches the
// root namespace.
package testnet

import (
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/fwslot/fwslot/internal/nsutil"
	"github.com/fwslot/fwslot/internal/sandbox"
)

// Addresses of the pair's two ends.
const (
	TargetIP  = sandbox.TargetIP
	PeerIP    = sandbox.ClientIP
	TargetIP6 = sandbox.TargetIP6
	PeerIP6   = sandbox.ClientIP6
)

// RequireRoot skips the test unless it runs as root with nft installed.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, nftables)")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs the nft binary (apt-get install nftables)")
	}
}

// Namespace creates an empty namespace (loopback up) removed at cleanup.
func Namespace(t testing.TB, prefix string) string {
	t.Helper()
	RequireRoot(t)
	ns, err := nsutil.Create(prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := nsutil.Delete(ns); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return ns
}

// Pair creates a target and a peer namespace joined by a veth pair named
// eth0 on both sides, with TargetIP/PeerIP and TargetIP6/PeerIP6.
func Pair(t testing.TB) (target, peer string) {
	t.Helper()
	RequireRoot(t)
	sb, err := sandbox.New("fwslot-t")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sb.Close(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return sb.Target, sb.Client
}

// Run runs a command inside ns and returns its output; failure ends the
// test.
func Run(t testing.TB, ns string, args ...string) string {
	t.Helper()
	out, err := Output(ns, args...)
	if err != nil {
		t.Fatalf("%s (netns %s): %v\n%s", strings.Join(args, " "), ns, err, out)
	}
	return out
}

// Output runs a command inside ns and returns its combined output.
func Output(ns string, args ...string) (string, error) { return sandbox.Exec(ns, args...) }

// Listen opens a listener inside ns; it stays in that namespace after
// this returns. It is closed at cleanup.
func Listen(t testing.TB, ns, network, addr string) net.Listener {
	t.Helper()
	l, err := sandbox.ListenIn(ns, network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// Connect tries a TCP connection from ns and reports whether it was
// established within timeout.
func Connect(ns, addr string, timeout time.Duration) bool { return sandbox.Connect(ns, addr, timeout) }

// UDPSocket opens a UDP socket inside ns, connected to addr; it stays in
// that namespace. It is closed at cleanup.
func UDPSocket(t testing.TB, ns, addr string) net.Conn {
	t.Helper()
	var c net.Conn
	err := nsutil.Do(ns, func() error {
		var err error
		c, err = net.Dial("udp", addr)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
