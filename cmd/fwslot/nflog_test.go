package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/fwslot/fwslot/internal/nsutil"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// nfnetlink_log (NFNL_SUBSYS_ULOG) constants, from linux/netfilter/nfnetlink_log.h.
const (
	nfnlSubsysULOG     = 4
	nfulnlMsgPacket    = 0
	nfulnlMsgConfig    = 1
	nfulaCfgCmd        = 1
	nfulaCfgMode       = 2
	nfulnlCfgCmdBind   = 1
	nfulnlCopyPacket   = 2
	nfulaIfindexIndev  = 4
	nfulaIfindexOutdev = 5
	nfulaPayload       = 9
	nfulaPrefix        = 10
)

// nflogRecord is one packet the kernel passed to an nflog group.
type nflogRecord struct {
	prefix  string
	in, out string // interface names in the namespace
	payload []byte // from the network header
}

// nflogGroup binds nflog group to a socket opened in namespace ns, so
// `log group N` records of that namespace come to the test, without the
// kernel log (the root namespace's nf_log_all_netns is never touched).
func nflogGroup(t *testing.T, ns string, group uint16) *netlink.Conn {
	t.Helper()
	var c *netlink.Conn
	err := nsutil.Do(ns, func() error {
		var err error
		c, err = netlink.Dial(unix.NETLINK_NETFILTER, nil)
		return err
	})
	if err != nil {
		t.Fatalf("nflog socket in %s: %v", ns, err)
	}
	t.Cleanup(func() { c.Close() })
	cfg := func(attrs []byte) {
		t.Helper()
		hdr := []byte{unix.AF_UNSPEC, 0, 0, 0}
		binary.BigEndian.PutUint16(hdr[2:], group)
		_, err := c.Execute(netlink.Message{
			Header: netlink.Header{Type: netlink.HeaderType(nfnlSubsysULOG<<8 | nfulnlMsgConfig), Flags: netlink.Request | netlink.Acknowledge},
			Data:   append(hdr, attrs...),
		})
		if err != nil {
			t.Fatalf("nflog config group %d: %v", group, err)
		}
	}
	ae := netlink.NewAttributeEncoder()
	ae.Bytes(nfulaCfgCmd, []byte{nfulnlCfgCmdBind})
	b, err := ae.Encode()
	if err != nil {
		t.Fatal(err)
	}
	cfg(b)
	mode := make([]byte, 6) // struct nfulnl_msg_config_mode (packed)
	binary.BigEndian.PutUint32(mode, 0xffff)
	mode[4] = nfulnlCopyPacket
	ae = netlink.NewAttributeEncoder()
	ae.Bytes(nfulaCfgMode, mode)
	if b, err = ae.Encode(); err != nil {
		t.Fatal(err)
	}
	cfg(b)
	return c
}

// nflogNext receives the next record; the deadline only keeps a broken
// test from hanging.
func nflogNext(t *testing.T, c *netlink.Conn, ns string) nflogRecord {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	for {
		msgs, err := c.Receive()
		if err != nil {
			t.Fatalf("nflog receive: %v", err)
		}
		for _, m := range msgs {
			if m.Header.Type != netlink.HeaderType(nfnlSubsysULOG<<8|nfulnlMsgPacket) || len(m.Data) < 4 {
				continue
			}
			var r nflogRecord
			ad, err := netlink.NewAttributeDecoder(m.Data[4:])
			if err != nil {
				t.Fatal(err)
			}
			ad.ByteOrder = binary.BigEndian
			for ad.Next() {
				switch ad.Type() {
				case nfulaPrefix:
					r.prefix = ad.String()
				case nfulaPayload:
					r.payload = ad.Bytes()
				case nfulaIfindexIndev:
					r.in = ifName(t, ns, ad.Uint32())
				case nfulaIfindexOutdev:
					r.out = ifName(t, ns, ad.Uint32())
				}
			}
			if err := ad.Err(); err != nil {
				t.Fatal(err)
			}
			return r
		}
	}
}

func ifName(t *testing.T, ns string, index uint32) string {
	t.Helper()
	var name string
	err := nsutil.Do(ns, func() error {
		ifc, err := net.InterfaceByIndex(int(index))
		if err != nil {
			return err
		}
		name = ifc.Name
		return nil
	})
	if err != nil {
		t.Fatalf("ifindex %d in %s: %v", index, ns, err)
	}
	return name
}

