package nfnl

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/fwslot/fwslot/internal/nsutil"
	"golang.org/x/sys/unix"
)

func inFreshNetns(t *testing.T, fn func(c *Conn)) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	err := nsutil.DoFresh(func() error {
		c, err := DialHere()
		if err != nil {
			return err
		}
		defer c.Close()
		fn(c)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func tableAttrs(name string) []byte {
	var e Encoder
	e.String(TableName, name)
	return e.Bytes()
}

// addChain adds a regular chain named chain to table in b; what names
// the message in errors.
func addChain(b *Batch, table, chain, what string) {
	var e Encoder
	e.String(ChainTable, table)
	e.String(ChainName, chain)
	b.Add(MsgNewChain, FamilyInet, FlagCreate, e.Bytes(), what)
}

func TestCommitAndDump(t *testing.T) {
	inFreshNetns(t, func(c *Conn) {
		gen0, err := c.GenID()
		if err != nil {
			t.Fatal(err)
		}
		var b Batch
		b.Add(MsgNewTable, FamilyInet, FlagCreate, tableAttrs("t1"), "add table t1")
		addChain(&b, "t1", "c1", "add chain c1")
		if err := c.Commit(&b); err != nil {
			t.Fatal(err)
		}
		gen1, _ := c.GenID()
		if gen1 == gen0 {
			t.Fatalf("generation did not move: %d", gen1)
		}
		msgs, err := c.Dump(MsgGetChain, FamilyInet, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != 1 {
			t.Fatalf("want 1 chain, got %d", len(msgs))
		}
		name, _ := msgs[0].Attr(ChainName)
		if Str(name) != "c1" {
			t.Fatalf("chain name %q", Str(name))
		}
		out, err := exec.Command("nft", "list", "ruleset").Output()
		if err != nil || !strings.Contains(string(out), "chain c1") {
			t.Fatalf("nft does not see the chain: %v\n%s", err, out)
		}
	})
}

func TestCommitIsAllOrNothing(t *testing.T) {
	inFreshNetns(t, func(c *Conn) {
		var b Batch
		b.Add(MsgNewTable, FamilyInet, FlagCreate, tableAttrs("good"), "add table good")
		addChain(&b, "missing", "c", "add chain to missing table")
		err := c.Commit(&b)
		var ne *Error
		if !errors.As(err, &ne) || ne.Errno != unix.ENOENT || ne.Desc != "add chain to missing table" {
			t.Fatalf("want ENOENT naming the message, got %v", err)
		}
		msgs, err := c.Dump(MsgGetTable, unix.AF_UNSPEC, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != 0 {
			t.Fatalf("failed batch left %d tables behind", len(msgs))
		}
	})
}

func TestAttrRoundTrip(t *testing.T) {
	var e Encoder
	e.String(1, "abc")
	e.Uint32(2, 7)
	e.Nested(3, func(n *Encoder) { n.Uint64(1, 9) })
	as, err := ParseAttrs(e.Bytes())
	if err != nil || len(as) != 3 {
		t.Fatalf("parse: %v %d", err, len(as))
	}
	if Str(as[0].Data) != "abc" || U32(as[1].Data) != 7 || as[2].Type&FlagNested == 0 {
		t.Fatalf("bad round trip: %+v", as)
	}
	inner, _ := ParseAttrs(as[2].Data)
	if U64(inner[0].Data) != 9 {
		t.Fatal("nested value lost")
	}
	if _, err := ParseAttrs([]byte{8, 0, 1}); err == nil {
		t.Fatal("truncated attribute accepted")
	}
}

// TestCommitErrorNamesItsMark proves that a refused message carries the
// mark it was added under and its offset within it, for every position
// of the refused message.
func TestCommitErrorNamesItsMark(t *testing.T) {
	for _, tc := range []struct {
		name       string
		bad        int // index of the refused chain among the marked ones
		wantOrigin any
	}{
		{"first of the span", 0, "span"},
		{"middle of the span", 2, "span"},
		{"last of the span", 3, "span"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inFreshNetns(t, func(c *Conn) {
				var b Batch
				b.Add(MsgNewTable, FamilyInet, FlagCreate, tableAttrs("t"), "add table t")
				b.Mark("span")
				for i := 0; i < 4; i++ {
					table := "t"
					if i == tc.bad {
						table = "missing"
					}
					addChain(&b, table, "c"+string(rune('0'+i)), "add chain")
				}
				b.Mark(nil)
				b.Add(MsgNewChain, FamilyInet, FlagCreate, tableAttrs("t"), "unmarked")
				err := c.Commit(&b)
				var ne *Error
				if !errors.As(err, &ne) {
					t.Fatalf("want an *Error, got %v", err)
				}
				if ne.Origin != tc.wantOrigin || ne.Offset != tc.bad {
					t.Fatalf("origin %v offset %d, want %v %d (%v)", ne.Origin, ne.Offset, tc.wantOrigin, tc.bad, err)
				}
			})
		})
	}
}

// The kernel's extended ack reaches Error.Detail, with capped acks (the
// kernel echoes only the rejected message's header).
func TestCommitErrorDetail(t *testing.T) {
	inFreshNetns(t, func(c *Conn) {
		var b Batch
		b.Add(MsgNewTable, FamilyInet, FlagCreate, tableAttrs("ok"), "add table ok")
		b.Add(MsgNewTable, FamilyInet, FlagCreate, tableAttrs(strings.Repeat("x", 300)), "add table with a long name")
		err := c.Commit(&b)
		var ne *Error
		if !errors.As(err, &ne) || ne.Desc != "add table with a long name" || ne.Detail == "" {
			t.Errorf("want an error naming the message with the kernel's reason, got %v", err)
		}
	})
}
