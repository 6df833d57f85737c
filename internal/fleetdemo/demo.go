package fleetdemo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/fwslot/fwslot/fleet"
	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/slots"
)

// The demo's versions. Version 1 serves the web on 443 and the metrics
// on 9100; version 2 "tidies the ports" and drops 9100, which the group's
// probes do not cover: every host stages it (its twin passes the probes),
// and only the canary's live health check (--check, a real connection
// from the client to 9100) catches it. Version 3 also opens 8443; the
// fleet rollback takes it back to 1.
const (
	goodV1 = `table inet web {
	chain input {
		type filter hook input priority 0; policy drop;
		ct state established,related accept
		iif lo accept
		tcp dport { 22, 443, 9100 } accept
		meta l4proto tcp reject with tcp reset
	}
}
`
	badV2 = `table inet web {
	chain input {
		type filter hook input priority 0; policy drop;
		ct state established,related accept
		iif lo accept
		tcp dport { 22, 443 } accept   # "unused" 9100 dropped: the metrics scrape
		meta l4proto tcp reject with tcp reset
	}
}
`
	goodV3 = `table inet web {
	chain input {
		type filter hook input priority 0; policy drop;
		ct state established,related accept
		iif lo accept
		tcp dport { 22, 443, 8443, 9100 } accept
		meta l4proto tcp reject with tcp reset
	}
}
`
	// demoProbes go with every version: each host runs them in its twin
	// before staging, and against the live ruleset after a swap. They do
	// not cover 9100: the hosts' --check does, on the live host.
	demoProbes = `accept tcp 198.51.100.7:40000 -> 192.0.2.1:443 in eth0    # the web stays open
accept tcp 198.51.100.7:40001 -> 192.0.2.1:22 in eth0     # admin ssh
reject tcp 203.0.113.9:40002 -> 192.0.2.1:3306 in eth0    # everything else is refused
`
	// checkPort is what each host's --check connects to from the client.
	checkPort = 9100
)

// checkCmd is host i's --check: a real connection from the client
// namespace to the host's metrics port, through the live ruleset.
func checkCmd(client string, i int) string {
	return fmt.Sprintf("ip netns exec %s timeout 2 bash -c 'exec 3<>/dev/tcp/%s/%d'", client, hostAddr(i), checkPort)
}

// Options of Run.
type Options struct {
	// Out receives the narrated transcript.
	Out io.Writer
	// Log receives every line of the agents and etcd (nil: discarded).
	Log io.Writer
	// Hosts is the number of hosts (default 5).
	Hosts int
	// PauseAt, for tests: the first line of the transcript that contains
	// it blocks until ctx ends, so that a signal arrives at a known step.
	PauseAt string
}

// Run starts a lab of o.Hosts hosts joined to a client namespace, pushes
// a good version in waves, shows it with real connections, pushes a bad
// one that the canary stops, pushes a third and rolls the fleet back,
// checking each outcome; it removes everything it made before it
// returns, whatever happens.
func Run(ctx context.Context, o Options) (err error) {
	if o.Hosts <= 0 {
		o.Hosts = 5
	}
	d := &run{o: o, w: o.Out}
	if o.PauseAt != "" {
		d.w = &pauser{ctx: ctx, w: o.Out, at: o.PauseAt}
	}
	lab, err := NewLab(LabOptions{NSPrefix: "fwslot-fdemo-", Group: "web", Log: o.Log, Heartbeat: 2 * time.Second})
	defer func() {
		if err != nil && ctx.Err() != nil {
			// What was running stopped with it; its advice (fleet
			// resume) is moot: the whole fleet goes.
			err = fmt.Errorf("the demo was stopped: %w", ctx.Err())
		}
		cerr := lab.Close()
		if cerr == nil {
			fmt.Fprintf(d.w, "\nremoved the %d host namespaces, the client namespace, etcd and %s\n", len(lab.Hosts), lab.Dir)
		}
		err = errors.Join(err, cerr)
	}()
	if err != nil {
		return err
	}
	d.lab = lab
	d.step("etcd (embedded, as `fwslot fleet serve` runs it) serves on %s, data in %s", lab.Endpoint, lab.Dir)
	if err := d.setup(ctx); err != nil {
		return err
	}
	return d.story(ctx)
}

type run struct {
	o      Options
	w      io.Writer
	lab    *Lab
	client string
	hashes map[string]int // source hash -> version number in the story
}

func (d *run) step(format string, args ...any) { fmt.Fprintf(d.w, "\n==> "+format+"\n", args...) }
func (d *run) say(format string, args ...any)  { fmt.Fprintf(d.w, "    "+format+"\n", args...) }

