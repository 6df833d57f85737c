package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fwslot/fwslot/fleet"
	"github.com/fwslot/fwslot/internal/fleetdemo"
	"github.com/fwslot/fwslot/internal/gen"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// FleetConfig says how to measure the fleet.
type FleetConfig struct {
	// Rules is the size of the generated rulesets (gen.Ruleset).
	Rules int
	// Stagers bounds how many in-process agents compile at once: every
	// agent shares this machine's cores, so more only adds memory.
	Stagers int
	// Fwslot is the binary the agent-memory measurement runs.
	Fwslot string
	Log    func(format string, args ...any)
}

func (c *FleetConfig) logf(format string, args ...any) {
	if c.Log != nil {
		c.Log(format, args...)
	}
}

// FleetResult is one fleet size.
type FleetResult struct {
	Hosts int
	// NftLoop is one `nft -f` of the first version per host, one host
	// after the other, onto empty namespaces.
	NftLoop time.Duration
	// First and Next are `fleet push` to every host live and confirmed:
	// the first version onto empty hosts, then the second one.
	First, Next time.Duration
	// Rollback is fleet.Rollback's Took: from its one etcd write to the
	// last host's report of the flip.
	Rollback time.Duration
	// FlipMax and FlipSum are the longest and the total of the hosts'
	// local flips (fleet.Host.FlipTo) during the rollback: on one
	// machine the hosts share its cores.
	FlipMax, FlipSum time.Duration
	// VersionBytes is the version's keys and values in etcd (its chunks
	// and its record); DBGrowth is how much etcd's database grew during
	// the second push (every order and status revision included).
	VersionBytes, DBGrowth int64
}

// stageGate bounds concurrent Stage calls of the in-process agents and
// times their flips.
type stageGate struct {
	fleet.Host
	sem   chan struct{}
	flips *flipTimes
}

// flipTimes collects how long each host's local flip back took.
type flipTimes struct {
	mu       sync.Mutex
	sum, max time.Duration
}

func (g stageGate) FlipTo(ctx context.Context, hash string) (fleet.LocalState, error) {
	start := time.Now()
	st, err := g.Host.FlipTo(ctx, hash)
	d := time.Since(start)
	g.flips.mu.Lock()
	g.flips.sum += d
	g.flips.max = max(g.flips.max, d)
	g.flips.mu.Unlock()
	return st, err
}

func (g stageGate) Stage(ctx context.Context, v *fleet.Version) error {
	select {
	case g.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-g.sem }()
	return g.Host.Stage(ctx, v)
}

// fleetRulesets returns two generated rulesets of n rules.
func fleetRulesets(n int) (v1, v2 string) {
	return gen.Ruleset(gen.Options{Rules: n, Seed: 1, Family: Family}), gen.Ruleset(gen.Options{Rules: n, Seed: 2, Family: Family})
}

