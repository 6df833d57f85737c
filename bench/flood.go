package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/gen"
	"github.com/fwslot/fwslot/internal/nsutil"
	"github.com/fwslot/fwslot/internal/sandbox"
	"github.com/fwslot/fwslot/session"
)

// FloodPort is the UDP port the flood and datapath senders aim at.
const FloodPort = 9999

// truthTable counts the flood in a table of its own before (priority -10)
// and after (priority 10) fwslot's base chain (priority filter = 0); the
// after chain drops, so accepted packets cost no socket lookup or ICMP.
const truthTable = `table ip fwsbtruth {
	chain before {
		type filter hook input priority -10; policy accept;
		udp dport 9999 counter
	}
	chain after {
		type filter hook input priority 10; policy accept;
		udp dport 9999 counter drop
	}
}
`

// withRule inserts rule into the input chain of generated nft text, first
// (after the chain header) or last.
func withRule(text, rule string, first bool) string {
	const hdr = "\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n"
	i := strings.Index(text, hdr)
	if i < 0 {
		panic("bench: generated ruleset has no input chain")
	}
	if first {
		j := i + len(hdr)
		return text[:j] + "\t\t" + rule + "\n" + text[j:]
	}
	j := i + strings.Index(text[i:], "\n\t}\n") + 1
	return text[:j] + "\t\t" + rule + "\n" + text[j:]
}

var counterRE = regexp.MustCompile(`udp dport 9999 counter packets (\d+)`)

// Counter reads the first "udp dport 9999 counter" of a chain in ns.
func Counter(ns, family, table, chain string) (uint64, error) {
	p, err := Run(ns, "nft", "list", "chain", family, table, chain)
	if err != nil {
		return 0, err
	}
	m := counterRE.FindStringSubmatch(p.Stdout)
	if m == nil {
		return 0, fmt.Errorf("no udp dport 9999 counter in %s %s %s", family, table, chain)
	}
	return strconv.ParseUint(m[1], 10, 64)
}

// Flooder sends UDP packets from the client namespace of a sandbox to
// the target's FloodPort, from several sockets (one goroutine each).
type Flooder struct {
	conns []*net.UDPConn
	sent  atomic.Int64
	stop  chan struct{}
	wg    sync.WaitGroup
}

// NewFlooder opens n sockets in ns towards dst:FloodPort, with distinct
// source ports.
func NewFlooder(ns, dst string, n int) (*Flooder, error) {
	f := &Flooder{}
	err := nsutil.Do(ns, func() error {
		for range n {
			c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.ParseIP(dst), Port: FloodPort})
			if err != nil {
				return err
			}
			f.conns = append(f.conns, c)
		}
		return nil
	})
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Start begins sending as fast as the sockets go. Sender i runs on its own
// OS thread pinned to CPU i mod NumCPU (the thread is discarded
// afterwards), so that each core sends and processes its own packets
// (veth delivers them in the sender's softirq) and runs vary less.
func (f *Flooder) Start() {
	f.stop = make(chan struct{})
	for i, c := range f.conns {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			runtime.LockOSThread() // never unlocked: the pinned thread exits with the goroutine
			var set unix.CPUSet
			set.Set(i % runtime.NumCPU())
			_ = unix.SchedSetaffinity(0, &set)
			payload := make([]byte, 18)
			for {
				select {
				case <-f.stop:
					return
				default:
				}
				n := 0
				for range 256 {
					if _, err := c.Write(payload); err == nil {
						n++
					}
				}
				f.sent.Add(int64(n))
			}
		}()
	}
}

// Stop ends sending and returns the packets sent since Start.
func (f *Flooder) Stop() int64 {
	close(f.stop)
	f.wg.Wait()
	return f.sent.Swap(0)
}

// Close closes the sockets.
func (f *Flooder) Close() {
	for _, c := range f.conns {
		c.Close()
	}
}

// FloodResult is one run of packets-during-swaps.
type FloodResult struct {
	Rules            int
	Duration         time.Duration
	Sent             int64
	Before, After    uint64 // ground truth around fwslot's base chain
	SlotA, SlotB     uint64 // per-slot counters
	Swaps            int
	SwapTimes        []float64
	BothOrNeither    int64 // (A+B) - Before
	Lost             int64 // Before - After (both slots accept)
	PacketsPerSecond float64
}

