package etcdconn

import (
	"fmt"
	"strings"
)

// Permission types of a Perm, as etcdctl spells them.
const (
	PermRead      = "read"
	PermWrite     = "write"
	PermReadWrite = "readwrite"
)

// Perm grants one permission on one key, or on every key under Key when
// Prefix is set.
type Perm struct {
	Type   string // PermRead, PermWrite or PermReadWrite
	Key    string
	Prefix bool
}

// Role is an etcd role: a name and its permissions.
type Role struct {
	Name  string
	Perms []Perm
}

// checkName refuses a group or host name that could reach into another
// group's or host's keys.
func checkName(kind, name string) error {
	if name == "" || strings.ContainsAny(name, "/\n\r \t") {
		return fmt.Errorf("%s %q: want a non-empty name without '/' or spaces", kind, name)
	}
	return nil
}

// AgentRole is what every agent of group needs: read the chunks and every
// key of the group (desired, versions, rollout, orders, flip; watches
// included). It writes nothing.
func AgentRole(prefix, group string) (Role, error) {
	if err := checkName("group", group); err != nil {
		return Role{}, err
	}
	return Role{Name: "fwslot-agent-" + group, Perms: []Perm{
		{PermRead, prefix + "chunks/", true},
		{PermRead, prefix + "groups/" + group + "/", true},
	}}, nil
}

// HostRole lets the agent of host write its own status and liveness keys
// in group, and nothing else: exact keys, so host h1 cannot write the keys
// of h10.
func HostRole(prefix, group, host string) (Role, error) {
	if err := checkName("group", group); err != nil {
		return Role{}, err
	}
	if err := checkName("host", host); err != nil {
		return Role{}, err
	}
	g := prefix + "groups/" + group + "/"
	return Role{Name: "fwslot-host-" + group + "-" + host, Perms: []Perm{
		{PermWrite, g + "status/" + host, false},
		{PermWrite, g + "alive/" + host, false},
	}}, nil
}

// PusherRole is what `fwslot fleet push`, `rollback` and `resume` need for
// group: read and write the group's keys and the chunks.
func PusherRole(prefix, group string) (Role, error) {
	if err := checkName("group", group); err != nil {
		return Role{}, err
	}
	return Role{Name: "fwslot-pusher-" + group, Perms: []Perm{
		{PermReadWrite, prefix + "groups/" + group + "/", true},
		{PermReadWrite, prefix + "chunks/", true},
	}}, nil
}

// AgentUser is the etcd user of the agent of host in group; with client
// certificates, the certificate's common name.
func AgentUser(group, host string) string { return "fwslot-agent-" + group + "-" + host }

// etcdctlRole returns the etcdctl commands that create r.
func etcdctlRole(r Role) []string {
	out := []string{"etcdctl role add " + r.Name}
	for _, p := range r.Perms {
		prefix := ""
		if p.Prefix {
			prefix = "--prefix=true "
		}
		out = append(out, fmt.Sprintf("etcdctl role grant-permission %s%s %s %s", prefix, r.Name, p.Type, p.Key))
	}
	return out
}
