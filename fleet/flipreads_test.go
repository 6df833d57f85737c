package fleet

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/fwslot/fwslot/internal/kerneltest"
	"github.com/fwslot/fwslot/internal/nfnl"
	"github.com/fwslot/fwslot/internal/testnet"
)

// A fleet rollback's flip on a real host is one local session: one
// netlink connection and exactly one kernel state read (plus the flip
// transaction), and the status it reports is the state the flip left.
// It used to be four sessions (a state read before, the flip, a state
// read for the report, and one more as the agent acted again to find the
// desired version live), each reading every chain and set of both slots:
// that, and the kernel's own loop check of the flip, grew with the
// ruleset. A flip to a version neither slot holds changes nothing.
func TestFlipOneSession(t *testing.T) {
	testnet.RequireRoot(t)
	ns := testnet.Namespace(t, "fwslot-flip")
	ctx := testCtx(t)
	te := startEtcd(t)
	h := &LibHost{NetNS: ns, DB: filepath.Join(t.TempDir(), "h.db")}
	refs := map[string]Ref{}
	live := map[string][]byte{}
	for i, src := range []string{kv1, kv2} {
		ref := Ref{Version: uint64(i + 1), Hash: sum([]byte(src))}
		refs[src] = ref
		if err := h.Stage(ctx, &Version{VersionMeta: VersionMeta{Version: ref.Version, Hash: ref.Hash}, Source: src}); err != nil {
			t.Fatal(err)
		}
		if err := h.Swap(ctx, 0); err != nil {
			t.Fatal(err)
		}
		live[src] = kerneltest.Production(t, ns)
	}
	cases := []struct {
		name string
		to   Ref
		// conns is how many local sessions the flip may open (0: do not
		// count); want is the production afterwards.
		conns int
		want  string
		flips bool
	}{
		{"staged previous version: one session", refs[kv1], 1, kv1, true},
		{"back again: one session", refs[kv2], 1, kv2, true},
		{"a version in neither slot: refused, production unchanged", Ref{Version: 9, Hash: sum([]byte("absent"))}, 0, kv2, false},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := &Agent{Client: te.client(t), Keys: te.Keys, Name: "h1", Local: h,
				refused: map[string]string{}, versions: map[string]uint64{}, stagedAs: map[string]uint64{}}
			for _, r := range refs {
				a.versions[r.Hash] = r.Version
			}
			f := &Flip{Seq: uint64(i + 1), Ref: c.to}
			v := view{flip: f, desired: &desiredVersion{Ref: c.to, Rollout: "r"}, rollout: &RolloutState{ID: "r", State: StateRolledBack}}
			want := kerneltest.StateReads(t, ns) // one state read, on a connection of its own
			var conns []*nfnl.Conn
			h.OnDial = func(c *nfnl.Conn) { conns = append(conns, c) }
			// As Agent.step does: act until nothing is left to do.
			var err error
			for did, n := true, 0; did && err == nil && n < 8; n++ {
				did, err = a.act(ctx, v)
			}
			h.OnDial = nil
			if err != nil && c.flips {
				// (Acting again on a refused flip tries to converge to
				// a version etcd does not have: that error is expected.)
				t.Fatal(err)
			}
			if c.conns > 0 {
				got := 0
				for _, conn := range conns {
					got += conn.Requests()
				}
				if len(conns) != c.conns || got != want {
					t.Errorf("%d connections and %d kernel requests, want %d and %d (one state read)", len(conns), got, c.conns, want)
				}
			}
			if got := kerneltest.Production(t, ns); !bytes.Equal(got, live[c.want]) {
				t.Errorf("production objects are not those of %q", c.want)
			}
			var st HostStatus
			if _, _, err := getJSON(ctx, a.Client, a.Keys.statusKey("h1"), &st); err != nil {
				t.Fatal(err)
			}
			if st.Production == nil || st.Production.Hash != refs[c.want].Hash {
				t.Errorf("status says production %+v, want %+v", st.Production, refs[c.want])
			}
			if c.flips {
				other := refs[kv1]
				if c.want == kv1 {
					other = refs[kv2]
				}
				if st.State != HostFlipped || st.Staging == nil || st.Staging.Hash != other.Hash || st.Pending {
					t.Errorf("status after the flip: %+v", st)
				}
			} else if st.State != HostFailed {
				t.Errorf("status after a flip to a version in no slot: %+v, want failed", st)
			}
		})
	}
}
