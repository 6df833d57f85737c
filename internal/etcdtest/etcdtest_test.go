package etcdtest

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fwslot/fwslot/internal/etcdserve"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

func testCtx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func put(t *testing.T, cli *clientv3.Client, key, val string) {
	t.Helper()
	if _, err := cli.Put(testCtx(t), key, val); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func get(t *testing.T, cli *clientv3.Client, key string) string {
	t.Helper()
	resp, err := cli.Get(testCtx(t), key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	if len(resp.Kvs) != 1 {
		t.Fatalf("get %s: %d values, want 1", key, len(resp.Kvs))
	}
	return string(resp.Kvs[0].Value)
}

// refused reports whether a dial of the endpoint's host:port is refused:
// nothing listens there.
func refused(t *testing.T, endpoint string) bool {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", u.Host)
	if err == nil {
		c.Close()
		return false
	}
	return true
}

// Every kind of cluster serves on 127.0.0.1, keeps what it is given, and
// is gone (its ports closed) once its test ends.
func TestStartKinds(t *testing.T) {
	cases := []struct {
		name string
		opts Options
	}{
		{"single", Options{}},
		{"tls", Options{TLS: true}},
		{"auth", Options{Auth: true}},
		{"tls+auth", Options{TLS: true, Auth: true}},
		{"three members", Options{Members: 3}},
	}
	for _, c := range cases {
		var endpoints []string
		t.Run(c.name, func(t *testing.T) {
			cl := Start(t, c.opts)
			endpoints = cl.Endpoints()
			want := 1
			if c.opts.Members > 0 {
				want = c.opts.Members
			}
			if len(endpoints) != want {
				t.Fatalf("endpoints %v, want %d", endpoints, want)
			}
			scheme := "http://127.0.0.1:"
			if c.opts.TLS {
				scheme = "https://127.0.0.1:"
			}
			for _, e := range endpoints {
				if !strings.HasPrefix(e, scheme) {
					t.Errorf("endpoint %s, want %s...", e, scheme)
				}
			}
			cli := cl.Client(t)
			put(t, cli, "/k", "v")
			if got := get(t, cli, "/k"); got != "v" {
				t.Errorf("got %q, want v", got)
			}
			resp, err := cli.MemberList(testCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Members) != want {
				t.Errorf("%d members, want %d", len(resp.Members), want)
			}
		})
		for _, e := range endpoints {
			if !refused(t, e) {
				t.Errorf("%s: %s still accepts connections after the test", c.name, e)
			}
		}
	}
}

// A TLS cluster refuses clients without a certificate, with one from
// another CA, and plain http; it takes a certificate from its CA.
func TestTLSClientCertRequired(t *testing.T) {
	cl := Start(t, Options{TLS: true})
	files := cl.TLS()
	other := NewTLSFiles(t)
	otherCfg, err := other.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	goodCfg, err := files.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	noCert := goodCfg.Clone()
	noCert.Certificates = nil
	foreignCert := goodCfg.Clone()
	foreignCert.Certificates = otherCfg.Certificates
	plain := strings.Replace(cl.Endpoints()[0], "https://", "http://", 1)
	table := []struct {
		name string
		cfg  clientv3.Config
		ok   bool
	}{
		{"certificate of the CA", clientv3.Config{Endpoints: cl.Endpoints(), TLS: goodCfg}, true},
		{"no client certificate", clientv3.Config{Endpoints: cl.Endpoints(), TLS: noCert}, false},
		{"client certificate of another CA", clientv3.Config{Endpoints: cl.Endpoints(), TLS: foreignCert}, false},
		{"server not trusted (other CA)", clientv3.Config{Endpoints: cl.Endpoints(), TLS: otherCfg}, false},
		{"plain http", clientv3.Config{Endpoints: []string{plain}}, false},
	}
	for _, c := range table {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.DialTimeout = 5 * time.Second
			c.cfg.Logger = zap.NewNop()
			cli, err := clientv3.New(c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer cli.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			_, err = cli.Put(ctx, "/tls", c.name)
			if c.ok && err != nil {
				t.Errorf("put refused: %v", err)
			}
			if !c.ok && err == nil {
				t.Errorf("put accepted, want it refused")
			}
		})
	}
}

// A stopped member releases its port; restarted on its old ports and data
// it has everything written before, and in a 3-member cluster (which
// keeps serving meanwhile) also what was written while it was down.
func TestStopRestartMember(t *testing.T) {
	cases := []struct {
		name    string
		members int
	}{
		{"single member", 1},
		{"one of three", 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cl := Start(t, Options{Members: c.members})
			cli := cl.Client(t)
			put(t, cli, "/before", "1")
			m := cl.Members()[len(cl.Members())-1]
			m.Stop()
			if m.Running() {
				t.Fatal("member still running after Stop")
			}
			if !refused(t, m.Endpoint()) {
				t.Fatalf("stopped member %s still accepts connections", m.Endpoint())
			}
			want := map[string]string{"/before": "1"}
			if c.members == 3 {
				put(t, cli, "/during", "2")
				want["/during"] = "2"
			}
			m.Restart(t)
			if !m.Running() {
				t.Fatal("member not running after Restart")
			}
			one, err := clientv3.New(clientv3.Config{Endpoints: []string{m.Endpoint()}, DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
			if err != nil {
				t.Fatal(err)
			}
			defer one.Close()
			// A linearizable read through the restarted member alone waits
			// until it has applied everything committed.
			for k, v := range want {
				if got := get(t, one, k); got != v {
					t.Errorf("restarted member reads %s = %q, want %q", k, got, v)
				}
			}
			resp, err := one.MemberList(testCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Members) != c.members {
				t.Errorf("%d members after restart, want %d", len(resp.Members), c.members)
			}
		})
	}
}

// With auth on, a user gets what its roles grant and nothing more, and a
// client without credentials gets nothing.
func TestAuthRoles(t *testing.T) {
	cl := Start(t, Options{Auth: true})
	root := cl.Client(t)
	put(t, root, "/app/config", "x")
	put(t, root, "/other/config", "y")
	cl.AddRole(t, "reader", Perm{Type: Read, Key: "/app/", Prefix: true})
	cl.AddRole(t, "writer", Perm{Type: Write, Key: "/app/out"})
	cl.AddUser(t, "alice", "alice-pw", "reader", "writer")
	alice := cl.ClientAs(t, "alice", "alice-pw")
	anon := cl.ClientAs(t, "", "")
	cases := []struct {
		name string
		op   func() error
		want error // nil: allowed
	}{
		{"alice reads under /app/", func() error { _, err := alice.Get(testCtx(t), "/app/config"); return err }, nil},
		{"alice writes /app/out", func() error { _, err := alice.Put(testCtx(t), "/app/out", "z"); return err }, nil},
		{"alice reads /other/", func() error { _, err := alice.Get(testCtx(t), "/other/config"); return err }, rpctypes.ErrPermissionDenied},
		{"alice writes /app/config", func() error { _, err := alice.Put(testCtx(t), "/app/config", "z"); return err }, rpctypes.ErrPermissionDenied},
		{"no credentials reads", func() error { _, err := anon.Get(testCtx(t), "/app/config"); return err }, rpctypes.ErrUserEmpty},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.op()
			if c.want == nil && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	if _, err := clientv3.New(clientv3.Config{Endpoints: cl.Endpoints(), Username: "alice", Password: "wrong", DialTimeout: 5 * time.Second, Logger: zap.NewNop()}); err == nil {
		t.Error("a wrong password was accepted")
	}
}

// On TLS with auth, a user without a password is the common name of its
// client certificate.
func TestAuthByCertificateName(t *testing.T) {
	cl := Start(t, Options{TLS: true, Auth: true})
	cl.AddRole(t, "rw", Perm{Type: ReadWrite, Key: "/cn/", Prefix: true})
	cl.AddUser(t, "agent-1", "", "rw")
	cert, key := cl.TLS().NewClientCert(t, "agent-1")
	files := *cl.TLS()
	files.ClientCert, files.ClientKey = cert, key
	tc, err := files.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: cl.Endpoints(), TLS: tc, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	put(t, cli, "/cn/x", "1")
	if _, err := cli.Put(testCtx(t), "/elsewhere", "1"); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Errorf("write outside the role: %v, want permission denied", err)
	}
}

// A start that loses its port to another process retries on new ports.
func TestStartRetriesLostPort(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	taken := held.Addr().(*net.TCPAddr).Port
	calls := 0
	pick := func(n int) ([]int, error) {
		calls++
		ports, err := etcdserve.FreePorts(n)
		if calls == 1 {
			ports[0] = taken
		}
		return ports, err
	}
	cl := start(t, Options{}, pick)
	if calls != 2 {
		t.Errorf("picked ports %d times, want 2 (one lost race, one retry)", calls)
	}
	put(t, cl.Client(t), "/k", "v")
}