// setup makes the client namespace and the hosts, each linked to the
// client and serving on servicePorts, and starts their agents.
func (d *run) setup(ctx context.Context) error {
	client, err := d.lab.Namespace("client")
	if err != nil {
		return err
	}
	d.client = client
	for i := 1; i <= d.o.Hosts; i++ {
		h, err := d.lab.AddHost(fmt.Sprintf("web-%d", i))
		if err != nil {
			return err
		}
		if err := link(client, i, h); err != nil {
			return err
		}
		h.Local.CheckCmd = checkCmd(client, i)
		stop, err := listen(h.NetNS, servicePorts)
		if err != nil {
			return err
		}
		d.lab.push(stop)
		if err := d.lab.StartAgent(h); err != nil {
			return err
		}
		d.say("host %-6s namespace %s, eth0 %s, serving on %v; agent: --netns %s --db %s --host %s --check %q", h.Name, h.NetNS, hostAddr(i), servicePorts, h.NetNS, h.DB, h.Name, h.Local.CheckCmd)
	}
	if err := d.lab.WaitAlive(ctx, d.o.Hosts); err != nil {
		return err
	}
	d.say("client namespace %s has a link to every host", client)
	return d.table(ctx, func(s fleet.HostStatus) bool { return true })
}

// story is the walk-through; every outcome is checked, and a surprise
// ends the demo with an error.
func (d *run) story(ctx context.Context) error {
	d.hashes = map[string]int{history.HashSource(goodV1): 1, history.HashSource(badV2): 2, history.HashSource(goodV3): 3}
	d.step(`fwslot fleet push v1.nft --group web --probes web.probes --canary 1 --waves 50%%,100%% -m "serve the web on 443"`)
	if _, err := d.push(ctx, goodV1, "serve the web on 443"); err != nil {
		return err
	}
	if err := d.table(ctx, confirmedOn(history.HashSource(goodV1))); err != nil {
		return err
	}
	if err := d.packets("version 1", map[int]bool{443: true, 8443: false, 9100: true}); err != nil {
		return err
	}

	d.step(`fwslot fleet push v2.nft ... -m "tidy the ports"   (drops 9100, which the probes do not cover)`)
	_, err := d.push(ctx, badV2, "tidy the ports")
	var fe *fleet.FailedError
	if !errors.As(err, &fe) {
		if err == nil {
			err = errors.New("it went live everywhere")
		}
		return fmt.Errorf("the bad version was not stopped by the canary: %w", err)
	}
	first := d.lab.Hosts[0].Name
	if fe.Wave != 1 || len(fe.Failed) != 1 || fe.Failed[0].Host != first || !strings.Contains(fe.Failed[0].Reason, "health check of version 2 failed") {
		return fmt.Errorf("want the canary %s's live health check to stop the bad version in wave 1, got: %w", first, err)
	}
	d.say("the rollout stopped at the canary (exit 1 from fleet push):")
	for _, l := range strings.Split(err.Error(), "\n") {
		d.say("  %s", l)
	}
	d.say("the canary %s caught it live: version 2 passes the probes, so the hosts stage it; the canary swapped it, its --check failed and it reverted; the later waves never swapped", first)
	// The canary went back to version 1. The later waves never swapped:
	// production stays on version 1 and never left it (no revert), with
	// version 2 staged, or nothing if the pusher set the group back to
	// version 1 before they staged it.
	settled := func(s fleet.HostStatus) bool {
		if s.Production == nil || s.Production.Hash != history.HashSource(goodV1) {
			return false
		}
		if s.Host == first {
			return s.State == fleet.HostReverted
		}
		return s.State != fleet.HostReverted && s.State != fleet.HostHealthy && (s.Staging == nil || s.Staging.Hash == history.HashSource(badV2))
	}
	if err := d.table(ctx, settled); err != nil {
		return err
	}
	if err := d.neverLive(history.HashSource(badV2), first); err != nil {
		return err
	}
	if err := d.packets("version 1 still", map[int]bool{443: true, 8443: false, 9100: true}); err != nil {
		return err
	}

	d.step(`fwslot fleet push v3.nft ... -m "open 8443 for the API"`)
	if _, err := d.push(ctx, goodV3, "open 8443 for the API"); err != nil {
		return err
	}
	if err := d.table(ctx, confirmedOn(history.HashSource(goodV3))); err != nil {
		return err
	}
	if err := d.packets("version 3", map[int]bool{443: true, 8443: true, 9100: true}); err != nil {
		return err
	}

	d.step("fwslot fleet rollback --group web   (one etcd write; each agent flips to its other slot)")
	res, err := fleet.Rollback(ctx, d.lab.Client, d.lab.Keys, time.Minute)
	if err != nil {
		return err
	}
	if len(res.Failed) > 0 {
		return fmt.Errorf("fleet rollback: %d host(s) did not flip: %v", len(res.Failed), res.Failed)
	}
	d.say("version %d -> %d: %d of %d hosts flipped in %v", res.From.Version, res.Flip.Version, len(res.Hosts), d.o.Hosts, res.Took.Round(time.Millisecond))
	flipped := func(s fleet.HostStatus) bool {
		return s.Production != nil && s.Production.Hash == history.HashSource(goodV1)
	}
	if err := d.table(ctx, flipped); err != nil {
		return err
	}
	return d.packets("version 1 again", map[int]bool{443: true, 8443: false, 9100: true})
}

