package session_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/fwslot/fwslot/session"
	"github.com/fwslot/fwslot/session/sessiontest"
)

// Example runs one session on a fake kernel and a fresh history file:
// stage two versions from history, swap, read the status, let the lockout
// guard refuse a version, and roll back. Open took the lock, read the
// kernel and reconciled once; each operation commits one batch and one
// history transaction. On a real target, leave Connect unset and Load
// compiles a ruleset file instead of StageVersion.
func Example() {
	dir, err := os.MkdirTemp("", "fwslot-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	kernel := sessiontest.New()
	target := &session.Target{NetNS: "lab", Connect: kernel.Connect}

	// The lockout guard refuses any version whose input policy is drop.
	guard := session.Guard{Live: func(ctx context.Context, version uint64, rs *session.Ruleset) error {
		if spec := rs.Tables[0].Chains[0].Base; spec.Policy == 0 { // NF_DROP
			return fmt.Errorf("version %d would drop your ssh session", version)
		}
		return nil
	}}
	s, err := session.Open(ctx, target, session.Options{DB: filepath.Join(dir, "fwslot.db"), Guard: guard})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	// Versions as a load records them (compiled by nft on a real target).
	for _, p := range []string{"accept", "accept", "drop"} {
		if _, err := sessiontest.Record(s.Target(), "# policy "+p+" "+fmt.Sprint(len(p))+"\n", sessiontest.Ruleset(p)); err != nil {
			log.Fatal(err)
		}
	}
	for _, v := range []uint64{1, 2} {
		if err := s.StageVersion(ctx, v); err != nil {
			log.Fatal(err)
		}
		res, err := s.Swap(ctx, session.SwapOptions{})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("swap: version %d -> %d\n", res.From, res.To)
	}
	st, err := s.Status()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("status: production %d, staging %d, drift %v\n", st.Production.Version, st.Staging.Version, st.Drift)

	if err := s.StageVersion(ctx, 3); err != nil {
		log.Fatal(err)
	}
	if _, err := s.Swap(ctx, session.SwapOptions{}); err != nil {
		fmt.Println("refused:", err)
	}
	back, err := s.Rollback(ctx, 0)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("rollback: version %d -> %d (restaged from history: %v)\n", back.From, back.To, back.Restaged)
	// Output:
	// swap: version 0 -> 1
	// swap: version 1 -> 2
	// status: production 2, staging 1, drift false
	// refused: version 3 would drop your ssh session
	// rollback: version 2 -> 1 (restaged from history: true)
}
