package probe

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// frameTo wraps pkt in the Ethernet frame the peer of in sends to the
// twin, and returns it with the link-layer address to send it to.
func frameTo(in *twinIface, p Probe, pkt []byte) ([]byte, *unix.SockaddrLinklayer) {
	ethType := uint16(unix.ETH_P_IP)
	if p.is6() {
		ethType = unix.ETH_P_IPV6
	}
	frame := make([]byte, 14, 14+len(pkt))
	copy(frame[0:], frameDst(p.Dst.Addr, in.twinMAC))
	copy(frame[6:], in.peerMAC)
	frame[12], frame[13] = byte(ethType>>8), byte(ethType)
	sa := &unix.SockaddrLinklayer{Ifindex: in.peerIndex, Protocol: htons(ethType), Halen: 6}
	copy(sa.Addr[:], in.twinMAC)
	return append(frame, pkt...), sa
}

// send puts one probe packet on its way: injected at the peer of in (an
// Ethernet frame to the twin), or sent from the twin's raw socket.
func (tw *Twin) send(in *twinIface, p Probe, pkt []byte) error {
	s := tw.sock
	if in != nil {
		frame, sa := frameTo(in, p, pkt)
		if err := unix.Sendto(in.capFD, frame, 0, sa); err != nil {
			return fmt.Errorf("inject probe at %s: %w", p.In, err)
		}
		return nil
	}
	var err error
	if p.is6() {
		if err = setMark(s.send6, &s.mark6, p.Mark); err == nil {
			err = unix.Sendto(s.send6, pkt, 0, &unix.SockaddrInet6{Addr: p.Dst.Addr.As16()})
		}
	} else {
		if err = setMark(s.send4, &s.mark4, p.Mark); err == nil {
			err = unix.Sendto(s.send4, pkt, 0, &unix.SockaddrInet4{Addr: p.Dst.Addr.As4()})
		}
	}
	// EPERM is netfilter dropping the packet in the output path: a
	// result, not a failure; the trace tells the rest.
	if err != nil && !errors.Is(err, unix.EPERM) {
		return fmt.Errorf("send probe from the twin: %w", err)
	}
	return nil
}
