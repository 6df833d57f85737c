package session

import (
	"context"
	"testing"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/testnet"
	"github.com/fwslot/fwslot/rulediff"
)

// TestLoadKeepsCanonical: a load stores the new version's canonical form
// (made while the batch commits, stored with the kernel record), equal
// to what rulediff makes of the file, for a first version and for one
// stored over it; the history's blobs stay consistent.
func TestLoadKeepsCanonical(t *testing.T) {
	tg := targetWith(t, testnet.Namespace(t, "fwslot-canon"), history.Options{Canonical: rulediff.CanonicalSource})
	s := tg.Store
	ctx := context.Background()
	for _, tt := range []struct{ name, body string }{
		{"ssh.nft", onlySSH},
		{"web.nft", onlyWeb},
	} {
		res, err := tg.Load(ctx, writeRuleset(t, tt.name, tt.body), LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want, err := rulediff.CanonicalSource(tt.body)
		if err != nil {
			t.Fatal(err)
		}
		got, found, err := s.Canonical(tg.Key(), res.Version)
		if err != nil || !found || got != want {
			t.Errorf("%s: canonical form found %v, %v, equal %v", tt.name, found, err, got == want)
		}
		if err := s.CheckBlobs(); err != nil {
			t.Error(err)
		}
	}
}
