// Package nfnl is fwslot's small nf_tables netlink client: it sends batches
// of raw messages as one transaction and dumps kernel objects as raw
// attributes. It keeps bytes as the kernel sent them, so that nothing is
// lost when objects are copied between namespaces (google/nftables drops
// expressions it does not know).
//
// The socket, namespace entry, request/reply framing, multi-part dumps and
// the decoding of kernel errors (extended acks included) are
// github.com/mdlayher/netlink, the netlink library google/nftables is built
// on. What stays here is what nf_tables needs on top of it: batches sent
// as one sendmsg without copying them (batch.go), the raw attribute model
// (attr.go) and the dump consistency check (dump.go).
package nfnl

import (
	"encoding/binary"
	"fmt"
	"syscall"

	"github.com/fwslot/fwslot/internal/nsutil"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// bufSize is the socket buffer size forced on every connection. Large
// batches fail with "message too long" on default buffers, and large dumps
// arrive faster with a large receive buffer.
const bufSize = 256 << 20

// rxSize is the buffer every recvmsg reads into. The kernel sizes dump
// batches from the largest buffer a socket has read with (capped at 32 KB);
// mdlayher/netlink by default peeks at each message and reads it with a
// buffer of exactly its size, which keeps the kernel's batches at one page
// and makes big rule dumps several times slower. A fixed large buffer
// (Config.MessageBufferSize) keeps them at the maximum.
const rxSize = 1 << 20

const nfgenHdrLen = 4

// Message flags of nf_tables requests (include/uapi/linux/netlink.h).
const (
	// FlagReplace replaces an existing object (NLM_F_REPLACE).
	FlagReplace = uint16(netlink.Replace)
	// FlagExcl fails when the object exists (NLM_F_EXCL).
	FlagExcl = uint16(netlink.Excl)
	// FlagCreate creates the object (NLM_F_CREATE).
	FlagCreate = uint16(netlink.Create)
	// FlagAppend appends a rule at the end of its chain (NLM_F_APPEND).
	FlagAppend = uint16(netlink.Append)
)

// Conn is a netlink socket bound to the nf_tables subsystem of one network
// namespace. It is not safe for concurrent use.
type Conn struct {
	nl *netlink.Conn
	// raw is the same socket, for the one thing mdlayher/netlink cannot
	// do without copying: sending a batch of several buffers in one
	// sendmsg (see Commit).
	raw syscall.RawConn
	// afterRequest, when set (by tests), runs between sending a dump
	// request and reading its replies.
	afterRequest func()
}

// Dial opens a connection in the named network namespace ("" for the
// namespace of the calling thread).
func Dial(netns string) (*Conn, error) {
	if netns == "" {
		return dial(0)
	}
	h, err := nsutil.Open(netns)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	c, err := dial(int(h))
	if err != nil {
		return nil, fmt.Errorf("netlink in netns %s: %w", netns, err)
	}
	return c, nil
}

// DialHere opens a connection in the calling thread's current namespace;
// use it inside nsutil.Do or nsutil.DoFresh.
func DialHere() (*Conn, error) { return dial(0) }

// dial opens the socket; nsfd 0 means the calling thread's namespace,
// otherwise mdlayher/netlink creates it inside the namespace nsfd refers to
// on a locked thread of its own.
func dial(nsfd int) (*Conn, error) {
	nl, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: nsfd, MessageBufferSize: rxSize})
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	c := &Conn{nl: nl}
	if err := c.setup(); err != nil {
		_ = nl.Close()
		return nil, err
	}
	return c, nil
}

func (c *Conn) setup() error {
	// Both try SO_*BUFFORCE first (every caller has CAP_NET_ADMIN) and
	// fall back to the capped variants, so an unprivileged read works.
	if err := c.nl.SetWriteBuffer(bufSize); err != nil {
		return fmt.Errorf("netlink send buffer: %w", err)
	}
	if err := c.nl.SetReadBuffer(bufSize); err != nil {
		return fmt.Errorf("netlink receive buffer: %w", err)
	}
	// Extended acks give the kernel's reason with an error; they only
	// improve errors, so a kernel without them is no reason to fail.
	// NETLINK_CAP_ACK (no echo of the rejected message) stays off:
	// mdlayher/netlink v1.11.2 ignores NLM_F_CAPPED and looks for the
	// extended ack after the full length of the message it was not sent,
	// so every error would decode as "not enough data". The echo costs
	// the size of one message (rxSize holds the largest) on errors only.
	_ = c.nl.SetOption(netlink.ExtendedAcknowledge, true)
	raw, err := c.nl.SyscallConn()
	if err != nil {
		return fmt.Errorf("netlink raw socket: %w", err)
	}
	c.raw = raw
	return nil
}

// Close closes the socket.
func (c *Conn) Close() error { return c.nl.Close() }

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

// Error is a message of a batch (or a request) that the kernel rejected.
type Error struct {
	// Desc names the message that failed.
	Desc string
	// Errno is the kernel's error.
	Errno syscall.Errno
	// Detail is the kernel's extended ack text, if any.
	Detail string
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%s: %v", e.Desc, e.Errno)
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}

func (e *Error) Unwrap() error { return e.Errno }

// kernelError returns the error the kernel sent in a reply, as decoded by
// mdlayher/netlink: an OpError that carries an errno (socket errors carry
// an *os.SyscallError instead).
func kernelError(err error) (*netlink.OpError, syscall.Errno, bool) {
	oe, ok := err.(*netlink.OpError)
	if !ok {
		return nil, 0, false
	}
	errno, ok := oe.Err.(syscall.Errno)
	return oe, errno, ok
}

// request returns an nf_tables request: the nfgenmsg header (family,
// version 0, resource id) followed by attrs.
func request(msgType uint16, flags netlink.HeaderFlags, family uint8, attrs []byte) netlink.Message {
	data := make([]byte, nfgenHdrLen+len(attrs))
	data[0] = family
	copy(data[nfgenHdrLen:], attrs)
	return netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(SubsysNFTables<<8 | msgType), Flags: netlink.Request | flags},
		Data:   data,
	}
}

// GenID returns the ruleset generation, which every committed transaction
// increments.
func (c *Conn) GenID() (uint32, error) {
	msgs, err := c.nl.Execute(request(MsgGetGen, 0, unix.AF_UNSPEC, nil))
	if err != nil {
		return 0, fmt.Errorf("getgen: %w", err)
	}
	for _, m := range msgs {
		if len(m.Data) < nfgenHdrLen || m.Header.Type != netlink.HeaderType(SubsysNFTables<<8|MsgNewGen) {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[nfgenHdrLen:])
		if err != nil {
			return 0, fmt.Errorf("getgen reply: %w", err)
		}
		ad.ByteOrder = binary.BigEndian // nf_tables integers
		for ad.Next() {
			if ad.Type() == GenID {
				return ad.Uint32(), nil
			}
		}
		if err := ad.Err(); err != nil {
			return 0, fmt.Errorf("getgen reply: %w", err)
		}
	}
	return 0, fmt.Errorf("getgen: no generation in the kernel's reply")
}
