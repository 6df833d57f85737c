package fleet

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// fakeHost is a Host in memory: slots hold hashes. A source containing
// "REFUSE" cannot be staged; one containing "UNHEALTHY" fails its health
// check; "UNHEALTHY@host" fails on that host only.
type fakeHost struct {
	name string
	mu   sync.Mutex
	st   LocalState
	src  map[string]string
	// swaps counts swaps and flips; staged the versions staged.
	swaps, staged int
	deadline      *time.Timer
	// hold, when set, makes Check wait until it is closed.
	hold chan struct{}
	// lives are the hashes production held, in order.
	lives []string
}

// flip exchanges the slots (f.mu held).
func (f *fakeHost) flip() {
	f.st.Production, f.st.Staging = f.st.Staging, f.st.Production
	f.swaps++
	f.lives = append(f.lives, f.st.Production)
}

func newFakeHost(name string) *fakeHost { return &fakeHost{name: name, src: map[string]string{}} }

func (f *fakeHost) State(ctx context.Context) (LocalState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st, nil
}

func (f *fakeHost) Stage(ctx context.Context, v *Version) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if strings.Contains(v.Source, "REFUSE") {
		return errors.New("compile: syntax error")
	}
	f.src[v.Hash] = v.Source
	f.st.Staging = v.Hash
	f.staged++
	return nil
}

func (f *fakeHost) Swap(ctx context.Context, confirm time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.st.Staging == "" {
		return errors.New("nothing staged")
	}
	if f.st.Pending {
		return errors.New("a swap waits for confirmation")
	}
	f.flip()
	if confirm > 0 {
		f.st.Pending = true
		f.deadline = time.AfterFunc(confirm, func() { f.Revert(context.Background(), "deadline") })
	}
	return nil
}

func (f *fakeHost) settle() {
	f.st.Pending = false
	if f.deadline != nil {
		f.deadline.Stop()
		f.deadline = nil
	}
}

func (f *fakeHost) Confirm(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.settle()
	return nil
}

func (f *fakeHost) Revert(ctx context.Context, reason string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.st.Pending {
		return nil
	}
	f.settle()
	f.flip()
	return nil
}

func (f *fakeHost) FlipTo(ctx context.Context, hash string) (LocalState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.st.Production == hash {
		return f.st, nil
	}
	if f.st.Staging != hash {
		return f.st, ErrNotStaged
	}
	f.settle()
	f.flip()
	return f.st, nil
}

func (f *fakeHost) Check(ctx context.Context, probes string) error {
	f.mu.Lock()
	hold := f.hold
	f.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	src := f.src[f.st.Production]
	if strings.Contains(src, "UNHEALTHY\n") || strings.Contains(src, "UNHEALTHY@"+f.name+"\n") {
		return fmt.Errorf("probe %q failed on %s", probes, f.name)
	}
	return nil
}