// MeasureFleet times a fleet of n hosts: n namespaces, each kept by an
// agent running in this process (one binary, one etcd connection per
// agent), on an embedded etcd.
func MeasureFleet(ctx context.Context, cfg *FleetConfig, n int) (res *FleetResult, err error) {
	sem := make(chan struct{}, max(cfg.Stagers, 1))
	flips := &flipTimes{}
	lab, err := fleetdemo.NewLab(fleetdemo.LabOptions{NSPrefix: "fwsb-fleet-", Group: "bench",
		Wrap: func(h fleet.Host) fleet.Host { return stageGate{h, sem, flips} }})
	defer func() {
		if cerr := lab.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if err != nil {
		return nil, err
	}
	v1, v2 := fleetRulesets(cfg.Rules)
	file := filepath.Join(lab.Dir, "v1.nft")
	if err := os.WriteFile(file, []byte(v1), 0o600); err != nil {
		return nil, err
	}
	for i := 1; i <= n; i++ {
		if _, err := lab.AddHost(fmt.Sprintf("h%03d", i)); err != nil {
			return nil, err
		}
	}
	res = &FleetResult{Hosts: n}
	cfg.logf("fleet %d hosts: nft -f loop", n)
	start := time.Now()
	for _, h := range lab.Hosts {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if _, err := Nft(h.NetNS, file); err != nil {
			return nil, err
		}
	}
	res.NftLoop = time.Since(start)
	for _, h := range lab.Hosts {
		if _, err := Run(h.NetNS, "nft", "flush", "ruleset"); err != nil {
			return nil, err
		}
	}
	for _, h := range lab.Hosts {
		if err := lab.StartAgent(h); err != nil {
			return nil, err
		}
	}
	if err := lab.WaitAlive(ctx, n); err != nil {
		return nil, err
	}
	p := &fleet.Pusher{Client: lab.Client, Keys: lab.Keys}
	// push times a push of src until every host runs it, confirmed, and
	// returns how much etcd's database grew meanwhile.
	push := func(which, src string) (took time.Duration, growth int64, err error) {
		cfg.logf("fleet %d hosts: %s push", n, which)
		before, err := dbSize(ctx, lab)
		if err != nil {
			return 0, 0, err
		}
		start := time.Now()
		if _, err := p.Push(ctx, fleet.PushOptions{Source: []byte(src), Message: "bench", Author: "bench",
			Canary: 1, Waves: []int{10, 50, 100}, Confirm: 10 * time.Minute}); err != nil {
			return 0, 0, err
		}
		took = time.Since(start)
		after, err := dbSize(ctx, lab)
		return took, after - before, err
	}
	if res.First, _, err = push("first", v1); err != nil {
		return nil, err
	}
	if res.Next, res.DBGrowth, err = push("second", v2); err != nil {
		return nil, err
	}
	if res.VersionBytes, err = versionBytes(ctx, lab.Client, lab.Keys, 2); err != nil {
		return nil, err
	}
	cfg.logf("fleet %d hosts: rollback", n)
	rb, err := fleet.Rollback(ctx, lab.Client, lab.Keys, 5*time.Minute)
	if err != nil {
		return nil, err
	}
	if len(rb.Failed) > 0 || len(rb.Hosts) != n {
		return nil, fmt.Errorf("fleet rollback: %d of %d hosts, failed: %v", len(rb.Hosts), n, rb.Failed)
	}
	res.Rollback = rb.Took
	res.FlipMax, res.FlipSum = flips.max, flips.sum
	return res, nil
}

// dbSize is the etcd member's database size.
func dbSize(ctx context.Context, lab *fleetdemo.Lab) (int64, error) {
	st, err := lab.Client.Status(ctx, lab.Endpoint)
	if err != nil {
		return 0, fmt.Errorf("etcd status: %w", err)
	}
	return st.DbSize, nil
}

// versionBytes sums the keys and values of version n: its record and
// its chunks, with their reference and tracked keys.
func versionBytes(ctx context.Context, c *clientv3.Client, k fleet.Keys, n uint64) (int64, error) {
	r, err := c.Get(ctx, k.Version(n))
	if err != nil || len(r.Kvs) == 0 {
		return 0, fmt.Errorf("read version %d: %v", n, err)
	}
	total := int64(len(r.Kvs[0].Key) + len(r.Kvs[0].Value))
	m, err := fleet.GetMeta(ctx, c, k, n)
	if err != nil {
		return 0, err
	}
	for _, h := range m.Chunks {
		r, err := c.Get(ctx, k.Chunk(h))
		if err != nil || len(r.Kvs) == 0 {
			return 0, fmt.Errorf("read chunk %s: %v", h, err)
		}
		total += int64(len(r.Kvs[0].Key) + len(r.Kvs[0].Value))
		// The chunk's bookkeeping: this version's reference key and the
		// chunk's tracked key (empty values).
		total += int64(len(k.ChunkRef(h, n)) + len(k.ChunkTracked(h)))
	}
	return total, nil
}

// AgentMemory is the resident memory of one `fwslot agent` process.
type AgentMemory struct {
	// Rest is VmRSS once its host runs the version, confirmed, and a
	// heartbeat passed; Peak is VmHWM (the most it ever held: staging).
	Rest, Peak int64
}

// MeasureAgentMemory runs one `fwslot agent` process on a namespace,
// pushes a version of cfg.Rules rules to it and reads its memory.
func MeasureAgentMemory(ctx context.Context, cfg *FleetConfig) (m *AgentMemory, err error) {
	lab, err := fleetdemo.NewLab(fleetdemo.LabOptions{NSPrefix: "fwsb-fleet-", Group: "mem"})
	defer func() {
		if cerr := lab.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if err != nil {
		return nil, err
	}
	h, err := lab.AddHost("m1")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(cfg.Fwslot, "agent", "--etcd", lab.Endpoint, "--group", "mem", "--host", h.Name, "--netns", h.NetNS, "--db", h.DB)
	logf, err := os.Create(filepath.Join(lab.Dir, "agent.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start fwslot agent: %w", err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	if err := lab.WaitAlive(ctx, 1); err != nil {
		return nil, err
	}
	v1, _ := fleetRulesets(cfg.Rules)
	p := &fleet.Pusher{Client: lab.Client, Keys: lab.Keys}
	if _, err := p.Push(ctx, fleet.PushOptions{Source: []byte(v1), Canary: 1, Waves: []int{100}, Confirm: 10 * time.Minute}); err != nil {
		return nil, err
	}
	// At rest: after the push, a heartbeat (10 s) and the Go runtime's
	// background scavenger have had time to return what staging used.
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(15 * time.Second):
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		return nil, err
	}
	m = &AgentMemory{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			m.Rest = kb << 10
		case "VmHWM:":
			m.Peak = kb << 10
		}
	}
	return m, nil
}

// FleetTable prints the fleet results.
func FleetTable(cfg *FleetConfig, rs []*FleetResult, mem *AgentMemory) *Table {
	t := &Table{
		Title: fmt.Sprintf("fleet: a %d-rule version to N hosts through etcd (canary 1, waves 10%%,50%%,100%%)", cfg.Rules),
		Note: "One run per size. Hosts are network namespaces on this machine, each kept by an agent running in the benchmark " +
			"process (one binary, one etcd connection per agent, at most " + strconv.Itoa(cfg.Stagers) + " compiling at once: " +
			"every host shares this machine's cores, so staging is CPU-bound here, not on a real fleet). " +
			"nft -f loop: `nft -f` of the first version into each host, one after the other (no ssh). " +
			"push: `fleet push` until every host runs the version, confirmed (staging, probes-free, every wave's swap and confirm). " +
			"rollback: from fleet rollback's one etcd write to the last host's report of its flip; a host's flip is its agent's " +
			"local FlipTo (one session: history, one kernel state read, the flip transaction; the report reuses the state it left), timed in the agent; they run at once and share the cores.",
		Header: []string{"hosts", "nft -f loop", "fleet push, first version", "fleet push, next version", "fleet rollback (all flipped)", "one host's flip: mean; max", "etcd bytes per version", "etcd db growth per push"},
	}
	for _, r := range rs {
		t.AddRow(strconv.Itoa(r.Hosts), dur(r.NftLoop), dur(r.First), dur(r.Next), dur(r.Rollback), dur(r.FlipSum/time.Duration(r.Hosts))+"; "+dur(r.FlipMax),
			fmt.Sprintf("%d (%s)", r.VersionBytes, mib(r.VersionBytes)), mib(r.DBGrowth))
		if r.Hosts >= 100 {
			v := "MET"
			if r.Rollback > time.Second {
				v = "MISSED"
			}
			t.Verdicts = append(t.Verdicts, fmt.Sprintf("%d hosts all flipped within 1 s of fleet rollback: %s (%s)", r.Hosts, v, dur(r.Rollback)))
		}
	}
	if mem != nil {
		t.Verdicts = append(t.Verdicts, fmt.Sprintf("agent memory: one `fwslot agent` process (VmRSS) at rest after staging and confirming a %d-rule version: %s; its peak (VmHWM, while compiling): %s",
			cfg.Rules, mib(mem.Rest), mib(mem.Peak)))
	}
	return t
}

func dur(d time.Duration) string { return FmtSeconds(d.Seconds()) }

// mib renders bytes in KiB or MiB.
func mib(b int64) string {
	if b < 1<<20 {
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}