// MeasureFlood floods UDP through a sandbox target managed by fwslot
// while Session.Swap flips between two versions of an n-rule ruleset for d,
// and compares per-slot counters with the ground truth.
func MeasureFlood(cfg *Config, n int, d time.Duration, senders int) (res *FloodResult, err error) {
	res = &FloodResult{Rules: n}
	sc, err := newScratch(cfg, fmt.Sprintf("flood%d", n))
	if err != nil {
		return nil, err
	}
	defer keepFirst(&err, sc.remove)
	dir := sc.dir
	sb, err := NewSandbox()
	if err != nil {
		return nil, err
	}
	defer keepFirst(&err, sb.Close)
	truth := filepath.Join(dir, "truth.nft")
	if err := os.WriteFile(truth, []byte(truthTable), 0o600); err != nil {
		return nil, err
	}
	if _, err := Nft(sb.Target, truth); err != nil {
		return nil, err
	}
	store, err := history.Open(filepath.Join(dir, "fwslot.db"), history.Options{})
	if err != nil {
		return nil, err
	}
	defer store.Close()
	t := &session.Target{NetNS: sb.Target, Store: store}
	ctx := context.Background()
	cfg.logf("  flood at %d rules: load two versions", n)
	for i, seed := range []int64{1, 2} {
		text := withRule(gen.Ruleset(gen.Options{Rules: n, Seed: seed, Family: Family}), "udp dport 9999 counter accept", true)
		f := filepath.Join(dir, fmt.Sprintf("v%d.nft", seed))
		if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
			return nil, err
		}
		if _, err := t.Load(ctx, f, session.LoadOptions{}); err != nil {
			return nil, err
		}
		if i == 0 {
			if _, err := t.Swap(ctx, session.SwapOptions{}); err != nil {
				return nil, err
			}
		}
	}
	fl, err := NewFlooder(sb.Client, sandbox.TargetIP, senders)
	if err != nil {
		return nil, err
	}
	defer fl.Close()
	cfg.logf("  flood at %d rules: %d senders, swapping for %v", n, senders, d)
	fl.Start()
	start := time.Now()
	var swapErr error
	for time.Since(start) < d {
		s := time.Now()
		if _, err := t.Swap(ctx, session.SwapOptions{}); err != nil {
			swapErr = err
			break
		}
		res.SwapTimes = append(res.SwapTimes, time.Since(s).Seconds())
		res.Swaps++
	}
	res.Duration = time.Since(start)
	res.Sent = fl.Stop()
	if swapErr != nil {
		return nil, swapErr
	}
	time.Sleep(300 * time.Millisecond) // let queued packets through
	for _, c := range []struct {
		dst          *uint64
		table, chain string
	}{{&res.Before, "fwsbtruth", "before"}, {&res.After, "fwsbtruth", "after"},
		{&res.SlotA, "filter", "fwslot_a_input"}, {&res.SlotB, "filter", "fwslot_b_input"}} {
		v, err := Counter(sb.Target, "ip", c.table, c.chain)
		if err != nil {
			return nil, err
		}
		*c.dst = v
	}
	res.BothOrNeither = int64(res.SlotA+res.SlotB) - int64(res.Before)
	res.Lost = int64(res.Before) - int64(res.After)
	res.PacketsPerSecond = float64(res.Before) / res.Duration.Seconds()
	return res, nil
}

// FloodTable renders packets-during-swaps runs.
func FloodTable(rs []*FloodResult) *Table {
	t := &Table{Title: "packets during a swap: none lost, none evaluated by both slots",
		Note: "UDP flood from the client namespace of a sandbox (veth) to the target, while `Session.Swap` (in-process) flips continuously between two versions of an N-rule ruleset whose input chain starts with `udp dport 9999 counter accept`. " +
			"Ground truth: a separate table counts the flood before (priority -10) and after (priority 10, then drops) fwslot's base chain. " +
			"Evaluated by both slots or neither = (slot a + slot b) − before; lost = before − after (both versions accept the flood).",
		Header: []string{"rules", "duration", "flood (packets/s)", "packets", "swaps (swaps/s)", "swap p50 (min–max)", "slot a + slot b", "both or neither", "lost"}}
	for _, r := range rs {
		t.AddRow(strconv.Itoa(r.Rules), r.Duration.Round(time.Millisecond).String(),
			fmt.Sprintf("%.0fk", r.PacketsPerSecond/1e3), strconv.FormatUint(r.Before, 10),
			fmt.Sprintf("%d (%.0f/s)", r.Swaps, float64(r.Swaps)/r.Duration.Seconds()), FmtTime(Summarize(r.SwapTimes)),
			fmt.Sprintf("%d + %d", r.SlotA, r.SlotB), strconv.FormatInt(r.BothOrNeither, 10), strconv.FormatInt(r.Lost, 10))
		v := "MET"
		if r.BothOrNeither != 0 || r.Lost != 0 || r.PacketsPerSecond < 100000 || r.SlotA == 0 || r.SlotB == 0 {
			v = "MISSED"
		}
		t.Verdicts = append(t.Verdicts, fmt.Sprintf("%d rules: target zero lost and zero evaluated by both or neither, under ≥ 100k packets/s: %s (%d both/neither, %d lost, %.0fk packets/s, %d swaps)",
			r.Rules, v, r.BothOrNeither, r.Lost, r.PacketsPerSecond/1e3, r.Swaps))
	}
	return t
}
