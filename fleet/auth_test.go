package fleet

import (
	"fmt"
	"testing"
	"time"

	"github.com/fwslot/fwslot/fleet/etcdconn"
	"github.com/fwslot/fwslot/internal/etcdtest"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestLeastPrivilege runs agents and the pusher as the etcd users of the
// documented role layout (docs/FLEET-SECURITY.md): an agent reads its
// group and the chunks and writes only its own status and alive keys.
// A push, a failed push and a fleet rollback all work with no more.
func TestLeastPrivilege(t *testing.T) {
	te := startCluster(t, etcdtest.Options{Auth: true})
	perms := map[string]clientv3.PermissionType{etcdconn.PermRead: etcdtest.Read, etcdconn.PermWrite: etcdtest.Write, etcdconn.PermReadWrite: etcdtest.ReadWrite}
	role := func(r etcdconn.Role, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		var ps []etcdtest.Perm
		for _, p := range r.Perms {
			ps = append(ps, etcdtest.Perm{Type: perms[p.Type], Key: p.Key, Prefix: p.Prefix})
		}
		te.AddRole(t, r.Name, ps...)
		return r.Name
	}
	agents := role(etcdconn.AgentRole(DefaultPrefix, "web"))
	hosts := map[string]Host{}
	for i := 1; i <= 3; i++ {
		h := fmt.Sprintf("h%d", i)
		hosts[h] = newFakeHost(h)
		te.AddUser(t, etcdconn.AgentUser("web", h), h+"-pw", agents, role(etcdconn.HostRole(DefaultPrefix, "web", h)))
	}
	te.AddUser(t, "pusher", "push-pw", role(etcdconn.PusherRole(DefaultPrefix, "web")))
	f := newTestFleetOn(t, te, hosts, func(a *Agent) {
		a.Client = te.ClientAs(t, etcdconn.AgentUser("web", a.Name), a.Name+"-pw")
	})
	ctx := testCtx(t)
	// The agents really are confined: not even their own order.
	if _, err := f.agents["h1"].Client.Put(ctx, f.k.Order("h1"), "{}"); err == nil {
		t.Fatal("an agent's user may write its order")
	}
	p := &Pusher{Client: te.ClientAs(t, "pusher", "push-pw"), Keys: f.k}
	for _, src := range []string{v1, v2} {
		if _, err := p.Push(ctx, pushOpts(src)); err != nil {
			t.Fatal(err)
		}
		f.consistent(src)
	}
	res, err := Rollback(ctx, p.Client, f.k, 30*time.Second)
	if err != nil || len(res.Failed) != 0 {
		t.Fatalf("rollback: %+v, %v", res, err)
	}
	f.consistent(v1)
	if _, err := p.Push(ctx, pushOpts(v3+"# UNHEALTHY@h1\n")); err == nil {
		t.Fatal("a push with a failing canary succeeded")
	}
	f.consistent(v1)
}
