package slots

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Parsers of the element words of the types the fast path encodes
// (fastelems.go): each returns the bytes nft puts in the key.

func parseV4(w string) ([]byte, error) {
	a, err := netip.ParseAddr(w)
	if err != nil || !a.Is4() {
		return nil, fmt.Errorf("not an IPv4 address: %q", w)
	}
	b := a.As4()
	return b[:], nil
}

func parseV6(w string) ([]byte, error) {
	a, err := netip.ParseAddr(w)
	if err != nil || !a.Is6() || a.Zone() != "" {
		return nil, fmt.Errorf("not an IPv6 address: %q", w)
	}
	b := a.As16()
	return b[:], nil
}

// prefixSpan parses an address prefix into its first and last address;
// nft accepts host bits set (it masks them).
func prefixSpan(v4 bool) func(string) ([]byte, []byte, bool) {
	return func(w string) ([]byte, []byte, bool) {
		if !strings.Contains(w, "/") {
			return nil, nil, false
		}
		p, err := netip.ParsePrefix(w)
		if err != nil || p.Addr().Is4() != v4 || p.Addr().Zone() != "" {
			return nil, nil, false
		}
		p = p.Masked()
		lo := p.Addr().AsSlice()
		hi := append([]byte(nil), lo...)
		for i := p.Bits(); i < len(hi)*8; i++ {
			hi[i/8] |= 0x80 >> (i % 8)
		}
		return lo, hi, true
	}
}

// parseUint parses a decimal or 0x number of n big-endian bytes.
func parseUint(n int) func(string) ([]byte, error) {
	return func(w string) ([]byte, error) {
		v, err := strconv.ParseUint(w, 0, n*8)
		if err != nil || strings.HasPrefix(w, "0") && len(w) > 1 && !strings.HasPrefix(w, "0x") {
			return nil, fmt.Errorf("not a number of %d bytes: %q", n, w)
		}
		b := make([]byte, 8)
		binary.BigEndian.PutUint64(b, v)
		return b[8-n:], nil
	}
}

var protoNames = map[string]byte{"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58, "sctp": 132, "gre": 47, "esp": 50, "ah": 51}

func parseProto(w string) ([]byte, error) {
	if p, ok := protoNames[w]; ok {
		return []byte{p}, nil
	}
	return parseUint(1)(w)
}

func parseMark(w string) ([]byte, error) {
	b, err := parseUint(4)(w)
	if err != nil {
		return nil, err
	}
	return []byte{b[3], b[2], b[1], b[0]}, nil
}

func parseEther(w string) ([]byte, error) {
	hw, err := net.ParseMAC(w)
	if err != nil || len(hw) != 6 || strings.Count(w, ":") != 5 {
		return nil, fmt.Errorf("not an Ethernet address: %q", w)
	}
	return hw, nil
}

// parseIfname parses an interface name, quoted or not; a wildcard
// ("eth*") is left to nft.
func parseIfname(w string) ([]byte, error) {
	s := w
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	if s == "" || len(s) >= 16 || strings.ContainsAny(s, "*\\ \"") || !plainName(s) {
		return nil, fmt.Errorf("interface name %q", w)
	}
	return padTo([]byte(s), 16), nil
}
