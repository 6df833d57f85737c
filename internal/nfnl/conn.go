// Package nfnl is fwslot's small nf_tables netlink client: it sends batches
// of raw messages as one transaction and dumps kernel objects as raw
// attributes. It keeps bytes as the kernel sent them, so that nothing is
// lost when objects are copied between namespaces (google/nftables drops
// expressions it does not know).
package nfnl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"

	"github.com/fwslot/fwslot/internal/nsutil"
	"golang.org/x/sys/unix"
)

// bufSize is the socket buffer size forced on every connection. Large
// batches fail with "message too long" on default buffers, and large dumps
// arrive faster with a large receive buffer.
const bufSize = 256 << 20

const (
	nlmsgHdrLen  = 16
	nfgenHdrLen  = 4
	nlmsgError   = 2
	nlmsgDone    = 3
	flagRequest  = 0x1
	flagMulti    = 0x2
	flagAck      = 0x4
	flagDumpIntr = 0x10
	// FlagReplace replaces an existing object (NLM_F_REPLACE).
	FlagReplace = 0x100
	// FlagExcl fails when the object exists (NLM_F_EXCL).
	FlagExcl = 0x200
	// FlagCreate creates the object (NLM_F_CREATE).
	FlagCreate = 0x400
	// FlagAppend appends a rule at the end of its chain (NLM_F_APPEND).
	FlagAppend = 0x800
	flagDump   = 0x300
)

// Conn is a netlink socket bound to the nf_tables subsystem of one network
// namespace. It is not safe for concurrent use.
type Conn struct {
	fd  int
	seq uint32
	rx  []byte
}

// Dial opens a connection in the named network namespace ("" for the
// namespace of the calling thread).
func Dial(netns string) (*Conn, error) {
	var c *Conn
	err := nsutil.Do(netns, func() error {
		var err error
		c, err = dial()
		return err
	})
	if err != nil {
		if netns != "" {
			return nil, fmt.Errorf("netlink in netns %s: %w", netns, err)
		}
		return nil, err
	}
	return c, nil
}

// DialHere opens a connection in the calling thread's current namespace;
// use it inside nsutil.Do or nsutil.DoFresh.
func DialHere() (*Conn, error) { return dial() }

func dial() (*Conn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind netlink socket: %w", err)
	}
	// Forcing buffers needs CAP_NET_ADMIN, which every caller has; fall
	// back to the capped variants so an unprivileged read still works.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, bufSize) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, bufSize)
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, bufSize) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, bufSize)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_EXT_ACK, 1)
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
	return &Conn{fd: fd, seq: 1, rx: make([]byte, 1<<20)}, nil
}

// Close closes the socket.
func (c *Conn) Close() error { return unix.Close(c.fd) }

// Msg is one nf_tables message as received from the kernel.
type Msg struct {
	// Type is the nf_tables message type (MsgNewRule, ...), without the
	// subsystem.
	Type   uint16
	Family uint8
	Attrs  []Attr
}

// Attr returns the payload of the first attribute of the given kind.
func (m Msg) Attr(kind uint16) ([]byte, bool) {
	a, ok := Find(m.Attrs, kind)
	return a.Data, ok
}

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

// batchGenID is NFNL_BATCH_GENID, the attribute of the batch begin message
// that carries the expected generation.
const batchGenID = 1

// Len returns the number of messages in the batch, delimiters excluded.
func (b *Batch) Len() int { return b.n }

// Add appends one message. desc names it in errors ("add rule inet filter
// fwslot_a_input"); it is only formatted when the kernel rejects the
// message.
func (b *Batch) Add(msgType uint16, family uint8, flags uint16, attrs []byte, desc string) {
	b.n++
	b.descs = append(b.descs, desc)
	b.buf = appendMsg(b.buf, SubsysNFTables<<8|msgType, flagRequest|flags, uint32(b.n), family, 0, attrs)
}

func appendMsg(buf []byte, typ uint16, flags uint16, seq uint32, family uint8, resID uint16, attrs []byte) []byte {
	l := nlmsgHdrLen + nfgenHdrLen + len(attrs)
	var h [nlmsgHdrLen + nfgenHdrLen]byte
	binary.NativeEndian.PutUint32(h[0:4], uint32(l))
	binary.NativeEndian.PutUint16(h[4:6], typ)
	binary.NativeEndian.PutUint16(h[6:8], flags)
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

// Error is a message of a batch that the kernel rejected.
type Error struct {
	// Desc names the message that failed.
	Desc string
	// Errno is the kernel's error.
	Errno syscall.Errno
	// Detail is the kernel's extended ack text, if any.
	Detail string
	// Origin is what Batch.Mark tagged the message with (nil if
	// nothing), and Offset its position among the messages of that
	// origin.
	Origin any
	Offset int
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%s: %v", e.Desc, e.Errno)
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}

func (e *Error) Unwrap() error { return e.Errno }

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
	var genAttr Encoder
	if b.Gen != 0 {
		genAttr.Uint32(batchGenID, b.Gen)
	}
	begin := appendMsg(nil, msgBatchBegin, flagRequest, base, unix.AF_UNSPEC, SubsysNFTables, genAttr.Bytes())
	end := appendMsg(nil, msgBatchEnd, flagRequest, base+uint32(b.n)+1, unix.AF_UNSPEC, SubsysNFTables, nil)
	// Three buffers, one sendmsg: the batch (100 MB at 100k rules) is not
	// copied again.
	size := len(begin) + len(b.buf) + len(end)
	if _, err := unix.SendmsgBuffers(c.fd, [][]byte{begin, b.buf, end}, nil, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}, 0); err != nil {
		return fmt.Errorf("send batch of %d messages (%d bytes): %w", b.n, size, err)
	}
	var errs []error
	for {
		n, _, err := unix.Recvfrom(c.fd, c.rx, unix.MSG_DONTWAIT)
		if errors.Is(err, unix.EAGAIN) {
			break
		}
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			// ENOBUFS here means replies were lost, not that the
			// transaction failed; the caller verifies the outcome.
			return fmt.Errorf("read batch result: %w", err)
		}
		err = forEachMsg(c.rx[:n], func(typ, flags uint16, seq uint32, payload []byte) error {
			if typ != nlmsgError {
				return nil
			}
			errno, detail := parseError(payload, flags)
			if errno == 0 {
				return nil
			}
			e := &Error{Desc: "commit", Errno: errno, Detail: detail}
			if i := int(seq) - int(base) - 1; i >= 0 && i < len(b.descs) {
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
			return err
		}
	}
	return errors.Join(errs...)
}

