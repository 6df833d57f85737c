// Package nfnl is fwslot's small nf_tables netlink client: it sends batches
// of raw messages as one transaction and dumps kernel objects as raw
// attributes. It keeps bytes as the kernel sent them, so that nothing is
// lost when objects are copied between namespaces (google/nftables drops
// expressions it does not know).
//
// It is built on github.com/mdlayher/netlink, the netlink library
// google/nftables uses: the library opens the socket (inside a named
// namespace through Config.NetNS), binds it, forces its buffers, sets the
// extended-ack options, and its Message, Header and AttributeDecoder types
// frame and decode what the kernel sends. What stays here is what
// nf_tables needs on top of it, each with its reason where it is: the
// socket is taken out of the runtime's poller (detach) and read and
// written with plain system calls (io.go), a batch is one sendmsg that is
// never copied (batch.go), and rule expressions keep their raw attribute
// model (attr.go).
package nfnl

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/fwslot/fwslot/internal/nsutil"
	"github.com/mdlayher/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// bufSize is the socket buffer size forced on every connection. Large
// batches fail with "message too long" on default buffers, and large dumps
// arrive faster with a large receive buffer.
const bufSize = 256 << 20

// rxSize is the buffer every recvmsg reads into. The kernel sizes dump
// batches from the largest buffer a socket has read with, capped at 32 KB,
// so every read offers more than that. The largest other reply is an error
// that echoes a rejected batch message (rules and element lists stay under
// 64 KB) where the kernel lacks capped acks. A larger reply is refused,
// never truncated. (It was 1 MB: allocating that on every Dial cost about
// 0.5 ms, measured.)
const rxSize = 128 << 10

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
	// f is the socket mdlayher/netlink opened, taken out of the runtime
	// poller (see detach); raw is its raw conn, for reads and writes.
	f   *os.File
	raw syscall.RawConn
	seq uint32
	rx  []byte
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

// DialHandle opens a connection in the namespace an open handle refers to
// (an anonymous one, from nsutil.NewAnon, has no name to Dial).
func DialHandle(h netns.NsHandle) (*Conn, error) {
	if !h.IsOpen() {
		return nil, errors.New("netlink: closed network namespace handle")
	}
	c, err := dial(int(h))
	if err != nil {
		return nil, fmt.Errorf("netlink in netns: %w", err)
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
	nl, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: nsfd})
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	if err := setup(nl); err != nil {
		_ = nl.Close()
		return nil, err
	}
	f, err := detach(nl)
	if err != nil {
		return nil, err
	}
	raw, err := f.SyscallConn()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("netlink raw socket: %w", err)
	}
	return &Conn{f: f, raw: raw, seq: 1, rx: make([]byte, rxSize)}, nil
}

func setup(nl *netlink.Conn) error {
	// Both try SO_*BUFFORCE first (every caller has CAP_NET_ADMIN) and
	// fall back to the capped variants, so an unprivileged read works.
	if err := nl.SetWriteBuffer(bufSize); err != nil {
		return fmt.Errorf("netlink send buffer: %w", err)
	}
	if err := nl.SetReadBuffer(bufSize); err != nil {
		return fmt.Errorf("netlink receive buffer: %w", err)
	}
	// Extended acks give the kernel's reason with an error; capped acks
	// keep it from echoing a rejected message (up to 64 KB) back. Both
	// only improve errors, so a kernel without them is no reason to fail.
	_ = nl.SetOption(netlink.ExtendedAcknowledge, true)
	_ = nl.SetOption(netlink.CapAcknowledge, true)
	return nil
}

// detach takes the library's socket out of the Go runtime's poller: it
// duplicates the descriptor, closes the library's (which removes the
// socket from the runtime's epoll set; the duplicate keeps the socket
// open) and makes the duplicate blocking, as the hand-made socket before
// it was. In the poller every reply the kernel queues wakes the netpoller
// of an idle P: reading back a compiled 50k-rule ruleset (some 2000 small
// dumps) took 175-199 ms instead of 169-182 ms, measured in interleaved
// runs; nf_tables answers every request within the request's own system
// calls, so blocking reads never wait for long.
func detach(nl *netlink.Conn) (*os.File, error) {
	rc, err := nl.SyscallConn()
	if err != nil {
		_ = nl.Close()
		return nil, fmt.Errorf("netlink raw socket: %w", err)
	}
	fd, dupErr := -1, error(nil)
	if err := rc.Control(func(s uintptr) { fd, dupErr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		_ = nl.Close()
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	if dupErr != nil {
		_ = nl.Close()
		return nil, fmt.Errorf("duplicate netlink socket: %w", dupErr)
	}
	if err := nl.Close(); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	// A blocking descriptor: os.NewFile leaves it out of the poller.
	return os.NewFile(uintptr(fd), "netlink"), nil
}

// Close closes the socket.
func (c *Conn) Close() error { return c.f.Close() }

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
