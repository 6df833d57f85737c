// Package sessiontest provides a fake kernel for tests of code that runs
// fwslot sessions (package session, the fleet agent) without root: an
// in-memory model of the slot layout that takes whole transactions, as
// knftables' fake does for nftables.
package sessiontest

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/names"
	"github.com/fwslot/fwslot/internal/nfnl"
	"github.com/fwslot/fwslot/internal/slots"
	"github.com/fwslot/fwslot/session"
)

// ErrNotModelled is returned for reads of rule content: the fake models
// which version sits where and the dispatch, not rules. A drift check that
// must compare content (the generation moved) fails closed with it.
var ErrNotModelled = errors.New("fake kernel: rule content is not modelled")

// Kernel is a fake nf_tables for one target. A batch commits when it
// carries the current generation, like NFNL_BATCH_GENID: the fake then
// holds the state the batch was built on, as Stage and Flip left it, with
// the dispatch rules the kernel would report, and its generation moves.
// It is safe for concurrent use.
type Kernel struct {
	mu      sync.Mutex
	st      *slots.State
	handle  uint64
	refuse  error
	commits int
	reads   int
	conns   int
}

// New returns an empty kernel: no tables, generation 1.
func New() *Kernel { return &Kernel{st: &slots.State{Gen: 1}, handle: 100} }

// Connect opens a connection to the fake, for session.Target.Connect.
func (k *Kernel) Connect() (session.Kernel, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.conns++
	return &conn{k: k}, nil
}

// RefuseNext makes the next commit fail with err and change nothing.
func (k *Kernel) RefuseNext(err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.refuse = err
}

// Counts returns how many connections were opened, state reads made and
// batches committed so far.
func (k *Kernel) Counts() (conns, reads, commits int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.conns, k.reads, k.commits
}

// State returns a copy of what the kernel holds.
func (k *Kernel) State() *slots.State {
	k.mu.Lock()
	defer k.mu.Unlock()
	return clone(k.st)
}

// Change edits the kernel behind fwslot's back (a hand `nft` command, a
// reboot). The generation does not move unless fn moves it: with it
// unchanged, the session's drift check compares structure only (base
// chains, dispatch, chains added by hand), which the fake models.
func (k *Kernel) Change(fn func(st *slots.State)) {
	k.mu.Lock()
	defer k.mu.Unlock()
	fn(k.st)
}

type conn struct {
	k      *Kernel
	closed bool
}

func (c *conn) check() error {
	if c.closed {
		return errors.New("fake kernel: connection closed")
	}
	return nil
}

func (c *conn) ReadState() (*slots.State, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	c.k.mu.Lock()
	defer c.k.mu.Unlock()
	c.k.reads++
	return clone(c.k.st), nil
}

func (c *conn) ReadTables(func(uint8, string) bool) (*slots.Ruleset, error) {
	return nil, ErrNotModelled
}

func (c *conn) ReadLegacy([]*slots.TableState) (*slots.Ruleset, string, error) {
	return nil, "", ErrNotModelled
}

func (c *conn) Interfaces() ([]slots.Iface, error) {
	return []slots.Iface{{Name: "lo", Index: 1}}, nil
}

func (c *conn) Commit(b *nfnl.Batch, after *slots.State) error {
	if err := c.check(); err != nil {
		return err
	}
	k := c.k
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.refuse; err != nil {
		k.refuse = nil
		return err
	}
	if b.Gen != k.st.Gen {
		return nfnl.ErrGenChanged
	}
	st := clone(after)
	for _, t := range st.Managed() {
		k.dispatch(t)
	}
	st.Gen = nfnl.NextGen(k.st.Gen)
	k.st = st
	k.commits++
	return nil
}

