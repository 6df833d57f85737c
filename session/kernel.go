package session

import (
	"github.com/fwslot/fwslot/internal/nfnl"
	"github.com/fwslot/fwslot/internal/slots"
)

// Kernel is what a session needs from the target's nf_tables: one
// connection, opened once per command. The real one is a netlink
// connection (slots does the reading and writing); tests use a fake.
type Kernel interface {
	// ReadState reads the generation, then fwslot's view of the tables.
	ReadState() (*slots.State, error)
	// ReadTables reads the full content of the tables want accepts.
	ReadTables(want func(family uint8, table string) bool) (*Ruleset, error)
	// ReadLegacy reads tables fwslot is about to take over, with their
	// source as nft prints it.
	ReadLegacy(tables []*slots.TableState) (*Ruleset, string, error)
	// Interfaces lists the target's interfaces and their indexes.
	Interfaces() ([]slots.Iface, error)
	// Commit sends b as one transaction. after is the state b was built
	// on, as Stage and Flip left it: what the kernel holds once b
	// commits. The netlink kernel ignores it (the next ReadState reads
	// the truth); a fake adopts it, since it cannot decode a batch.
	Commit(b *nfnl.Batch, after *slots.State) error
	// Close releases the connection.
	Close() error
}

// netlinkKernel is the real kernel behind one netlink connection.
type netlinkKernel struct {
	c     *nfnl.Conn
	netns string
}

func (k *netlinkKernel) ReadState() (*slots.State, error) { return slots.ReadState(k.c) }

func (k *netlinkKernel) ReadTables(want func(uint8, string) bool) (*Ruleset, error) {
	return slots.ReadTables(k.c, want)
}

func (k *netlinkKernel) ReadLegacy(tables []*slots.TableState) (*Ruleset, string, error) {
	return slots.ReadLegacy(k.c, k.netns, tables)
}

func (k *netlinkKernel) Interfaces() ([]slots.Iface, error) { return slots.Interfaces(k.netns) }

func (k *netlinkKernel) Commit(b *nfnl.Batch, _ *slots.State) error { return k.c.Commit(b) }

func (k *netlinkKernel) Close() error { return k.c.Close() }
