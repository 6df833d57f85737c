// Package fleetdemo runs a throwaway fleet on this machine: an embedded etcd
// (the one `fwslot fleet serve` runs) on 127.0.0.1 free ports with its
// data in a temporary directory, and hosts that are network namespaces,
// each kept by an agent running in this process. `fwslot fleet demo`
// narrates a rollout on it; the fleet benchmark times one. Everything it
// makes is removed by Close, on failure and after Ctrl-C too; the root
// network namespace is never touched.
package fleetdemo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fwslot/fwslot/fleet"
	"github.com/fwslot/fwslot/internal/etcdserve"
	"github.com/fwslot/fwslot/internal/nsutil"
	"github.com/fwslot/fwslot/session"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// LabOptions say how a Lab names what it makes.
type LabOptions struct {
	// NSPrefix starts every namespace name; the lab adds its pid, so that
	// a later lab of the same prefix removes what a killed one left.
	NSPrefix string
	// Group is the fleet group of the hosts.
	Group string
	// Log receives the agents' and etcd's lines (nil: discarded).
	Log io.Writer
	// Heartbeat is the agents' heartbeat (0: the agent's default).
	Heartbeat time.Duration
	// Wrap, when set, wraps each host's local operations before its
	// agent gets them (the benchmark bounds concurrent staging).
	Wrap func(fleet.Host) fleet.Host
}

// Host is one host of the lab: a namespace, its history file and the
// agent that keeps it.
type Host struct {
	// Name is the host's name in the group; NetNS its namespace; DB its
	// history file.
	Name, NetNS, DB string
	// Local is what its agent does on it (on the fwslot library).
	Local *fleet.LibHost
	stop  func()
}

// Lab is an embedded single-member etcd and in-process agents, one per
// namespace.
type Lab struct {
	// Dir is the lab's temporary directory: etcd's data and the hosts'
	// histories.
	Dir string
	// Endpoint is etcd's client URL.
	Endpoint string
	// Keys are the group's keys under the default prefix.
	Keys fleet.Keys
	// Client is the lab's own connection (the pusher's); each agent has
	// its own, as on a real fleet.
	Client *clientv3.Client
	// Hosts are the hosts AddHost made, in order.
	Hosts []*Host

	opts     LabOptions
	prefix   string
	srv      *etcdserve.Server
	wdCtx    context.Context
	wdCancel func()
	wd       sync.WaitGroup
	mu       sync.Mutex
	// undo runs in reverse order in Close.
	undo []func() error
}

// NewLab makes the temporary directory and starts etcd on free loopback
// ports. The caller calls Close, also when NewLab fails.
func NewLab(o LabOptions) (*Lab, error) {
	pid := os.Getpid()
	l := &Lab{opts: o, prefix: fmt.Sprintf("%s%d-", o.NSPrefix, pid), Keys: fleet.Keys{Prefix: fleet.DefaultPrefix, Group: o.Group}}
	l.wdCtx, l.wdCancel = context.WithCancel(context.Background())
	if _, err := nsutil.SweepStale(o.NSPrefix); err != nil {
		return l, fmt.Errorf("remove namespaces a killed run left: %w", err)
	}
	dir, err := os.MkdirTemp("", fmt.Sprintf("fwslot-fleet-%d-", pid))
	if err != nil {
		return l, fmt.Errorf("temporary directory: %w", err)
	}
	l.Dir = dir
	l.push(func() error { return os.RemoveAll(dir) })
	// A port found free may be taken before etcd binds it: try again.
	for try := 0; ; try++ {
		ports, err := etcdserve.FreePorts(2)
		if err != nil {
			return l, err
		}
		l.srv, err = etcdserve.Start(etcdserve.Config{DataDir: filepath.Join(dir, "etcd"), Name: "fwslot-demo",
			ListenClient: fmt.Sprintf("http://127.0.0.1:%d", ports[0]), ListenPeer: fmt.Sprintf("http://127.0.0.1:%d", ports[1]), Log: o.Log})
		if err == nil {
			break
		}
		if try == 2 {
			return l, err
		}
		if rerr := os.RemoveAll(filepath.Join(dir, "etcd")); rerr != nil {
			return l, errors.Join(err, rerr)
		}
	}
	l.push(func() error { l.srv.Close(); return nil })
	l.Endpoint = l.srv.Endpoint()
	if l.Client, err = l.connect(); err != nil {
		return l, err
	}
	l.push(l.Client.Close)
	return l, nil
}

