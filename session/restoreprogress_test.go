package session

import (
	"context"
	"testing"

	"github.com/fwslot/fwslot/internal/testnet"
)

// TestRestoreProgress: a restore tells RestoreOptions.Progress each phase
// in order, the percentage never going back, the staged version before
// the live one, and the restored slots are the versions history says.
func TestRestoreProgress(t *testing.T) {
	ns, tg := sshLiveWebStaged(t, "fwslot-restprog")
	ctx := context.Background()
	testnet.Run(t, ns, "nft", "flush", "ruleset")

	s, err := Open(ctx, tg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	type step struct {
		phase string
		pct   int
	}
	var got []step
	res, err := s.Restore(ctx, RestoreOptions{Progress: func(phase string, pct int) { got = append(got, step{phase, pct}) }})
	if err != nil {
		t.Fatal(err)
	}
	want := []step{
		{"reading the kernel and history", 0},
		{"staging version 2 from history", 10},
		{"staging version 1 from history", 45},
		{"restoring: one transaction", 80},
		{"recording in history", 95},
	}
	if len(got) != len(want) {
		t.Fatalf("progress %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("step %d: %v, want %v", i, got[i], want[i])
		}
	}
	if res.To != 1 {
		t.Errorf("restored version %d, want 1", res.To)
	}
	st, err := tg.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Production == nil || st.Production.Version != 1 || st.Staging == nil || st.Staging.Version != 2 {
		t.Errorf("after restore: production %+v, staging %+v; want 1 and 2", st.Production, st.Staging)
	}
}
