package probe

import (
	"encoding/binary"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/fwslot/fwslot/internal/names"
	"github.com/fwslot/fwslot/internal/nfnl"
)

// traceTable is the table that turns tracing on for probe packets.
const traceTable = "fwslot_trace"

// NFTA_TRACE_* attribute numbers (linux/netfilter/nf_tables.h).
const (
	ntaTable     = 1
	ntaChain     = 2
	ntaHandle    = 3
	ntaType      = 4
	ntaVerdict   = 5
	ntaID        = 6
	ntaNetHeader = 8
	ntaTHeader   = 9
	ntaNFProto   = 15
	ntaPolicy    = 16

	nftaVerdictCode  = 1
	nftaVerdictChain = 2

	traceTypePolicy = 1
	traceTypeReturn = 2
	traceTypeRule   = 3
)

// traceEvent is one NFT_MSG_TRACE message.
type traceEvent struct {
	id      uint32
	family  uint8
	table   string
	chain   string
	handle  uint64
	typ     uint32
	verdict int32
	target  string
	nethdr  []byte
	thdr    []byte // the transport header's first bytes (up to 40)
	hasHdr  bool
	nfproto uint32
}

// readTrace reads every trace event queued on the socket without blocking.
func (s *sockets) readTrace(fn func(traceEvent)) error {
	for {
		n, _, err := unix.Recvfrom(s.trace, s.buf, unix.MSG_DONTWAIT)
		if err != nil {
			if errAgain(err) {
				return nil
			}
			if err == unix.ENOBUFS {
				return fmt.Errorf("trace events lost (socket buffer overrun)")
			}
			return fmt.Errorf("read trace events: %w", err)
		}
		b := s.buf[:n]
		for len(b) >= unix.SizeofNlMsghdr {
			l := int(binary.NativeEndian.Uint32(b[0:]))
			typ := binary.NativeEndian.Uint16(b[4:])
			if l < unix.SizeofNlMsghdr || l > len(b) {
				break
			}
			if typ == nfnlSubsysNFT<<8|nftMsgTrace && l >= unix.SizeofNlMsghdr+4 {
				fn(parseTraceEvent(b[unix.SizeofNlMsghdr:l]))
			}
			if nlAlign(l) >= len(b) {
				break
			}
			b = b[nlAlign(l):]
		}
	}
}

func nlAlign(n int) int { return (n + 3) &^ 3 }

// forEachAttr walks netlink attributes.
func forEachAttr(b []byte, fn func(typ uint16, data []byte)) {
	for len(b) >= 4 {
		l := int(binary.NativeEndian.Uint16(b[0:]))
		typ := binary.NativeEndian.Uint16(b[2:]) & 0x3fff
		if l < 4 || l > len(b) {
			return
		}
		fn(typ, b[4:l])
		if nlAlign(l) >= len(b) {
			return
		}
		b = b[nlAlign(l):]
	}
}

