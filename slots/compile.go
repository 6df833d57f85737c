package slots

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/fwslot/fwslot/internal/nfnl"
	"github.com/fwslot/fwslot/internal/nsutil"
	"github.com/vishvananda/netlink"
)

// Iface is a network interface that rulesets may name (iif, oif, netdev
// chains, flowtables).
type Iface struct {
	Name  string
	Index int
	// Addrs are its addresses (global scope), for probe twins that
	// mirror the target.
	Addrs []netip.Prefix
}

// CompileError is nft's own rejection of a ruleset file, with file:line:col.
type CompileError struct {
	File   string
	Output string
}

func (e *CompileError) Error() string {
	return fmt.Sprintf("nft rejected %s:\n%s", e.File, strings.TrimRight(e.Output, "\n"))
}

// NftBinary is the nft compiler fwslot runs; tests may point it elsewhere.
const NftBinary = "nft"

// Interfaces lists the interfaces of the named namespace ("" = current).
func Interfaces(netns string) ([]Iface, error) {
	var out []Iface
	err := nsutil.Do(netns, func() error {
		links, err := netlink.LinkList()
		if err != nil {
			return fmt.Errorf("list interfaces: %w", err)
		}
		for _, l := range links {
			a := l.Attrs()
			i := Iface{Name: a.Name, Index: a.Index}
			addrs, err := netlink.AddrList(l, netlink.FAMILY_ALL)
			if err != nil {
				return fmt.Errorf("list addresses of %s: %w", a.Name, err)
			}
			for _, ad := range addrs {
				if ad.Scope != int(netlink.SCOPE_UNIVERSE) || ad.IPNet == nil {
					continue
				}
				ip, ok := netip.AddrFromSlice(ad.IP)
				if !ok {
					continue
				}
				ones, _ := ad.Mask.Size()
				i.Addrs = append(i.Addrs, netip.PrefixFrom(ip.Unmap(), ones))
			}
			out = append(out, i)
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out, err
}

// Compile runs `nft -f file` in a private network namespace that has the
// given interfaces with the same names and indexes, and reads back what
// nft built. A file nft rejects returns a *CompileError; nothing outside
// the private namespace changes, whatever the file says (`flush ruleset`
// included).
func Compile(ctx context.Context, file string, ifaces []Iface) (*Ruleset, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, err
	}
	nft, err := exec.LookPath(NftBinary)
	if err != nil {
		return nil, fmt.Errorf("the nft binary is needed to compile rulesets (apt-get install nftables): %w", err)
	}
	var rs *Ruleset
	err = nsutil.DoFresh(func() error {
		for _, i := range ifaces {
			if i.Name == "lo" {
				continue
			}
			// ifb: the dummy driver is not in every kernel; ifb is a plain
			// device that netdev hooks and flowtables accept.
			d := &netlink.Ifb{LinkAttrs: netlink.LinkAttrs{Name: i.Name, Index: i.Index}}
			if err := netlink.LinkAdd(d); err != nil {
				return fmt.Errorf("mirror interface %s (index %d) in the compile namespace: %w", i.Name, i.Index, err)
			}
		}
		dir := filepath.Dir(abs)
		ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, nft, "-I", dir, "-f", abs)
		cmd.Dir = dir
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		cmd.Stdout = &stderr
		if err := cmd.Run(); err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return &CompileError{File: file, Output: stderr.String()}
			}
			return fmt.Errorf("run nft: %w", err)
		}
		c, err := nfnl.DialHere()
		if err != nil {
			return err
		}
		defer c.Close()
		rs, err = ReadTables(c, nil)
		return err
	})
	if err != nil {
		return nil, err
	}
	rs.Ifaces = ifaces
	if len(rs.Tables) == 0 {
		return nil, &CompileError{File: file, Output: "the ruleset declares no table; fwslot manages tables (table inet filter { ... })"}
	}
	for _, t := range rs.Tables {
		if err := checkReserved(t); err != nil {
			return nil, &CompileError{File: file, Output: err.Error()}
		}
	}
	return rs, nil
}
