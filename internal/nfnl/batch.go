package nfnl

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Batch collects messages that the kernel applies as one transaction.
type Batch struct {
	// Gen, when not zero, is the ruleset generation the batch was built
	// from: the kernel applies the batch only if no other transaction
	// committed since (NFNL_BATCH_GENID), and Commit returns
	// ErrGenChanged otherwise.
	Gen   uint32
	buf   []byte
	descs []string
	n     int
	// marks say where the messages a caller tagged with Mark start.
	marks []batchMark
}

type batchMark struct {
	at     int // index of the first message the mark covers
	origin any
}

// Mark tags the messages added from now on with origin (nil ends a tag),
// so that an Error names where a refused message came from: its Origin
// and its Offset among the messages of that origin. One mark covers many
// messages (a chain's rules), so the batch stays cheap at 100k rules.
func (b *Batch) Mark(origin any) {
	b.marks = append(b.marks, batchMark{at: b.n, origin: origin})
}

// origin returns the mark covering message i and i's offset from its
// start.
func (b *Batch) origin(i int) (any, int) {
	for j := len(b.marks) - 1; j >= 0; j-- {
		if b.marks[j].at <= i {
			return b.marks[j].origin, i - b.marks[j].at
		}
	}
	return nil, 0
}

// ErrGenChanged means another transaction committed after the state a batch
// was built from was read; the kernel applied nothing of the batch.
var ErrGenChanged = errors.New("the ruleset changed while the transaction was prepared; nothing was applied")

// Batch delimiters carry the subsystem in the resource id of their
// nfgenmsg; the begin message may carry NFNL_BATCH_GENID.
const batchGenID = 1

// NextGen is the ruleset generation after one committed transaction at gen:
// nf_tables increments it once per commit, skipping 0. After Commit of a
// batch that carried Gen succeeds, the kernel is at NextGen(Gen): the
// generation check held the commit lock, so nothing committed in between.
func NextGen(gen uint32) uint32 {
	if gen++; gen == 0 {
		gen = 1
	}
	return gen
}

// Len returns the number of messages in the batch, delimiters excluded.
func (b *Batch) Len() int { return b.n }

// Add appends one message. desc names it in errors ("add rule inet filter
// fwslot_a_input"); it is only formatted when the kernel rejects the
// message.
func (b *Batch) Add(msgType uint16, family uint8, flags uint16, attrs []byte, desc string) {
	b.n++
	b.descs = append(b.descs, desc)
	b.buf = appendMsg(b.buf, SubsysNFTables<<8|msgType, netlink.Request|netlink.HeaderFlags(flags), uint32(b.n), family, 0, attrs)
}

// appendMsg writes one message (netlink header, nfgenmsg, attrs) straight
// into the batch buffer. It stays hand-written: netlink.Message.
// MarshalBinary allocates every message and needs its payload (nfgenmsg
// and attrs) in one slice first, two more copies of what is 100 MB at
// 100k rules. The header layout is netlink.Header's.
func appendMsg(buf []byte, typ uint16, flags netlink.HeaderFlags, seq uint32, family uint8, resID uint16, attrs []byte) []byte {
	const hdrLen = 16
	l := hdrLen + nfgenHdrLen + len(attrs)
	var h [hdrLen + nfgenHdrLen]byte
	binary.NativeEndian.PutUint32(h[0:4], uint32(l))
	binary.NativeEndian.PutUint16(h[4:6], typ)
	binary.NativeEndian.PutUint16(h[6:8], uint16(flags))
	binary.NativeEndian.PutUint32(h[8:12], seq)
	h[16] = family
	binary.BigEndian.PutUint16(h[18:20], resID)
	buf = append(buf, h[:]...)
	buf = append(buf, attrs...)
	for i := l; i < align(l); i++ {
		buf = append(buf, 0)
	}
	return buf
}

// Commit sends the batch in one sendmsg, so that nf_tables applies all of
// it or none of it. It asks for no acknowledgements: the kernel processes
// the batch synchronously and queues only errors, which are read back
// before Commit returns.
func (c *Conn) Commit(b *Batch) error {
	if b.n == 0 {
		return nil
	}
	// The messages carry sequence numbers 1..n from Add; the delimiters
	// take 0 and n+1. Errors of this batch are all queued before sendmsg
	// returns and drained below, so numbers never mix across batches.
	const base = 0
	var genAttr []byte
	if b.Gen != 0 {
		ae := netlink.NewAttributeEncoder()
		ae.ByteOrder = binary.BigEndian
		ae.Uint32(batchGenID, b.Gen)
		var err error
		if genAttr, err = ae.Encode(); err != nil {
			return fmt.Errorf("encode batch generation: %w", err)
		}
	}
	begin := appendMsg(nil, msgBatchBegin, netlink.Request, base, unix.AF_UNSPEC, SubsysNFTables, genAttr)
	end := appendMsg(nil, msgBatchEnd, netlink.Request, base+uint32(b.n)+1, unix.AF_UNSPEC, SubsysNFTables, nil)
	size := len(begin) + len(b.buf) + len(end)
	// Three buffers, one sendmsg: the batch is not copied again.
	if err := c.send(begin, b.buf, end); err != nil {
		return fmt.Errorf("send batch of %d messages (%d bytes): %w", b.n, size, err)
	}
	var errs []error
	for {
		// The kernel has queued every error of the batch when sendmsg
		// returns, and sends nothing else: read until the queue is
		// empty, without blocking (as libnftables does).
		rb, err := c.recv(false)
		if errors.Is(err, unix.EAGAIN) {
			break
		}
		if err != nil {
			// ENOBUFS here means replies were lost, not that the
			// transaction failed; the caller verifies the outcome.
			return fmt.Errorf("read batch result: %w", err)
		}
		err = eachMsg(rb, func(m netlink.Message) error {
			if m.Header.Type != netlink.Error {
				return nil
			}
			errno, detail := replyError(m)
			if errno == 0 {
				return nil
			}
			e := &Error{Desc: "commit", Errno: errno, Detail: detail}
			if i := int(m.Header.Sequence) - base - 1; i >= 0 && i < len(b.descs) {
				e.Desc = b.descs[i]
				e.Origin, e.Offset = b.origin(i)
			} else if errno == unix.ERESTART && b.Gen != 0 {
				errs = append(errs, fmt.Errorf("%w (generation %d expected)", ErrGenChanged, b.Gen))
				return nil
			}
			errs = append(errs, e)
			return nil
		})
		if err != nil {
			return fmt.Errorf("read batch result: %w", err)
		}
	}
	return errors.Join(errs...)
}