func cstring(b []byte) string {
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

func parseTraceEvent(b []byte) traceEvent {
	ev := traceEvent{family: b[0]}
	forEachAttr(b[4:], func(typ uint16, d []byte) {
		switch typ {
		case ntaTable:
			ev.table = cstring(d)
		case ntaChain:
			ev.chain = cstring(d)
		case ntaHandle:
			if len(d) == 8 {
				ev.handle = binary.BigEndian.Uint64(d)
			}
		case ntaType:
			if len(d) == 4 {
				ev.typ = binary.BigEndian.Uint32(d)
			}
		case ntaID:
			if len(d) == 4 {
				ev.id = binary.BigEndian.Uint32(d)
			}
		case ntaNetHeader:
			ev.nethdr = append([]byte(nil), d...)
			ev.hasHdr = true
		case ntaTHeader:
			ev.thdr = append([]byte(nil), d...)
		case ntaNFProto:
			if len(d) == 4 {
				ev.nfproto = binary.BigEndian.Uint32(d)
			}
		case ntaPolicy:
			if len(d) == 4 {
				ev.verdict = int32(binary.BigEndian.Uint32(d))
			}
		case ntaVerdict:
			forEachAttr(d, func(t uint16, v []byte) {
				switch t {
				case nftaVerdictCode:
					if len(v) == 4 {
						ev.verdict = int32(binary.BigEndian.Uint32(v))
					}
				case nftaVerdictChain:
					ev.target = cstring(v)
				}
			})
		}
	})
	if !ev.hasHdr && len(ev.thdr) > 0 {
		// A packet whose network header the kernel does not delimit
		// (a later IPv6 fragment: nf_tables finds no transport header
		// and leaves its offset at 0) comes with its bytes from the
		// network header on as the "transport header", and no network
		// header.
		ev.hasHdr, ev.nethdr, ev.thdr = true, ev.thdr, nil
	}
	return ev
}

// Verdict codes (linux/netfilter.h, nf_tables.h).
const (
	nfDrop     = 0
	nfAccept   = 1
	nfStolen   = 2
	nfQueue    = 3
	nfRepeat   = 4
	nfStop     = 5
	nftCont    = -1
	nftBreak   = -2
	nftJump    = -3
	nftGoto    = -4
	nftReturn  = -5
	nfVerdMask = 0xff
)

func verdictName(code int32, target string) string {
	if code >= 0 {
		code &= nfVerdMask
	}
	switch code {
	case nfDrop:
		return "drop"
	case nfAccept:
		return "accept"
	case nfStolen:
		return "stolen"
	case nfQueue:
		return "queue"
	case nfRepeat:
		return "repeat"
	case nfStop:
		return "stop"
	case nftCont, nftBreak:
		return "continue"
	case nftJump:
		return "jump " + userChain(target)
	case nftGoto:
		return "goto " + userChain(target)
	case nftReturn:
		return "return"
	}
	return fmt.Sprintf("verdict %d", code)
}

// userChain maps a slot chain name back to the user's chain name.
func userChain(kernel string) string {
	if _, u, ok := names.FromSlot(kernel); ok {
		return u
	}
	return kernel
}

// Step is one rule (or chain policy) a probe packet met on its way.
type Step struct {
	Chain   string    `json:"chain"`
	Handle  uint64    `json:"handle,omitempty"`
	Verdict string    `json:"verdict"`
	Policy  bool      `json:"policy,omitempty"`
	Rule    *RuleInfo `json:"rule,omitempty"`
	kchain  string    // kernel chain name
}

// Hop is the walk through one base chain: the rules the packet matched
// there (including jumps and gotos into regular chains) and how it ended.
type Hop struct {
	Family  string `json:"family"`
	Table   string `json:"table"`
	Chain   string `json:"chain"`
	Hook    string `json:"hook,omitempty"`
	Type    string `json:"type,omitempty"` // base chain type: filter, nat, route
	Steps   []Step `json:"steps"`
	Verdict string `json:"verdict"`
}

// Path is every base chain a probe packet went through, in order.
type Path []Hop

// noBaseChain is the Chain of the single Hop of a path that met no base
// chain of the ruleset: the kernel accepted the packet.
const noBaseChain = "(no base chain)"

// verdict is the ruleset's verdict along the path: drop if any base chain
// dropped the packet, accept if it passed them all, "" for an empty path.
func (p Path) verdict() string {
	if len(p) == 0 {
		return ""
	}
	for _, h := range p {
		if h.Verdict == "drop" {
			return "drop"
		}
	}
	return "accept"
}

// Decision returns the hop and step that decided the packet: the first
// dropping step; for an accepted packet the last step of the last hop that
// is not a nat chain (a dnat, snat or masquerade is a step on the path,
// shown by String, not the verdict), else the last step of the last hop.
func (p Path) Decision() (*Hop, *Step) {
	for i := range p {
		if p[i].Verdict == "drop" && len(p[i].Steps) > 0 {
			return &p[i], &p[i].Steps[len(p[i].Steps)-1]
		}
	}
	for i := len(p) - 1; i >= 0; i-- {
		if p[i].Type != "" && p[i].Type != "nat" && len(p[i].Steps) > 0 {
			return &p[i], &p[i].Steps[len(p[i].Steps)-1]
		}
	}
	if len(p) == 0 || len(p[len(p)-1].Steps) == 0 {
		return nil, nil
	}
	h := &p[len(p)-1]
	return h, &h.Steps[len(h.Steps)-1]
}

// buildPath turns one trace's events into a Path: events of the trace
// table are skipped, slot chain names become user names, fwslot's dispatch
// jump is hidden and its policy rule shows as the chain's policy.
func buildPath(evs []traceEvent, idx RuleIndex) Path {
	var path Path
	var cur *Hop
	dispatched := false
	for _, ev := range evs {
		if ev.table == traceTable {
			continue
		}
		fam := nfnl.FamilyName(ev.family)
		if cur == nil || ev.hasHdr || cur.Table != ev.table || cur.Family != fam {
			path = append(path, Hop{Family: fam, Table: ev.table, Chain: userChain(ev.chain)})
			cur = &path[len(path)-1]
			dispatched = false
			if x, ok := idx.(*nftRuleIndex); ok && x != nil {
				cur.Hook, _ = x.hook(fam, ev.table, ev.chain)
				cur.Type, _ = x.chainType(fam, ev.table, ev.chain)
			}
		}
		st := Step{Chain: userChain(ev.chain), kchain: ev.chain, Handle: ev.handle, Verdict: verdictName(ev.verdict, ev.target)}
		if ev.typ == traceTypePolicy {
			st.Policy = true
			st.Handle = 0
		}
		if ev.typ == traceTypeReturn {
			st.Verdict = "return"
			st.Handle = 0
		}
		var info RuleInfo
		var known bool
		if st.Handle != 0 && idx != nil {
			info, known = idx.Lookup(fam, ev.table, ev.chain, st.Handle)
		}
		own := known && info.Own
		_, _, inSlot := names.FromSlot(ev.chain)
		_, _, toSlot := names.FromSlot(ev.target)
		switch {
		case !inSlot && toSlot && (ev.verdict == nftJump || ev.verdict == nftGoto):
			// fwslot's dispatch jump into the active slot: hidden.
			dispatched = true
			continue
		case own || (dispatched && !inSlot && ev.typ == traceTypeRule && (st.Verdict == "accept" || st.Verdict == "drop")):
			// fwslot's rule carrying the user's policy.
			st.Policy = true
			st.Handle = 0
		case known:
			r := info
			st.Rule = &r
		}
		cur.Steps = append(cur.Steps, st)
		if st.Verdict == "accept" || st.Verdict == "drop" || st.Verdict == "stolen" || st.Verdict == "queue" || st.Verdict == "stop" {
			cur.Verdict = st.Verdict
		}
	}
	for i := range path {
		if path[i].Verdict == "" {
			path[i].Verdict = "accept"
		}
	}
	if len(path) == 0 && len(evs) > 0 {
		// Traced, but no base chain of the ruleset saw it (IPv6 against
		// a `table ip` ruleset, output without an output chain): the
		// kernel accepts such a packet.
		path = Path{{Chain: noBaseChain, Verdict: "accept"}}
	}
	return path
}

// String renders the path, one step a line, for reports.
func (p Path) String() string {
	var b strings.Builder
	for _, h := range p {
		if h.Table == "" && strings.HasPrefix(h.Chain, "(") {
			fmt.Fprintf(&b, "  %s: %s\n", h.Chain, h.Verdict)
			continue
		}
		hook := ""
		switch {
		case h.Hook != "" && h.Type == "nat":
			hook = " (nat, hook " + h.Hook + ")"
		case h.Hook != "":
			hook = " (hook " + h.Hook + ")"
		}
		fmt.Fprintf(&b, "  %s %s %s%s: %s\n", h.Family, h.Table, h.Chain, hook, h.Verdict)
		for _, s := range h.Steps {
			switch {
			case s.Policy:
				fmt.Fprintf(&b, "    chain %s: policy %s\n", s.Chain, s.Verdict)
			case s.Rule != nil:
				loc := ""
				if s.Rule.File != "" {
					loc = fmt.Sprintf(" (%s:%d)", s.Rule.File, s.Rule.Line)
				}
				fmt.Fprintf(&b, "    chain %s: %s  # handle %d%s -> %s\n", s.Chain, s.Rule.Text, s.Handle, loc, s.Verdict)
			case s.Handle != 0:
				fmt.Fprintf(&b, "    chain %s: rule handle %d -> %s\n", s.Chain, s.Handle, s.Verdict)
			default:
				fmt.Fprintf(&b, "    chain %s: end of chain -> %s\n", s.Chain, s.Verdict)
			}
		}
	}
	return b.String()
}
