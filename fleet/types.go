// Package fleet rolls rulesets out to many hosts through etcd: versions
// stored in content-addressed chunks, a per-host agent that stages every
// desired version and swaps only when its wave is ordered, and a pusher
// that runs canary then waves with all of its state in etcd (see
// docs/ARCHITECTURE.md, "Fleet", and /work/fleetplan/SCHEMA.md).
package fleet

import (
	"fmt"
	"path"
	"time"
)

// DefaultPrefix is where fleet keys live unless --prefix says otherwise.
const DefaultPrefix = "/fwslot/"

// Keys names the etcd keys of one group under a prefix.
type Keys struct {
	Prefix, Group string
}

// group is the prefix of every key of the group (agents watch it).
func (k Keys) group() string { return k.Prefix + "groups/" + k.Group + "/" }

// Chunk is the key of the chunk with this sha256 (hex).
func (k Keys) Chunk(hash string) string { return k.Prefix + "chunks/" + hash }

// chunkRefs is the prefix of the chunk's reference keys: one per version
// (of any group) that uses the chunk.
func (k Keys) chunkRefs(hash string) string { return k.Prefix + "chunks/" + hash + "/refs/" }

// ChunkRef is the key saying version n of this group uses the chunk.
func (k Keys) ChunkRef(hash string, n uint64) string {
	return fmt.Sprintf("%s%s/%020d", k.chunkRefs(hash), k.Group, n)
}

// ChunkTracked is the key saying every reference to the chunk has a
// reference key: it is written with the chunk, so chunks stored before
// reference keys existed are never deleted.
func (k Keys) ChunkTracked(hash string) string { return k.Prefix + "chunks/" + hash + "/tracked" }

// seqKey is the key of the group's last version number.
func (k Keys) seqKey() string { return k.group() + "seq" }

// versions is the prefix of the group's version records.
func (k Keys) versions() string { return k.group() + "versions/" }

// Version is the key of version n.
func (k Keys) Version(n uint64) string { return fmt.Sprintf("%s%020d", k.versions(), n) }

// desired is the key of the version every host of the group stages.
func (k Keys) desired() string { return k.group() + "desired" }

// rollout is the key of the group's rollout state.
func (k Keys) rollout() string { return k.group() + "rollout" }

// orders is the prefix of the per-host orders.
func (k Keys) orders() string { return k.group() + "hosts/" }

// Order is the key of host h's order.
func (k Keys) Order(h string) string { return k.orders() + h + "/order" }

// flip is the key of the group's fleet rollback.
func (k Keys) flip() string { return k.group() + "flip" }

// Statuses is the prefix of the host statuses.
func (k Keys) Statuses() string { return k.group() + "status/" }

// statusKey is the key host h reports its state in.
func (k Keys) statusKey(h string) string { return k.Statuses() + h }

// Alives is the prefix of the lease-bound liveness keys.
func (k Keys) Alives() string { return k.group() + "alive/" }

// alive is host h's liveness key.
func (k Keys) alive(h string) string { return k.Alives() + h }

// lock is the prefix of the one-pusher-per-group mutex.
func (k Keys) lock() string { return k.group() + "lock" }

// hostOf returns the last path element of a key.
func hostOf(key string) string { return path.Base(key) }

// Ref names a fleet version: its number in the group and the sha256 of
// its flattened source.
type Ref struct {
	Version uint64 `json:"version"`
	Hash    string `json:"hash"`
}

// VersionMeta is one version of a group as stored in etcd; its source is
// in Chunks.
type VersionMeta struct {
	Version   uint64    `json:"version"`
	Hash      string    `json:"hash"`
	Size      int       `json:"size"`
	Chunks    []string  `json:"chunks"`
	Message   string    `json:"message"`
	Author    string    `json:"author"`
	Time      time.Time `json:"time"`
	Probes    string    `json:"probes"`
	Signature string    `json:"signature,omitempty"`
}

// Ref returns the version's reference.
func (m VersionMeta) Ref() Ref { return Ref{m.Version, m.Hash} }

