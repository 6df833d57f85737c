package history

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"
)

// TestConcurrentAddVersion: version numbers are assigned in the
// transaction that writes the version, so writers racing on one Store
// (goroutines) or on one file (each with its own Open, as two processes
// do) never get the same number, and the numbers stay dense.
func TestConcurrentAddVersion(t *testing.T) {
	const writers, each = 4, 5
	tests := []struct {
		name     string
		ownStore bool
	}{
		{"goroutines sharing a Store", false},
		{"writers each opening the file", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shared, path := openTemp(t)
			if tt.ownStore {
				if err := shared.Close(); err != nil {
					t.Fatal(err)
				}
			}
			var mu sync.Mutex
			var got []uint64
			errs := make(chan error, writers*each)
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					for i := range each {
						s := shared
						if tt.ownStore {
							var err error
							if s, err = Open(path, Options{Timeout: time.Minute}); err != nil {
								errs <- err
								return
							}
						}
						v, err := s.AddVersion("host", Version{Source: fmt.Sprintf("writer %d version %d", w, i)}, nil)
						if tt.ownStore {
							err = errors.Join(err, s.Close())
						}
						if err != nil {
							errs <- err
							return
						}
						mu.Lock()
						got = append(got, v.Number)
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			sort.Slice(got, func(i, j int) bool { return got[i] < got[j] })
			for i, n := range got {
				if n != uint64(i+1) {
					t.Fatalf("numbers %v: want 1..%d, each once", got, writers*each)
				}
			}
			s := shared
			if tt.ownStore {
				var err error
				if s, err = Open(path, Options{}); err != nil {
					t.Fatal(err)
				}
				defer s.Close()
			}
			vs, err := s.Versions("host")
			if err != nil || len(vs) != writers*each {
				t.Fatalf("stored %d versions (%v), want %d", len(vs), err, writers*each)
			}
		})
	}
}

// TestForecastCheckedInTransaction: a writer that tagged a version with
// Next's forecast and finds, in the writing transaction, that another
// writer took the number rolls back: nothing of its version is stored and
// no number is consumed.
func TestForecastCheckedInTransaction(t *testing.T) {
	s, _ := openTemp(t)
	want, err := s.Next("host")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddVersion("host", Version{Source: "the other writer"}, nil); err != nil {
		t.Fatal(err)
	}
	before := s.Commits()
	taken := errors.New("number taken")
	err = s.Update(func(tx *Tx) error {
		v, err := tx.AddVersion("host", Version{Source: "mine"}, []byte("blob"))
		if err == nil && v.Number != want {
			err = taken
		}
		return err
	})
	if !errors.Is(err, taken) {
		t.Fatalf("Update = %v, want the number check to fail", err)
	}
	vs, err := s.Versions("host")
	if err != nil || len(vs) != 1 || vs[0].Source != "" || s.Commits() != before {
		t.Fatalf("versions %+v (%v), %d commits: want only the other writer's, no commit", vs, err, s.Commits()-before)
	}
	if _, ok, err := s.FindHash("host", HashSource("mine")); err != nil || ok {
		t.Fatalf("the rolled-back version's hash is indexed (%v)", err)
	}
	if n, err := s.Next("host"); err != nil || n != 2 {
		t.Fatalf("Next = %d (%v), want 2: the rolled-back number is not consumed", n, err)
	}
}
