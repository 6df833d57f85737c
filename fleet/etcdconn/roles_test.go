package etcdconn

import (
	"bufio"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fwslot/fwslot/internal/etcdtest"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

var permTypes = map[string]clientv3.PermissionType{PermRead: etcdtest.Read, PermWrite: etcdtest.Write, PermReadWrite: etcdtest.ReadWrite}

func addRole(t *testing.T, cl *etcdtest.Cluster, r Role) string {
	t.Helper()
	var perms []etcdtest.Perm
	for _, p := range r.Perms {
		perms = append(perms, etcdtest.Perm{Type: permTypes[p.Type], Key: p.Key, Prefix: p.Prefix})
	}
	cl.AddRole(t, r.Name, perms...)
	return r.Name
}

// The documented role layout on a real etcd with TLS and auth: an agent
// reads its group and the chunks and writes only its own status and
// alive keys (by password or by certificate name); the pusher writes its
// group and the chunks, and no other group.
func TestRoleLayout(t *testing.T) {
	const p = defaultPrefix
	cl := etcdtest.Start(t, etcdtest.Options{TLS: true, Auth: true})
	agentWeb := addRole(t, cl, must(t)(AgentRole(p, "web")))
	h1 := addRole(t, cl, must(t)(HostRole(p, "web", "h1")))
	h2 := addRole(t, cl, must(t)(HostRole(p, "web", "h2")))
	pusher := addRole(t, cl, must(t)(PusherRole(p, "web")))
	cl.AddUser(t, AgentUser("web", "h1"), "h1-pw", agentWeb, h1)
	cl.AddUser(t, AgentUser("web", "h2"), "", agentWeb, h2) // by certificate
	cl.AddUser(t, "fwslot-pusher-web", "push-pw", pusher)

	root := cl.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, k := range []string{p + "groups/web/desired", p + "chunks/c0", p + "groups/db/desired", p + "groups/web/status/h2"} {
		if _, err := root.Put(ctx, k, "root"); err != nil {
			t.Fatal(err)
		}
	}
	files := cl.TLS()
	connect := func(user, pw, cert, key string) *clientv3.Client {
		cfg := Config{Endpoints: cl.Endpoints(), CACert: files.CA, Cert: cert, Key: key, User: user, Password: pw, Prefix: p}
		cli, err := cfg.Client(ctx)
		if err != nil {
			t.Fatalf("connect as %q: %v", user, err)
		}
		t.Cleanup(func() { cli.Close() })
		return cli
	}
	h2Cert, h2Key := files.NewClientCert(t, AgentUser("web", "h2"))
	agent1 := connect(AgentUser("web", "h1"), "h1-pw", files.ClientCert, files.ClientKey)
	agent2 := connect("", "", h2Cert, h2Key)
	push := connect("fwslot-pusher-web", "push-pw", files.ClientCert, files.ClientKey)

	get := func(c *clientv3.Client, key string, prefix bool) func() error {
		return func() error {
			var opts []clientv3.OpOption
			if prefix {
				opts = append(opts, clientv3.WithPrefix())
			}
			_, err := c.Get(ctx, key, opts...)
			return err
		}
	}
	put := func(c *clientv3.Client, key string) func() error {
		return func() error { _, err := c.Put(ctx, key, "x"); return err }
	}
	alive := func(c *clientv3.Client, key string) func() error {
		return func() error {
			lease, err := c.Grant(ctx, 10)
			if err != nil {
				return err
			}
			defer c.Revoke(ctx, lease.ID)
			_, err = c.Put(ctx, key, "up", clientv3.WithLease(lease.ID))
			return err
		}
	}
	watch := func(c *clientv3.Client, key string) func() error {
		return func() error {
			wctx, stop := context.WithCancel(ctx)
			defer stop()
			w := c.Watch(wctx, key, clientv3.WithPrefix(), clientv3.WithRev(1))
			resp := <-w
			return resp.Err()
		}
	}
	g := p + "groups/web/"
	cases := []struct {
		name string
		op   func() error
		ok   bool
	}{
		{"agent h1 reads the group", get(agent1, g, true), true},
		{"agent h1 reads a chunk", get(agent1, p+"chunks/c0", false), true},
		{"agent h1 watches the group", watch(agent1, g), true},
		{"agent h1 watches another group", watch(agent1, p+"groups/db/"), false},
		{"agent h1 writes its status", put(agent1, g+"status/h1"), true},
		{"agent h1 writes its alive key on a lease", alive(agent1, g+"alive/h1"), true},
		{"agent h1 writes h2's status", put(agent1, g+"status/h2"), false},
		{"agent h1 writes h10's status", put(agent1, g+"status/h10"), false},
		{"agent h1 writes h2's alive key", put(agent1, g+"alive/h2"), false},
		{"agent h1 writes the desired key", put(agent1, g+"desired"), false},
		{"agent h1 writes its own order", put(agent1, g+"hosts/h1/order"), false},
		{"agent h1 writes the rollout", put(agent1, g+"rollout"), false},
		{"agent h1 writes the flip", put(agent1, g+"flip"), false},
		{"agent h1 writes a chunk", put(agent1, p+"chunks/c1"), false},
		{"agent h1 reads another group", get(agent1, p+"groups/db/desired", false), false},
		{"agent h1 reads everything", get(agent1, p, true), false},
		{"agent h2 (certificate) writes its status", put(agent2, g+"status/h2"), true},
		{"agent h2 (certificate) writes h1's status", put(agent2, g+"status/h1"), false},
		{"agent h2 (certificate) writes the desired key", put(agent2, g+"desired"), false},
		{"pusher writes the desired key", put(push, g+"desired"), true},
		{"pusher writes a chunk", put(push, p+"chunks/c2"), true},
		{"pusher writes an order", put(push, g+"hosts/h1/order"), true},
		{"pusher writes another group", put(push, p+"groups/db/desired"), false},
		{"pusher writes outside the prefix", put(push, "/elsewhere"), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.op()
			if c.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !c.ok && !denied(err) {
				t.Fatalf("got %v, want permission denied", err)
			}
		})
	}
}