// Version is a version with its flattened source.
type Version struct {
	VersionMeta
	Source string
}

// desiredVersion is the version every host of a group stages.
type desiredVersion struct {
	Ref
	Rollout string `json:"rollout"`
}

// Rollout states.
const (
	StateRunning    = "running"
	StateSucceeded  = "succeeded"
	StateFailed     = "failed"
	StateRolledBack = "rolledback"
)

// Phases of a wave.
const (
	phaseSwap    = "swap"
	phaseConfirm = "confirm"
)

// Failure is a host that failed a rollout, and why.
type Failure struct {
	Host   string `json:"host"`
	Reason string `json:"reason"`
}

// RolloutState is the group's rollout, changed only by compare-and-swap.
type RolloutState struct {
	ID          string        `json:"id"`
	Version     uint64        `json:"version"`
	Hash        string        `json:"hash"`
	Previous    *Ref          `json:"previous"`
	State       string        `json:"state"`
	Canary      int           `json:"canary"`
	Waves       []string      `json:"waves"`
	Wave        int           `json:"wave"`
	Phase       string        `json:"phase"`
	Plan        [][]string    `json:"plan"`
	Confirm     time.Duration `json:"confirm"`
	MaxFailures int           `json:"max_failures"`
	Failed      []Failure     `json:"failed"`
	Started     time.Time     `json:"started"`
	Updated     time.Time     `json:"updated"`
}

// Ref returns the version the rollout brings.
func (r *RolloutState) Ref() Ref { return Ref{r.Version, r.Hash} }

// Order actions.
const (
	ActionSwap    = "swap"
	ActionConfirm = "confirm"
	ActionRevert  = "revert"
)

// Order tells one host what to do in a rollout. Seq grows with every
// order to the host; the agent carries out each seq once.
type Order struct {
	Rollout string        `json:"rollout"`
	Seq     uint64        `json:"seq"`
	Action  string        `json:"action"`
	Ref                   // the version to swap to, confirm, or revert to
	Confirm time.Duration `json:"confirm"`
}

// Flip is a fleet rollback: every host makes Ref live again.
type Flip struct {
	Seq uint64 `json:"seq"`
	Ref
	Time time.Time `json:"time"`
}

// Host states reported in HostStatus.State.
const (
	HostIdle      = "idle"      // nothing to do
	HostStaged    = "staged"    // the desired version is staged
	HostRefused   = "refused"   // the desired version cannot be staged (Error says why)
	HostHealthy   = "healthy"   // swapped, health checks pass, waits for confirm
	HostUnhealthy = "unhealthy" // swapped, a health check failed, reverted
	HostConfirmed = "confirmed" // runs the version, confirmed
	HostReverted  = "reverted"  // went back to the previous version
	HostFlipped   = "flipped"   // fleet rollback carried out
	HostFailed    = "failed"    // an order could not be carried out (Error says why)
)

// HostStatus is what one agent reports about its host. Only that agent
// writes it. Seq is the last order it carried out, FlipSeq the last
// fleet rollback.
type HostStatus struct {
	Host       string    `json:"host"`
	Production *Ref      `json:"production"`
	Staging    *Ref      `json:"staging"`
	Pending    bool      `json:"pending"`
	State      string    `json:"state"`
	Rollout    string    `json:"rollout"`
	Seq        uint64    `json:"seq"`
	FlipSeq    uint64    `json:"flip_seq"`
	Health     string    `json:"health,omitempty"`
	Error      string    `json:"error"`
	LastSeen   time.Time `json:"last_seen"`
	RefusedFor string    `json:"refused_for,omitempty"`
}

// ValidName checks a group or host name: it becomes part of etcd keys.
func ValidName(what, s string) error {
	if s == "" || len(s) > 128 {
		return fmt.Errorf("%s name %q: want 1 to 128 characters", what, s)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("%s name %q: only letters, digits, '-', '_' and '.' are allowed", what, s)
		}
	}
	if s == "." || s == ".." {
		return fmt.Errorf("%s name %q is not a name", what, s)
	}
	return nil
}