func (l *Lab) connect() (*clientv3.Client, error) {
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{l.Endpoint}, DialTimeout: 5 * time.Second,
		// Its retries after a cancel are not news; errors come back.
		Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("connect to etcd %s: %w", l.Endpoint, err)
	}
	return c, nil
}

func (l *Lab) push(f func() error) {
	l.mu.Lock()
	l.undo = append(l.undo, f)
	l.mu.Unlock()
}

// Namespace creates a namespace named after the lab's prefix and pid;
// Close removes it.
func (l *Lab) Namespace(suffix string) (string, error) {
	name := l.prefix + suffix
	if err := nsutil.CreateNamed(name); err != nil {
		return "", err
	}
	l.push(func() error { return nsutil.Delete(name) })
	return name, nil
}

// AddHost creates host name's namespace and history path; StartAgent
// starts its agent.
func (l *Lab) AddHost(name string) (*Host, error) {
	ns, err := l.Namespace(name)
	if err != nil {
		return nil, err
	}
	h := &Host{Name: name, NetNS: ns, DB: filepath.Join(l.Dir, name+".db")}
	h.Local = &fleet.LibHost{NetNS: ns, DB: h.DB, StartWatchdog: l.watchdog(h)}
	l.mu.Lock()
	l.Hosts = append(l.Hosts, h)
	l.mu.Unlock()
	return h, nil
}

// watchdog returns what reverts h's unconfirmed swap at its deadline: a
// goroutine of this process that ends with the lab (an agent's detached
// watchdog process would outlive it).
func (l *Lab) watchdog(h *Host) func(t *session.Target, res *session.Result) error {
	return func(t *session.Target, res *session.Result) error {
		owner, err := t.Store.ID()
		if err != nil {
			return err
		}
		w := &session.Watchdog{NetNS: h.NetNS, DB: h.DB, Owner: owner, Seq: res.Seq, From: res.From, To: res.To, Deadline: res.Deadline, Log: l.opts.Log}
		l.wd.Add(1)
		go func() {
			defer l.wd.Done()
			_ = w.Run(l.wdCtx) // it logs what it does; ends with the lab
		}()
		return nil
	}
}

// StartAgent runs h's agent in a goroutine, on a connection of its own,
// until Close (or StopAgent).
func (l *Lab) StartAgent(h *Host) error {
	c, err := l.connect()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var local fleet.Host = h.Local
	if l.opts.Wrap != nil {
		local = l.opts.Wrap(local)
	}
	a := &fleet.Agent{Client: c, Keys: l.Keys, Name: h.Name, Local: local, Log: l.opts.Log, Retry: 500 * time.Millisecond, Heartbeat: l.opts.Heartbeat}
	go func() {
		defer close(done)
		_ = a.Run(ctx) // returns nil when ctx ends
	}()
	var once sync.Once
	h.stop = func() {
		once.Do(func() {
			cancel()
			<-done
			c.Close()
		})
	}
	l.push(func() error { h.stop(); return nil })
	return nil
}

// StopAgent stops h's agent (its liveness key goes at once).
func (l *Lab) StopAgent(h *Host) {
	if h.stop != nil {
		h.stop()
	}
}

// WaitAlive waits until n agents hold their liveness key.
func (l *Lab) WaitAlive(ctx context.Context, n int) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r, err := l.Client.Get(wctx, l.Keys.Alives(), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return fmt.Errorf("count live agents: %w", err)
	}
	alive := r.Count
	wch := l.Client.Watch(wctx, l.Keys.Alives(), clientv3.WithPrefix(), clientv3.WithRev(r.Header.Revision+1))
	for alive < int64(n) {
		wr, ok := <-wch
		if !ok || wr.Err() != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("watch live agents: %v", wr.Err())
		}
		for _, ev := range wr.Events {
			if ev.Type == clientv3.EventTypePut && ev.IsCreate() {
				alive++
			} else if ev.Type == clientv3.EventTypeDelete {
				alive--
			}
		}
	}
	return nil
}

// Close stops the agents and their watchdogs, then etcd, removes every
// namespace and the temporary directory, and says what it could not
// remove.
func (l *Lab) Close() error {
	l.mu.Lock()
	undo, hosts := l.undo, l.Hosts
	l.undo = nil
	l.mu.Unlock()
	// Agents and watchdogs first: nothing may act on a host while its
	// namespace and history go.
	for _, h := range hosts {
		l.StopAgent(h)
	}
	l.wdCancel()
	l.wd.Wait()
	var errs []error
	for i := len(undo) - 1; i >= 0; i-- {
		if err := undo[i](); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("remove the lab: %w", errors.Join(errs...))
	}
	return nil
}
