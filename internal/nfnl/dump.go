package nfnl

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/mdlayher/netlink"
)

// ErrDumpInterrupted means the ruleset changed while a dump ran; the
// caller retries.
var ErrDumpInterrupted = errors.New("ruleset changed during dump")

// Dump asks for every object of a type (MsgGetRule, MsgGetChain, ...),
// optionally filtered by attrs (table and chain for rules, table and set
// for elements), and returns the messages. It retries a dump that the
// kernel flags as interrupted by a concurrent change.
func (c *Conn) Dump(msgType uint16, family uint8, attrs []byte) ([]Msg, error) {
	for try := 0; ; try++ {
		msgs, err := c.dumpOnce(msgType, family, attrs)
		if errors.Is(err, ErrDumpInterrupted) && try < 5 {
			continue
		}
		return msgs, err
	}
}

// dumpOnce sends a dump request and reads the whole dump with
// mdlayher/netlink, which follows the multi-part reply to its end and
// decodes kernel errors.
//
// Consistency: the kernel flags a dump that spans a commit with
// NLM_F_DUMP_INTR, checked between the rounds in which it fills the dump.
// The check of the last round is carried only by the NLMSG_DONE message
// (nf_tables never puts objects and DONE in one round), and
// mdlayher/netlink consumes DONE without handing it out. So besides the
// flag on the objects, every object's nfgenmsg resource id, which nf_tables
// sets to the low 16 bits of the ruleset generation it was read at, must
// equal the generation after the dump: a commit at any point after the
// first object was read shows as a mismatch.
func (c *Conn) dumpOnce(msgType uint16, family uint8, attrs []byte) ([]Msg, error) {
	req, err := c.nl.Send(request(msgType, netlink.Dump, family, attrs))
	if err != nil {
		return nil, fmt.Errorf("send dump request: %w", err)
	}
	if c.afterRequest != nil {
		c.afterRequest()
	}
	var (
		out         []Msg
		gens        []uint16
		interrupted bool
	)
	for m, err := range c.nl.ReceiveIter() {
		if err != nil {
			if oe, errno, ok := kernelError(err); ok {
				return nil, &Error{Desc: "dump", Errno: errno, Detail: oe.Message}
			}
			return nil, fmt.Errorf("read dump: %w", err)
		}
		if m.Header.Sequence != req.Header.Sequence {
			continue // a late reply to an earlier request
		}
		if m.Header.Flags&netlink.DumpInterrupted != 0 {
			interrupted = true
		}
		if m.Header.Type == netlink.Error || m.Header.Type == netlink.Done {
			continue // a zero error or the end; errors came as err
		}
		if len(m.Data) < nfgenHdrLen {
			return nil, fmt.Errorf("short nf_tables message")
		}
		// The library reads every datagram into a buffer of its own,
		// so the attributes may alias it.
		as, err := ParseAttrs(m.Data[nfgenHdrLen:])
		if err != nil {
			return nil, err
		}
		out = append(out, Msg{Type: uint16(m.Header.Type) & 0xff, Family: m.Data[0], Attrs: as})
		gens = append(gens, binary.BigEndian.Uint16(m.Data[2:4]))
	}
	if interrupted {
		return nil, ErrDumpInterrupted
	}
	if len(out) == 0 {
		return nil, nil // one round, read in one piece
	}
	gen, err := c.GenID()
	if err != nil {
		return nil, fmt.Errorf("dump: %w", err)
	}
	if !sameGeneration(gens, gen) {
		return nil, ErrDumpInterrupted
	}
	return out, nil
}

// sameGeneration reports whether every object of a dump was read at
// generation gen (objects carry its low 16 bits).
func sameGeneration(objGens []uint16, gen uint32) bool {
	for _, g := range objGens {
		if g != uint16(gen) {
			return false
		}
	}
	return true
}
