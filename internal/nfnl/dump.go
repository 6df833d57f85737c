package nfnl

import (
	"bytes"
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

// dumpOnce sends a dump request and reads the multi-part reply to its
// NLMSG_DONE. The kernel flags a dump that spans a commit with
// NLM_F_DUMP_INTR, checked between the rounds in which it fills the dump;
// the check of the last round is carried only by NLMSG_DONE (nf_tables
// never puts objects and DONE in one round), so DONE's flags count too.
func (c *Conn) dumpOnce(msgType uint16, family uint8, attrs []byte) ([]Msg, error) {
	req, seq, err := c.request(msgType, netlink.Dump, family, attrs)
	if err != nil {
		return nil, fmt.Errorf("dump request: %w", err)
	}
	if err := c.send(req); err != nil {
		return nil, fmt.Errorf("send dump request: %w", err)
	}
	if c.afterRequest != nil {
		c.afterRequest()
	}
	var out []Msg
	interrupted := false
	for done := false; !done; {
		b, err := c.recv(true)
		if err != nil {
			return nil, fmt.Errorf("read dump: %w", err)
		}
		// Copy: c.rx is reused, and the attributes alias the copy.
		b = bytes.Clone(b)
		err = eachMsg(b, func(m netlink.Message) error {
			if m.Header.Sequence != seq {
				return nil // a late reply to an earlier request
			}
			if m.Header.Flags&netlink.DumpInterrupted != 0 {
				interrupted = true
			}
			switch m.Header.Type {
			case netlink.Done, netlink.Error:
				done = true
				if errno, detail := replyError(m); errno != 0 {
					return &Error{Desc: "dump", Errno: errno, Detail: detail}
				}
				return nil
			}
			if len(m.Data) < nfgenHdrLen {
				return fmt.Errorf("short nf_tables message")
			}
			as, err := ParseAttrs(m.Data[nfgenHdrLen:])
			if err != nil {
				return err
			}
			out = append(out, Msg{Type: uint16(m.Header.Type) & 0xff, Family: m.Data[0], Attrs: as})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if interrupted {
		return nil, ErrDumpInterrupted
	}
	return out, nil
}
