package probe

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/fwslot/fwslot/internal/nfnl"
	"github.com/fwslot/fwslot/internal/nsutil"
)

// A verdict that answers the sender: the kernel drops the packet and sends
// a TCP reset or an ICMP unreachable back. The trace shows such a verdict
// as a drop, and the answer crosses the veth back to the sender in softirq
// work that a loaded machine defers for longer than DropGrace; the twin
// tells such a drop from a plain one by the deciding rule's expressions
// and the kernel's own count of packets it transmitted.

// answeringExprs are the rule expressions that answer the packet they
// drop: `reject` in all its forms (tcp reset, icmp, icmpv6, icmpx).
var answeringExprs = map[string]bool{"reject": true}

// answeringExpr returns the name of a dumped rule's first expression that
// answers the packet, or "".
func answeringExpr(m nfnl.Msg) (string, error) {
	list, ok := m.Attr(nfnl.RuleExpressions)
	if !ok {
		return "", nil
	}
	elems, err := nfnl.ParseAttrs(list)
	if err != nil {
		return "", fmt.Errorf("parse rule expressions: %w", err)
	}
	for _, el := range elems {
		attrs, err := nfnl.ParseAttrs(el.Data)
		if err != nil {
			return "", fmt.Errorf("parse rule expression: %w", err)
		}
		na, _ := nfnl.Find(attrs, nfnl.ExprName)
		if name := nfnl.Str(na.Data); answeringExprs[name] {
			return name, nil
		}
	}
	return "", nil
}

// ruleKeyOf is the kernel coordinates of a dumped rule, as a trace event
// names them.
func ruleKeyOf(m nfnl.Msg) ruleKey {
	t, _ := m.Attr(nfnl.RuleTable)
	c, _ := m.Attr(nfnl.RuleChain)
	h, _ := m.Attr(nfnl.RuleHandle)
	return ruleKey{nfnl.FamilyName(m.Family), nfnl.Str(t), nfnl.Str(c), nfnl.U64(h)}
}

// txFiles are the twin's IP counter files (/proc/net/snmp, snmp6), opened
// from a thread inside the twin: a proc net file keeps the namespace it
// was opened in.
type txFiles struct{ v4, v6 *os.File }

func openTxFiles(tw *Twin) (*txFiles, error) {
	f := &txFiles{}
	err := nsutil.DoHandle(tw.ns, func() error {
		var err error
		if f.v4, err = os.Open("/proc/thread-self/net/snmp"); err != nil {
			return fmt.Errorf("open the twin's IPv4 counters: %w", err)
		}
		if f.v6, err = os.Open("/proc/thread-self/net/snmp6"); err != nil {
			return fmt.Errorf("open the twin's IPv6 counters: %w", err)
		}
		return nil
	})
	if err != nil {
		f.close()
		return nil, err
	}
	return f, nil
}

func (f *txFiles) close() {
	if f == nil {
		return
	}
	for _, x := range []*os.File{f.v4, f.v6} {
		if x != nil {
			x.Close()
		}
	}
}

// ndMessages are the ICMPv6 messages the kernel sends on its own
// (neighbour discovery, multicast listener reports): not answers.
var ndMessages = []string{"Icmp6OutNeighborSolicits", "Icmp6OutNeighborAdvertisements", "Icmp6OutRouterSolicits",
	"Icmp6OutMLDv2Reports", "Icmp6OutGroupMembResponses", "Icmp6OutGroupMembReductions"}

