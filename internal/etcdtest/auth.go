package etcdtest

import (
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Perm is one permission of a role: read, write or both on one key, or
// on every key under a prefix.
type Perm struct {
	Type   clientv3.PermissionType // Read, Write or ReadWrite
	Key    string
	Prefix bool
}

// Permission types of a Perm.
const (
	Read      = clientv3.PermissionType(clientv3.PermRead)
	Write     = clientv3.PermissionType(clientv3.PermWrite)
	ReadWrite = clientv3.PermissionType(clientv3.PermReadWrite)
)

// enableAuth creates user root with the root role and turns auth on.
func (c *Cluster) enableAuth() {
	t := c.t
	t.Helper()
	cli := c.ClientAs(t, "", "")
	ctx := ctx(t)
	if _, err := cli.UserAdd(ctx, "root", RootPassword); err != nil {
		t.Fatalf("etcdtest: add user root: %v", err)
	}
	if _, err := cli.UserGrantRole(ctx, "root", "root"); err != nil {
		t.Fatalf("etcdtest: grant role root to root: %v", err)
	}
	if _, err := cli.AuthEnable(ctx); err != nil {
		t.Fatalf("etcdtest: enable auth: %v", err)
	}
}

// AddRole creates role name with perms, as root.
func (c *Cluster) AddRole(t testing.TB, name string, perms ...Perm) {
	t.Helper()
	cli := c.Client(t)
	ctx := ctx(t)
	if _, err := cli.RoleAdd(ctx, name); err != nil {
		t.Fatalf("etcdtest: add role %s: %v", name, err)
	}
	for _, p := range perms {
		end := ""
		if p.Prefix {
			end = clientv3.GetPrefixRangeEnd(p.Key)
		}
		if _, err := cli.RoleGrantPermission(ctx, name, p.Key, end, p.Type); err != nil {
			t.Fatalf("etcdtest: grant %v on %q (prefix %v) to role %s: %v", p.Type, p.Key, p.Prefix, name, err)
		}
	}
}

// AddUser creates user name with password and grants it roles, as root.
// An empty password makes a user without one, who authenticates by the
// common name of a client certificate (TLS clusters).
func (c *Cluster) AddUser(t testing.TB, name, password string, roles ...string) {
	t.Helper()
	cli := c.Client(t)
	ctx := ctx(t)
	var err error
	if password == "" {
		_, err = cli.UserAddWithOptions(ctx, name, "", &clientv3.UserAddOptions{NoPassword: true})
	} else {
		_, err = cli.UserAdd(ctx, name, password)
	}
	if err != nil {
		t.Fatalf("etcdtest: add user %s: %v", name, err)
	}
	for _, r := range roles {
		if _, err := cli.UserGrantRole(ctx, name, r); err != nil {
			t.Fatalf("etcdtest: grant role %s to %s: %v", r, name, err)
		}
	}
}
