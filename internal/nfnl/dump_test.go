package nfnl

import (
	"errors"
	"fmt"
	"testing"

	"golang.org/x/sys/unix"
)

// chainWithRules commits table t, chain c and n rules (each with a counter
// and userdata, so that a dump of them needs many rounds).
func chainWithRules(t *testing.T, c *Conn, n int) {
	t.Helper()
	var b Batch
	b.Add(MsgNewTable, FamilyInet, FlagCreate, tableAttrs("t"), "add table t")
	addChain(&b, "t", "c", "add chain c")
	for i := range n {
		var r Encoder
		r.String(RuleTable, "t")
		r.String(RuleChain, "c")
		r.Nested(RuleExpressions, func(l *Encoder) {
			l.Nested(ListElem, func(x *Encoder) { x.String(ExprName, "counter") })
		})
		r.Raw(RuleUserdata, fmt.Appendf(nil, "rule number %06d of the test chain", i))
		b.Add(MsgNewRule, FamilyInet, FlagCreate|FlagAppend, r.Bytes(), "add rule")
	}
	if err := c.Commit(&b); err != nil {
		t.Fatal(err)
	}
}

func ruleFilter() []byte {
	var e Encoder
	e.String(RuleTable, "t")
	e.String(RuleChain, "c")
	return e.Bytes()
}

// A commit that lands while a dump is being read must make the dump fail
// with ErrDumpInterrupted, and Dump must retry until it reads a
// consistent copy.
func TestDumpInterrupted(t *testing.T) {
	const n = 3000 // about 300 KB of rules: many 32 KB rounds
	tests := []struct {
		name string
		// commits is how many dump attempts a concurrent commit hits.
		commits  int
		wantErr  error
		useRetry bool
	}{
		{name: "one attempt sees the commit", commits: 1, wantErr: ErrDumpInterrupted},
		{name: "no commit", commits: 0},
		{name: "Dump retries after a commit", commits: 1, useRetry: true},
		{name: "Dump gives up after six interrupted attempts", commits: 6, useRetry: true, wantErr: ErrDumpInterrupted},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inFreshNetns(t, func(c *Conn) {
				chainWithRules(t, c, n)
				other, err := DialHere()
				if err != nil {
					t.Error(err)
					return
				}
				defer other.Close()
				left := tc.commits
				c.afterRequest = func() {
					if left == 0 {
						return
					}
					left--
					var b Batch
					b.Add(MsgNewTable, FamilyInet, FlagCreate, tableAttrs(fmt.Sprintf("x%d", left)), "add table")
					if err := other.Commit(&b); err != nil {
						t.Error(err)
					}
				}
				var msgs []Msg
				if tc.useRetry {
					msgs, err = c.Dump(MsgGetRule, FamilyInet, ruleFilter())
				} else {
					msgs, err = c.dumpOnce(MsgGetRule, FamilyInet, ruleFilter())
				}
				if !errors.Is(err, tc.wantErr) {
					t.Errorf("want error %v, got %v", tc.wantErr, err)
					return
				}
				if tc.wantErr == nil && len(msgs) != n {
					t.Errorf("want %d rules, got %d", n, len(msgs))
				}
				if left != 0 {
					t.Errorf("%d commits not made: the dump ran fewer attempts than expected", left)
				}
			})
		})
	}
}

// Every kind of object fwslot reads dumps through the library's framing.
func TestDumpEveryKind(t *testing.T) {
	inFreshNetns(t, func(c *Conn) {
		chainWithRules(t, c, 3)
		var b Batch
		var s Encoder
		s.String(SetTable, "t")
		s.String(SetName, "s")
		s.Uint32(SetKeyLen, 4)
		s.Uint32(SetID, 1)
		b.Add(MsgNewSet, FamilyInet, FlagCreate, s.Bytes(), "add set")
		var el Encoder
		el.String(SetElemListTable, "t")
		el.String(SetElemListSet, "s")
		el.Nested(SetElemListElements, func(l *Encoder) {
			l.Nested(ListElem, func(x *Encoder) {
				x.Nested(SetElemKey, func(k *Encoder) { k.Raw(1, []byte{10, 0, 0, 1}) }) // NFTA_DATA_VALUE
			})
		})
		b.Add(MsgNewSetElem, FamilyInet, FlagCreate, el.Bytes(), "add element")
		var o Encoder
		o.String(1, "t")               // NFTA_OBJ_TABLE
		o.String(2, "cnt")             // NFTA_OBJ_NAME
		o.Uint32(3, 1)                 // NFTA_OBJ_TYPE: NFT_OBJECT_COUNTER
		o.Nested(4, func(*Encoder) {}) // NFTA_OBJ_DATA
		b.Add(MsgNewObj, FamilyInet, FlagCreate, o.Bytes(), "add counter")
		if err := c.Commit(&b); err != nil {
			t.Error(err)
			return
		}
		var ef Encoder
		ef.String(SetElemListTable, "t")
		ef.String(SetElemListSet, "s")
		dumps := []struct {
			typ    uint16
			family uint8
			filter []byte
		}{
			{MsgGetTable, unix.AF_UNSPEC, nil},
			{MsgGetChain, unix.AF_UNSPEC, nil},
			{MsgGetRule, unix.AF_UNSPEC, nil},
			{MsgGetSet, unix.AF_UNSPEC, nil},
			{MsgGetSetElem, FamilyInet, ef.Bytes()},
			{MsgGetObj, unix.AF_UNSPEC, nil},
		}
		for _, d := range dumps {
			msgs, err := c.dumpOnce(d.typ, d.family, d.filter)
			if err != nil || len(msgs) == 0 {
				t.Errorf("dump of message type %d: %d objects, %v", d.typ, len(msgs), err)
			}
		}
	})
}

func TestBuffersForced(t *testing.T) {
	inFreshNetns(t, func(c *Conn) {
		var r, w int
		var rerr, werr error
		err := c.raw.Control(func(fd uintptr) {
			r, rerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
			w, werr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF)
		})
		if err = errors.Join(err, rerr, werr); err != nil {
			t.Error(err)
			return
		}
		// The kernel doubles what it is given, for its bookkeeping.
		if r < bufSize || w < bufSize {
			t.Errorf("socket buffers %d (receive) and %d (send), want %d", r, w, bufSize)
		}
	})
}

// The socket is blocking, so the runtime's poller does not watch it
// (detach): replies then wake no idle netpoller.
func TestSocketOutsidePoller(t *testing.T) {
	inFreshNetns(t, func(c *Conn) {
		var fl int
		var ferr error
		if err := c.raw.Control(func(fd uintptr) { fl, ferr = unix.FcntlInt(fd, unix.F_GETFL, 0) }); err != nil || ferr != nil {
			t.Error(err, ferr)
			return
		}
		if fl&unix.O_NONBLOCK != 0 {
			t.Error("the netlink socket is non-blocking, so it is still in the runtime's poller")
		}
		if _, err := c.GenID(); err != nil {
			t.Error(err)
		}
	})
}