// transmitted returns how many packets of a family the twin has handed to
// a device (Ip OutTransmits, or Ip6OutTransmits less neighbour discovery
// and listener reports: counted as the kernel sends them, before any
// queue, and only for packets past the output and postrouting hooks). An
// answer has the family of the packet it answers. ok is false when the
// kernel does not count them.
func (f *txFiles) transmitted(v6 bool) (n uint64, ok bool, err error) {
	if !v6 {
		b, err := readAll(f.v4)
		if err != nil {
			return 0, false, fmt.Errorf("read the twin's IPv4 counters: %w", err)
		}
		n, ok := snmpField(b, "Ip:", "OutTransmits")
		return n, ok, nil
	}
	b, err := readAll(f.v6)
	if err != nil {
		return 0, false, fmt.Errorf("read the twin's IPv6 counters: %w", err)
	}
	n, ok = snmp6Field(b, "Ip6OutTransmits")
	for _, name := range ndMessages {
		m, _ := snmp6Field(b, name)
		n -= m // wraps below zero alike before and after: only equality matters
	}
	return n, ok, nil
}

// readAll reads a proc file from its start (proc files regenerate their
// text at offset 0).
func readAll(f *os.File) ([]byte, error) {
	var out []byte
	buf := make([]byte, 8192)
	for off := int64(0); ; {
		n, err := unix.Pread(int(f.Fd()), buf, off)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return nil, err
		}
		if n == 0 {
			return out, nil
		}
		out = append(out, buf[:n]...)
		off += int64(n)
	}
}

// snmpField finds a counter in /proc/net/snmp text: a line of names and a
// line of values, both starting with prefix.
func snmpField(b []byte, prefix, name string) (uint64, bool) {
	var names []string
	for line := range bytes.Lines(b) {
		f := strings.Fields(string(line))
		if len(f) == 0 || f[0] != prefix {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, nm := range names {
			if nm == name && i < len(f) {
				v, err := strconv.ParseUint(f[i], 10, 64)
				return v, err == nil
			}
		}
		return 0, false
	}
	return 0, false
}

// snmp6Field finds a counter in /proc/net/snmp6 text (name value lines).
func snmp6Field(b []byte, name string) (uint64, bool) {
	for line := range bytes.Lines(b) {
		if f := strings.Fields(string(line)); len(f) == 2 && f[0] == name {
			v, err := strconv.ParseUint(f[1], 10, 64)
			return v, err == nil
		}
	}
	return 0, false
}

// countTx records, before a probe is sent, what the twin has transmitted,
// when the ruleset has a rule that answers (else no drop can be answered
// and nothing is read).
func (tw *Twin) countTx(o *observation) error {
	if tw.state == nil || len(tw.state.answers) == 0 {
		return nil
	}
	if tw.tx == nil {
		f, err := openTxFiles(tw)
		if err != nil {
			return err
		}
		tw.tx = f
	}
	n, ok, err := tw.tx.transmitted(o.spec.src.Is6())
	if err != nil {
		return err
	}
	o.txBefore, o.txKnown = n, ok
	return nil
}

// expectAnswer decides, when the trace shows the probe dropped, whether an
// answer is on its way: the dropping rule (in whatever chain the trace
// names, a jumped one too) has an answering expression, and the kernel
// transmitted a packet of the probe's family since the probe was sent
// (the answer has its family). The answer is sent
// before the rule's trace event, in the same softirq, so the count is
// final when the drop is read. A reject the kernel does not answer (a
// reset, an ICMP error, a bad checksum, a fragment, an answer the output
// chain drops) transmits nothing: a plain drop for the sender, judged on
// the short path. Without the kernel's count the rule alone decides.
func (tw *Twin) expectAnswer(o *observation) error {
	ev, ok := o.dropEvent()
	if !ok || tw.state == nil {
		return nil
	}
	name, ok := tw.state.answers[ruleKey{nfnl.FamilyName(ev.family), ev.table, ev.chain, ev.handle}]
	if !ok {
		return nil
	}
	if o.txKnown {
		n, _, err := tw.tx.transmitted(o.spec.src.Is6())
		if err != nil {
			return err
		}
		if n == o.txBefore {
			return nil
		}
	}
	o.awaited = fmt.Sprintf("%s in chain %s (rule handle %d)", name, userChain(ev.chain), ev.handle)
	return nil
}
