package probe

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/fwslot/fwslot/internal/nsutil"
)

// Netlink constants that x/sys/unix does not name.
const (
	nfnlgrpNFTrace  = 9  // NFNLGRP_NFTRACE
	nfnlSubsysCT    = 1  // NFNL_SUBSYS_CTNETLINK
	nfnlSubsysNFT   = 10 // NFNL_SUBSYS_NFTABLES
	nftMsgTrace     = 17 // NFT_MSG_TRACE
	ipctnlMsgCTNew  = 0
	ipctnlMsgCTDel  = 2
	ipv6HdrIncl     = 36 // IPV6_HDRINCL
	traceRcvBufSize = 16 << 20
)

// sockets are the file descriptors a twin keeps open for probing. Each was
// created inside its namespace and stays bound to it.
type sockets struct {
	trace int           // nfnetlink socket joined to NFNLGRP_NFTRACE in the twin
	ct    int           // ctnetlink socket in the twin
	raw4  map[uint8]int // AF_INET raw receive sockets by protocol (local delivery)
	raw6  map[uint8]int // AF_INET6 raw receive sockets by protocol
	send4 int           // AF_INET IPPROTO_RAW socket for `out` probes
	send6 int           // AF_INET6 IPPROTO_RAW socket for `out` probes
	mark4 uint32        // current SO_MARK of send4
	mark6 uint32        // current SO_MARK of send6
	ctSeq uint32        // ctnetlink sequence numbers
	buf   []byte        // receive buffer
	oob   []byte        // control message buffer
	all   []int         // every fd, for close
}

// probeProtos are the protocols the twin opens raw receive sockets for up
// front; others are opened when a probe names them (ensureProto).
var probeProtos = []uint8{6, 17, 1, 58, 132, 2, 47, 50, 51}

// ensureProto opens raw receive sockets in namespace ns for a protocol that
// has none yet, so local delivery of a probe of that protocol is seen.
func (s *sockets) ensureProto(ns netns.NsHandle, p uint8) error {
	if _, ok := s.raw4[p]; ok || p == 1 || p == 58 {
		return nil
	}
	return nsutil.DoHandle(ns, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(p))
		if err != nil {
			return fmt.Errorf("raw IPv4 socket for protocol %d: %w", p, err)
		}
		s.raw4[p] = s.add(fd)
		if fd, err = unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(p)); err != nil {
			return fmt.Errorf("raw IPv6 socket for protocol %d: %w", p, err)
		}
		s.raw6[p] = s.add(fd)
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1); err != nil {
			return fmt.Errorf("IPV6_RECVPKTINFO: %w", err)
		}
		return nil
	})
}

func (s *sockets) add(fd int) int { s.all = append(s.all, fd); return fd }

func (s *sockets) close() {
	for _, fd := range s.all {
		unix.Close(fd)
	}
	s.all = nil
}

func openSockets(tw *Twin) (s *sockets, err error) {
	s = &sockets{trace: -1, ct: -1, send4: -1, send6: -1, raw4: map[uint8]int{}, raw6: map[uint8]int{},
		buf: make([]byte, 1<<16), oob: make([]byte, 512)}
	defer func() {
		if err != nil {
			s.close()
			s = nil
		}
	}()
	err = nsutil.DoHandle(tw.ns, func() error {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
		if err != nil {
			return fmt.Errorf("trace netlink socket: %w", err)
		}
		s.trace = s.add(fd)
		if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			return fmt.Errorf("bind trace socket: %w", err)
		}
		// SO_RCVBUFFORCE needs CAP_NET_ADMIN on the host; inside a user
		// namespace (rootless CI) the buffer is capped by rmem_max.
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, traceRcvBufSize); err != nil {
			if !errors.Is(err, unix.EPERM) {
				return fmt.Errorf("trace socket buffer: %w", err)
			}
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, traceRcvBufSize); err != nil {
				return fmt.Errorf("trace socket buffer: %w", err)
			}
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_ADD_MEMBERSHIP, nfnlgrpNFTrace); err != nil {
			return fmt.Errorf("join NFNLGRP_NFTRACE: %w", err)
		}
		if fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER); err != nil {
			return fmt.Errorf("conntrack netlink socket: %w", err)
		}
		s.ct = s.add(fd)
		if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			return fmt.Errorf("bind conntrack socket: %w", err)
		}
		tv := unix.Timeval{Sec: 2}
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return fmt.Errorf("conntrack socket timeout: %w", err)
		}
		for _, p := range probeProtos {
			if p != 58 {
				fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(p))
				if err != nil {
					return fmt.Errorf("raw IPv4 socket for protocol %d: %w", p, err)
				}
				s.raw4[p] = s.add(fd)
			}
			if p != 1 {
				fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(p))
				if err != nil {
					return fmt.Errorf("raw IPv6 socket for protocol %d: %w", p, err)
				}
				s.raw6[p] = s.add(fd)
				if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1); err != nil {
					return fmt.Errorf("IPV6_RECVPKTINFO: %w", err)
				}
			}
		}
		if fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW); err != nil {
			return fmt.Errorf("raw IPv4 send socket: %w", err)
		}
		s.send4 = s.add(fd)
		if fd, err = unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW); err != nil {
			return fmt.Errorf("raw IPv6 send socket: %w", err)
		}
		s.send6 = s.add(fd)
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, ipv6HdrIncl, 1)
		for _, ti := range tw.ifaces {
			ifc, err := net.InterfaceByName(ti.Name)
			if err != nil {
				return fmt.Errorf("twin interface %s: %w", ti.Name, err)
			}
			ti.twinIndex = ifc.Index
		}
		return nil
	})
	if err != nil {
		return s, err
	}
	for _, ti := range tw.ifaces {
		err := nsutil.DoHandle(ti.peerNS, func() error {
			if err := setLinkUp(ti.peerName); err != nil {
				return err
			}
			ifc, err := net.InterfaceByName(ti.peerName)
			if err != nil {
				return fmt.Errorf("peer interface: %w", err)
			}
			ti.peerIndex = ifc.Index
			fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
			if err != nil {
				return fmt.Errorf("packet socket: %w", err)
			}
			ti.capFD = fd
			if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifc.Index}); err != nil {
				return fmt.Errorf("bind packet socket: %w", err)
			}
			return nil
		})
		if err != nil {
			return s, fmt.Errorf("peer of %s: %w", ti.Name, err)
		}
	}
	return s, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// setLinkUp sets an interface up in the calling thread's namespace.
func setLinkUp(name string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket for %s: %w", name, err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("get %s flags: %w", name, err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("set %s up: %w", name, err)
	}
	return nil
}

// setMark sets SO_MARK on a send socket when it differs from the current one.
func setMark(fd int, cur *uint32, mark uint32) error {
	if *cur == mark {
		return nil
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, int(mark)); err != nil {
		return fmt.Errorf("SO_MARK %d: %w", mark, err)
	}
	*cur = mark
	return nil
}

// errAgain reports whether a non-blocking read found nothing.
func errAgain(err error) bool {
	return errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EWOULDBLOCK)
}