// parseError decodes an NLMSG_ERROR payload: the errno and the extended
// ack message.
func parseError(p []byte, flags uint16) (syscall.Errno, string) {
	if len(p) < 4 {
		return 0, ""
	}
	code := int32(binary.NativeEndian.Uint32(p[0:4]))
	if code == 0 {
		return 0, ""
	}
	errno := syscall.Errno(-code)
	const capped, tlvs = 0x100, 0x200
	if flags&tlvs == 0 || len(p) < 4+nlmsgHdrLen {
		return errno, ""
	}
	off := 4 + nlmsgHdrLen
	if flags&capped == 0 {
		off = 4 + int(binary.NativeEndian.Uint32(p[4:8]))
	}
	if off > len(p) {
		return errno, ""
	}
	attrs, err := ParseAttrs(p[off:])
	if err != nil {
		return errno, ""
	}
	if a, ok := Find(attrs, 1); ok { // NLMSGERR_ATTR_MSG
		return errno, Str(a.Data)
	}
	return errno, ""
}

func forEachMsg(b []byte, fn func(typ, flags uint16, seq uint32, payload []byte) error) error {
	for len(b) >= nlmsgHdrLen {
		l := int(binary.NativeEndian.Uint32(b[0:4]))
		if l < nlmsgHdrLen || l > len(b) {
			return fmt.Errorf("netlink message: bad length %d", l)
		}
		typ := binary.NativeEndian.Uint16(b[4:6])
		flags := binary.NativeEndian.Uint16(b[6:8])
		seq := binary.NativeEndian.Uint32(b[8:12])
		if err := fn(typ, flags, seq, b[nlmsgHdrLen:l]); err != nil {
			return err
		}
		if align(l) >= len(b) {
			break
		}
		b = b[align(l):]
	}
	return nil
}

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

func (c *Conn) dumpOnce(msgType uint16, family uint8, attrs []byte) ([]Msg, error) {
	c.seq++
	seq := c.seq
	req := appendMsg(nil, SubsysNFTables<<8|msgType, flagRequest|flagDump, seq, family, 0, attrs)
	if err := unix.Sendto(c.fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("send dump request: %w", err)
	}
	var out []Msg
	interrupted := false
	for {
		n, _, err := unix.Recvfrom(c.fd, c.rx, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read dump: %w", err)
		}
		done := false
		err = forEachMsg(c.rx[:n], func(typ, flags uint16, s uint32, payload []byte) error {
			if s != seq {
				return nil // a late reply to an earlier request
			}
			if flags&flagDumpIntr != 0 {
				interrupted = true
			}
			switch typ {
			case nlmsgDone:
				done = true
				return nil
			case nlmsgError:
				if errno, detail := parseError(payload, flags); errno != 0 {
					return &Error{Desc: "dump", Errno: errno, Detail: detail}
				}
				done = true
				return nil
			}
			if len(payload) < nfgenHdrLen {
				return fmt.Errorf("short nf_tables message")
			}
			// Copy: the receive buffer is reused.
			p := make([]byte, len(payload)-nfgenHdrLen)
			copy(p, payload[nfgenHdrLen:])
			as, err := ParseAttrs(p)
			if err != nil {
				return err
			}
			out = append(out, Msg{Type: typ & 0xff, Family: payload[0], Attrs: as})
			return nil
		})
		if err != nil {
			return nil, err
		}
		if done {
			break
		}
	}
	if interrupted {
		return nil, ErrDumpInterrupted
	}
	return out, nil
}

// GenID returns the ruleset generation, which every committed transaction
// increments.
func (c *Conn) GenID() (uint32, error) {
	c.seq++
	seq := c.seq
	req := appendMsg(nil, SubsysNFTables<<8|MsgGetGen, flagRequest, seq, unix.AF_UNSPEC, 0, nil)
	if err := unix.Sendto(c.fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, fmt.Errorf("send getgen: %w", err)
	}
	for {
		n, _, err := unix.Recvfrom(c.fd, c.rx, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("read getgen: %w", err)
		}
		var gen uint32
		found := false
		err = forEachMsg(c.rx[:n], func(typ, flags uint16, s uint32, payload []byte) error {
			if s != seq {
				return nil
			}
			if typ == nlmsgError {
				if errno, _ := parseError(payload, flags); errno != 0 {
					return fmt.Errorf("getgen: %w", errno)
				}
				return nil
			}
			if len(payload) < nfgenHdrLen {
				return nil
			}
			as, err := ParseAttrs(payload[nfgenHdrLen:])
			if err != nil {
				return err
			}
			if a, ok := Find(as, GenID); ok {
				gen, found = U32(a.Data), true
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
		if found {
			return gen, nil
		}
	}
}
