package commit

import (
	"context"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/slots"
	"github.com/fwslot/fwslot/internal/testnet"
	"github.com/fwslot/fwslot/session"
)

func canonical(t *testing.T, tg *session.Target, version uint64) *slots.Canon {
	t.Helper()
	blob, err := tg.Store.Compiled(tg.Key(), version)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := slots.Decode(blob)
	if err != nil {
		t.Fatal(err)
	}
	c, err := slots.Canonical(rs, slots.CanonOptions{MaskState: true})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Production rendered as source compiles back to the same thing, for every
// ruleset of the corpus: committing a version without hand changes records
// a version equal to it, object by object and rule by rule, with no drift;
// committing again records nothing.
func TestCommitRoundTripsTheCorpus(t *testing.T) {
	dir, err := filepath.Abs("../../testdata/corpus")
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "[0-9][0-9]-*.nft"))
	if len(files) < 25 {
		t.Fatalf("corpus has %d rulesets, want at least 25", len(files))
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".nft"), func(t *testing.T) {
			ns := testnet.Namespace(t, "fwslot-t-")
			for _, l := range []string{"eth0", "eth1"} {
				testnet.Run(t, ns, "ip", "link", "add", l, "type", "ifb")
			}
			s, err := history.Open(filepath.Join(t.TempDir(), "h.db"), history.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			tg := &session.Target{NetNS: ns, Store: s}
			ctx := context.Background()
			if _, err := tg.Load(ctx, f, session.LoadOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := tg.Swap(ctx, session.SwapOptions{}); err != nil {
				t.Fatal(err)
			}
			res, err := runOnce(ctx, tg, Options{Message: "round trip"})
			if err != nil {
				t.Fatal(err)
			}
			if res.Unchanged || res.Version != 2 || res.Staging != 1 {
				t.Fatalf("commit: %+v", res)
			}
			a, b := canonical(t, tg, 1), canonical(t, tg, 2)
			if d := a.Diff(b); len(d) > 0 || !reflect.DeepEqual(a, b) {
				t.Fatalf("the committed version differs from the original: %s\nnotes: %v", strings.Join(d, "; "), res.Notes)
			}
			st, err := tg.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.Drift || st.Production == nil || st.Production.Version != 2 {
				t.Fatalf("after commit: drift %v %v, production %+v", st.Drift, st.DriftChanges, st.Production)
			}
			if len(res.Notes) > 0 {
				t.Logf("notes: %v", res.Notes)
			}
			again, err := runOnce(ctx, tg, Options{Message: "again"})
			if err != nil || !again.Unchanged {
				t.Fatalf("second commit: %+v, %v", again, err)
			}
		})
	}
}

// runOnce runs a commit in a session of its own, as `fwslot commit` does.
func runOnce(ctx context.Context, tg *session.Target, opts Options) (*Result, error) {
	s, err := session.Open(ctx, tg, session.Options{})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return Run(ctx, s, opts)
}