func confirmedOn(hash string) func(fleet.HostStatus) bool {
	return func(s fleet.HostStatus) bool {
		return s.State == fleet.HostConfirmed && s.Production != nil && s.Production.Hash == hash
	}
}

// push rolls src out in waves, narrating the pusher's steps.
func (d *run) push(ctx context.Context, src, msg string) (*fleet.RolloutState, error) {
	p := &fleet.Pusher{Client: d.lab.Client, Keys: d.lab.Keys, Log: &indent{w: d.w}}
	start := time.Now()
	st, err := p.Push(ctx, fleet.PushOptions{Source: []byte(src), Probes: demoProbes, Message: msg, Author: "fleet demo",
		Canary: 1, Waves: []int{50, 100}, Confirm: time.Minute})
	if err == nil {
		d.say("version %d is live and confirmed on all %d hosts in %v", st.Version, d.o.Hosts, time.Since(start).Round(time.Millisecond))
	}
	return st, err
}

// packets sends real connections from the client to every host and
// checks that want's ports are open or refused.
func (d *run) packets(what string, want map[int]bool) error {
	d.say("real packets from the client (%s):", what)
	var bad []string
	for i, h := range d.lab.Hosts {
		got := reach(d.client, i+1)
		var parts []string
		for _, p := range servicePorts {
			state := "refused"
			if got[p] {
				state = "open"
			}
			parts = append(parts, fmt.Sprintf("%d %s", p, state))
			if got[p] != want[p] {
				bad = append(bad, fmt.Sprintf("%s port %d %s", h.Name, p, state))
			}
		}
		d.say("  %s -> %-6s %s: %s", clientAddr(i+1), h.Name, hostAddr(i+1), strings.Join(parts, ", "))
	}
	if len(bad) > 0 {
		return fmt.Errorf("packets disagree with %s: %s", what, strings.Join(bad, "; "))
	}
	return nil
}

// indent writes each line it gets indented, for the pusher's narration.
type indent struct{ w io.Writer }

func (i *indent) Write(b []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if _, err := fmt.Fprintf(i.w, "    | %s\n", l); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}

// pauser blocks the first write that contains at until ctx ends.
type pauser struct {
	ctx    context.Context
	w      io.Writer
	at     string
	paused bool
}

func (p *pauser) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	if !p.paused && strings.Contains(string(b), p.at) {
		p.paused = true
		fmt.Fprintf(p.w, "(paused at %q until a signal)\n", p.at)
		<-p.ctx.Done()
	}
	return n, err
}

// neverLive checks in each host's own history that the version with
// hash went live on the canary only (and is no longer live there).
func (d *run) neverLive(hash, canary string) error {
	var wentLive []string
	for _, h := range d.lab.Hosts {
		live, err := everLive(h, hash)
		if err != nil {
			return err
		}
		if live {
			wentLive = append(wentLive, h.Name)
		}
	}
	if len(wentLive) != 1 || wentLive[0] != canary {
		return fmt.Errorf("version 2 went live on %v, want on the canary %s only", wentLive, canary)
	}
	d.say("each host's history: version 2 went live on %s only", canary)
	return nil
}

// everLive says whether h's history has an activation of the content
// with hash.
func everLive(h *Host, hash string) (bool, error) {
	store, err := history.Open(h.DB, history.Options{ReadOnly: true, Timeout: 10 * time.Second})
	if err != nil {
		return false, fmt.Errorf("history of %s: %w", h.Name, err)
	}
	defer store.Close()
	key := (&slots.Target{NetNS: h.NetNS}).Key()
	acts, err := store.Activations(key)
	if err != nil {
		return false, fmt.Errorf("history of %s: %w", h.Name, err)
	}
	for _, a := range acts {
		v, err := store.Meta(key, a.To)
		if err != nil {
			return false, fmt.Errorf("history of %s: %w", h.Name, err)
		}
		if v.Hash == hash {
			return true, nil
		}
	}
	return false, nil
}