// denied reports whether err is etcd's permission denied: the client's
// typed error, or the text of a watch's cancel reason.
func denied(err error) bool {
	return errors.Is(err, rpctypes.ErrPermissionDenied) || (err != nil && strings.Contains(err.Error(), rpctypes.ErrPermissionDenied.Error()))
}

// must returns a function that fails the test on a role's error.
func must(t *testing.T) func(Role, error) Role {
	return func(r Role, err error) Role {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
}

// Names that would reach into other keys are refused.
func TestRoleNames(t *testing.T) {
	for _, c := range []struct{ group, host string }{{"", "h"}, {"a/b", "h"}, {"web", "h1/../h2"}, {"web", ""}, {"we b", "h"}} {
		if _, err := HostRole(defaultPrefix, c.group, c.host); err == nil {
			t.Errorf("HostRole(%q, %q) accepted", c.group, c.host)
		}
	}
}

// docs/FLEET-SECURITY.md holds the exact etcdctl commands of the role
// layout for group web and host h1, so the documentation cannot drift
// from what TestRoleLayout proves.
func TestRoleDocs(t *testing.T) {
	f, err := os.Open("../../docs/FLEET-SECURITY.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines[strings.TrimSpace(sc.Text())] = true
	}
	var want []string
	for _, r := range []func() (Role, error){
		func() (Role, error) { return AgentRole(defaultPrefix, "web") },
		func() (Role, error) { return HostRole(defaultPrefix, "web", "h1") },
		func() (Role, error) { return PusherRole(defaultPrefix, "web") },
	} {
		role, err := r()
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, etcdctlRole(role)...)
	}
	want = append(want,
		"etcdctl user grant-role "+AgentUser("web", "h1")+" fwslot-agent-web",
		"etcdctl user grant-role "+AgentUser("web", "h1")+" fwslot-host-web-h1",
		"etcdctl user grant-role fwslot-pusher-web fwslot-pusher-web",
	)
	for _, w := range want {
		if !lines[w] {
			t.Errorf("docs/FLEET-SECURITY.md lacks the line %q", w)
		}
	}
}