// kernelLogLine formats a record the way nf_log_syslog writes its line
// (net/netfilter/nf_log_syslog.c): prefix, IN=/OUT=, the IP header, then
// the transport header.
func kernelLogLine(r nflogRecord) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "%sIN=%s OUT=%s ", r.prefix, r.in, r.out)
	p := r.payload
	if len(p) < 1 {
		return "", errors.New("empty payload")
	}
	var proto byte
	var th []byte
	switch p[0] >> 4 {
	case 4:
		if len(p) < 20 {
			return "", errors.New("short IPv4 header")
		}
		ihl := int(p[0]&0xf) * 4
		src, _ := netip.AddrFromSlice(p[12:16])
		dst, _ := netip.AddrFromSlice(p[16:20])
		fmt.Fprintf(&b, "SRC=%s DST=%s LEN=%d TOS=0x%02X PREC=0x%02X TTL=%d ID=%d ", src, dst,
			binary.BigEndian.Uint16(p[2:]), p[1]&0x1e, p[1]&0xe0, p[8], binary.BigEndian.Uint16(p[4:]))
		if binary.BigEndian.Uint16(p[6:])&0x4000 != 0 {
			b.WriteString("DF ")
		}
		proto, th = p[9], p[ihl:]
	case 6:
		if len(p) < 40 {
			return "", errors.New("short IPv6 header")
		}
		src, _ := netip.AddrFromSlice(p[8:24])
		dst, _ := netip.AddrFromSlice(p[24:40])
		v := binary.BigEndian.Uint32(p)
		fmt.Fprintf(&b, "SRC=%s DST=%s LEN=%d TC=%d HOPLIMIT=%d FLOWLBL=%d ", src, dst,
			int(binary.BigEndian.Uint16(p[4:]))+40, (v>>20)&0xff, p[7], v&0xfffff)
		proto, th = p[6], p[40:]
	default:
		return "", fmt.Errorf("IP version %d", p[0]>>4)
	}
	switch proto {
	case unix.IPPROTO_TCP:
		if len(th) < 20 {
			return "", errors.New("short tcp header")
		}
		fmt.Fprintf(&b, "PROTO=TCP SPT=%d DPT=%d WINDOW=%d RES=0x%02x ", binary.BigEndian.Uint16(th), binary.BigEndian.Uint16(th[2:]),
			binary.BigEndian.Uint16(th[14:]), th[12]&0x0f)
		for i, f := range []string{"CWR", "ECE", "URG", "ACK", "PSH", "RST", "SYN", "FIN"} {
			if th[13]&(0x80>>i) != 0 {
				b.WriteString(f + " ")
			}
		}
		fmt.Fprintf(&b, "URGP=%d ", binary.BigEndian.Uint16(th[18:]))
	case unix.IPPROTO_UDP:
		if len(th) < 8 {
			return "", errors.New("short udp header")
		}
		fmt.Fprintf(&b, "PROTO=UDP SPT=%d DPT=%d LEN=%d ", binary.BigEndian.Uint16(th), binary.BigEndian.Uint16(th[2:]), binary.BigEndian.Uint16(th[4:]))
	case unix.IPPROTO_ICMP, unix.IPPROTO_ICMPV6:
		if len(th) < 4 {
			return "", errors.New("short icmp header")
		}
		name := "ICMP"
		if proto == unix.IPPROTO_ICMPV6 {
			name = "ICMPv6"
		}
		fmt.Fprintf(&b, "PROTO=%s TYPE=%d CODE=%d ", name, th[0], th[1])
		if len(th) >= 8 && (th[0] == 8 || th[0] == 0 || th[0] == 128 || th[0] == 129) {
			fmt.Fprintf(&b, "ID=%d SEQ=%d ", binary.BigEndian.Uint16(th[4:]), binary.BigEndian.Uint16(th[6:]))
		}
	default:
		fmt.Fprintf(&b, "PROTO=%d ", proto)
	}
	return b.String(), nil
}

// sendEcho sends one echo request from ns to addr over a raw socket (the
// kernel fills in the ICMPv6 checksum; the ICMP one is computed here).
func sendEcho(t *testing.T, ns, addr string) {
	t.Helper()
	a := netip.MustParseAddr(addr)
	network, msg := "ip4:icmp", []byte{8, 0, 0, 0, 0x12, 0x34, 0, 1, 'f', 'w'}
	if a.Is6() {
		network, msg = "ip6:ipv6-icmp", []byte{128, 0, 0, 0, 0x12, 0x34, 0, 1, 'f', 'w'}
	} else {
		var sum uint32
		for i := 0; i < len(msg); i += 2 {
			sum += uint32(msg[i])<<8 | uint32(msg[i+1])
		}
		for sum > 0xffff {
			sum = sum>>16 + sum&0xffff
		}
		binary.BigEndian.PutUint16(msg[2:], ^uint16(sum))
	}
	err := nsutil.Do(ns, func() error {
		c, err := net.ListenPacket(network, "")
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.WriteTo(msg, &net.IPAddr{IP: a.AsSlice()})
		return err
	})
	if err != nil {
		t.Fatalf("echo request from %s to %s: %v", ns, addr, err)
	}
}