// dispatch gives a managed table what the kernel reports after a batch:
// handles for new rules, and base chains that dispatch to the live slot.
func (k *Kernel) dispatch(t *slots.TableState) {
	next := func() uint64 { k.handle++; return k.handle }
	if t.MetaRule == 0 {
		t.MetaRule = next()
	}
	if t.Owner != "" && t.OwnerRule == 0 {
		t.OwnerRule = next()
	}
	tag := t.Markers[t.Active]
	for n, spec := range t.BaseSpecs[t.Active] {
		bc := t.Base[n]
		if bc == nil {
			bc = &slots.BaseChain{Name: n}
			t.Base[n] = bc
		}
		if bc.Dispatch == nil {
			bc.Dispatch = &slots.Dispatch{Jump: next(), Policy: next()}
			bc.Rules = []uint64{bc.Dispatch.Jump, bc.Dispatch.Policy}
		}
		bc.Spec = spec
		d := bc.Dispatch
		d.Slot, d.Version, d.Target, d.Verdict = t.Active, tag.Version, names.InSlot(t.Active, n), spec.Policy
	}
}

func (c *conn) Close() error {
	c.closed = true
	return nil
}

func clone(st *slots.State) *slots.State {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(st); err != nil {
		panic(fmt.Sprintf("sessiontest: encode state: %v", err))
	}
	out := &slots.State{}
	if err := gob.NewDecoder(&buf).Decode(out); err != nil {
		panic(fmt.Sprintf("sessiontest: decode state: %v", err))
	}
	// gob leaves empty maps out: give them back, as ReadState does.
	for _, t := range out.Tables {
		if t.Markers == nil {
			t.Markers = map[names.Slot]slots.Tag{}
		}
		if t.SlotChains == nil {
			t.SlotChains = map[names.Slot][]string{}
		}
		if t.SlotSets == nil {
			t.SlotSets = map[names.Slot][]string{}
		}
		if t.SlotObjs == nil {
			t.SlotObjs = map[names.Slot][]slots.ObjKey{}
		}
		if t.BaseSpecs == nil {
			t.BaseSpecs = map[names.Slot]map[string]*slots.BaseSpec{}
		}
		if t.Base == nil {
			t.Base = map[string]*slots.BaseChain{}
		}
		if t.Sets == nil {
			t.Sets = map[string]bool{}
		}
		if t.Objs == nil {
			t.Objs = map[slots.ObjKey]bool{}
		}
		if t.Flowtables == nil {
			t.Flowtables = map[string]bool{}
		}
	}
	return out
}

// Ruleset returns a compiled ruleset for the fake: table inet filter with
// an input base chain of policy "accept" or "drop" and no rules.
func Ruleset(policy string) *slots.Ruleset {
	verdict := uint32(nfnl.VerdictAccept)
	switch policy {
	case "accept":
	case "drop":
		verdict = nfnl.VerdictDrop
	default:
		panic(fmt.Sprintf("sessiontest: policy %q, want accept or drop", policy))
	}
	var hook nfnl.Encoder
	hook.Uint32(1, 1) // NFTA_HOOK_HOOKNUM: input
	hook.Uint32(2, 0) // NFTA_HOOK_PRIORITY: filter
	return &slots.Ruleset{Tables: []*slots.Table{{Family: nfnl.FamilyInet, Name: "filter", Chains: []*slots.Chain{
		{Name: "input", Base: &slots.BaseSpec{Hook: hook.Bytes(), Type: "filter", Policy: verdict}},
	}}}}
}

// Record adds a version with source and its compiled form rs to the
// target's history, as a load would before staging it, and returns its
// number.
func Record(t *session.Target, source string, rs *slots.Ruleset) (uint64, error) {
	blob, err := rs.Encode()
	if err != nil {
		return 0, err
	}
	v := history.Version{Hash: history.HashSource(source), User: "test", Time: time.Now().UTC(), Origin: "file",
		Message: "sessiontest", Source: source, Tables: rs.TableKeys(), Rules: rs.RuleCount()}
	got, err := t.Store.AddVersion(t.Key(), v, blob)
	if err != nil {
		return 0, fmt.Errorf("record version: %w", err)
	}
	return got.Number, nil
}
