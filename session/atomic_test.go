package session

import (
	"context"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fwslot/fwslot/internal/testnet"
)

// TestSwapIsAtomicUnderFlood floods UDP from a peer through the target's
// input hook while swapping at least 500 times, then proves that every
// packet was evaluated by exactly one slot: the two slots' counters sum to
// a ground-truth counter in a chain before them, and a chain after them
// saw every packet (both slots accept, so none may be dropped).
func TestSwapIsAtomicUnderFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("flood test skipped in -short mode")
	}
	target, peer := testnet.Pair(t)
	testnet.Run(t, target, "nft", `add table inet truth
add chain inet truth before { type filter hook input priority -10; }
add rule inet truth before udp dport 9999 counter
add chain inet truth after { type filter hook input priority 10; }
add rule inet truth after udp dport 9999 counter`)
	tg := newTarget(t, target)
	body := `table inet filter {
	chain input {
		type filter hook input priority 0; policy drop;
		udp dport 9999 counter accept
		tcp dport 22 accept
	}
}
`
	load(t, tg, writeRuleset(t, "v1.nft", body))
	mustSwap(t, tg)
	load(t, tg, writeRuleset(t, "v2.nft", body+"# version 2\n"))

	conn := testnet.UDPSocket(t, peer, testnet.TargetIP+":9999")
	var sent atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		payload := make([]byte, 32)
		for {
			select {
			case <-stop:
				return
			default:
			}
			for i := 0; i < 64; i++ {
				if _, err := conn.Write(payload); err == nil {
					sent.Add(1)
				}
			}
		}
	}()
	const swaps = 500
	start := time.Now()
	for i := 0; i < swaps; i++ {
		if _, err := tg.Swap(context.Background(), SwapOptions{}); err != nil {
			close(stop)
			wg.Wait()
			t.Fatalf("swap %d: %v", i, err)
		}
	}
	elapsed := time.Since(start)
	close(stop)
	wg.Wait()
	time.Sleep(200 * time.Millisecond) // let queued packets through

	before := counter(t, target, "truth", "before")
	after := counter(t, target, "truth", "after")
	a := counter(t, target, "filter", "fwslot_a_input")
	b := counter(t, target, "filter", "fwslot_b_input")
	t.Logf("%d swaps in %v (%.0f/s); %d packets sent, %.0f packets/s; slot a %d + slot b %d = %d; ground truth before %d, after %d",
		swaps, elapsed, float64(swaps)/elapsed.Seconds(), sent.Load(), float64(sent.Load())/elapsed.Seconds(), a, b, a+b, before, after)
	if before < 100000 {
		t.Fatalf("flood too thin to prove anything: %d packets", before)
	}
	if a == 0 || b == 0 {
		t.Fatalf("both slots must have carried traffic: a=%d b=%d", a, b)
	}
	if a+b != before {
		t.Fatalf("slots evaluated %d packets, ground truth saw %d: %d evaluated by both or neither", a+b, before, int64(a+b)-int64(before))
	}
	if after != before {
		t.Fatalf("%d packets dropped during swaps although both slots accept", before-after)
	}
}

var counterRe = regexp.MustCompile(`udp dport 9999 counter packets (\d+)`)

func counter(t *testing.T, ns, table, chain string) uint64 {
	t.Helper()
	out := testnet.Run(t, ns, "nft", "list", "chain", "inet", table, chain)
	m := counterRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no counter in %s %s:\n%s", table, chain, out)
	}
	n, _ := strconv.ParseUint(m[1], 10, 64)
	return n
}
