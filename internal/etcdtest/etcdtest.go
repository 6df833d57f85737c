// Package etcdtest starts real etcd servers (go.etcd.io/etcd/server/v3/embed)
// inside a test: one member or a 3-member cluster, plain or TLS with
// client-certificate authentication, with or without etcd authentication.
// Members listen on 127.0.0.1 ports picked free (a start that loses a bind
// race retries on new ports), keep their data in t.TempDir(), log only
// errors (printed when the test fails) and stop with t.Cleanup.
package etcdtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fwslot/fwslot/internal/etcdserve"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Options say what kind of etcd to start.
type Options struct {
	// Members is the cluster size: 0 or 1 for a single member, 3 for a
	// cluster that survives losing one.
	Members int
	// TLS serves clients over https with certificates from a generated
	// CA and requires a client certificate signed by it.
	TLS bool
	// Auth enables etcd authentication with user "root" (password
	// RootPassword) holding the root role.
	Auth bool
}

// RootPassword is the password of the root user when Options.Auth is set.
const RootPassword = "root-secret"

// startTimeout bounds how long a start waits for the cluster to serve.
const startTimeout = 60 * time.Second

// bindAttempts is how often a start retries after losing a port to
// another process between picking it and binding it.
const bindAttempts = 5

// Cluster is a running etcd of one or more members.
type Cluster struct {
	t       testing.TB
	opts    Options
	members []*Member
	tls     *TLSFiles
}

// Member is one etcd server of a Cluster.
type Member struct {
	t       testing.TB
	name    string
	dir     string
	client  url.URL
	peer    url.URL
	initial string // the cluster's initial-cluster string
	tls     *TLSFiles
	log     *logBuffer

	mu   sync.Mutex
	etcd *embed.Etcd // nil while stopped
}

// Start starts etcd as opts say and registers its stop with t.Cleanup.
// It fails the test if etcd does not serve within a minute.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	return start(t, opts, etcdserve.FreePorts)
}

// start is Start with the port picker given.
func start(t testing.TB, opts Options, pick func(n int) ([]int, error)) *Cluster {
	t.Helper()
	n := opts.Members
	if n == 0 {
		n = 1
	}
	c := &Cluster{t: t, opts: opts}
	root := t.TempDir()
	if opts.TLS {
		c.tls = newTLSFiles(t, filepath.Join(root, "pki"))
	}
	t.Cleanup(c.stopAll)
	var err error
	for attempt := 1; attempt <= bindAttempts; attempt++ {
		err = c.startAll(filepath.Join(root, fmt.Sprintf("try%d", attempt)), n, pick)
		if err == nil {
			break
		}
		c.stopAll()
		if !isAddrInUse(err) {
			t.Fatalf("etcdtest: %v", err)
		}
	}
	if err != nil {
		t.Fatalf("etcdtest: %d attempts lost their ports to other processes: %v", bindAttempts, err)
	}
	if opts.Auth {
		c.enableAuth()
	}
	return c
}

// startAll picks ports for n members under dir and starts them all.
func (c *Cluster) startAll(dir string, n int, pick func(n int) ([]int, error)) error {
	c.members = nil
	var initial []string
	// All ports at once, so that no two members get the same one.
	ports, err := pick(2 * n)
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		scheme := "http"
		if c.tls != nil {
			scheme = "https"
		}
		m := &Member{
			t:      c.t,
			name:   fmt.Sprintf("m%d", i),
			client: url.URL{Scheme: scheme, Host: fmt.Sprintf("127.0.0.1:%d", ports[2*i])},
			peer:   url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[2*i+1])},
			tls:    c.tls,
			log:    &logBuffer{},
		}
		m.dir = filepath.Join(dir, m.name)
		c.members = append(c.members, m)
		initial = append(initial, m.name+"="+m.peer.String())
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, m := range c.members {
		m.initial = strings.Join(initial, ",")
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = m.start(true)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// stopAll stops every member; it prints their logs if the test failed.
func (c *Cluster) stopAll() {
	for _, m := range c.members {
		m.Stop()
		if c.t.Failed() {
			if logs := m.log.String(); logs != "" {
				c.t.Logf("etcd member %s logged:\n%s", m.name, logs)
			}
		}
	}
}

// Members returns the cluster's members, in start order.
func (c *Cluster) Members() []*Member { return append([]*Member(nil), c.members...) }

// Endpoints returns the client URLs of every member (stopped ones too).
func (c *Cluster) Endpoints() []string {
	var out []string
	for _, m := range c.members {
		out = append(out, m.Endpoint())
	}
	return out
}

// TLS returns the certificate files of a TLS cluster, nil otherwise.
func (c *Cluster) TLS() *TLSFiles { return c.tls }

// Client returns a client of every member, authenticated as root when
// the cluster has auth and with the client certificate when it has TLS.
// It is closed at cleanup.
func (c *Cluster) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	if c.opts.Auth {
		return c.ClientAs(t, "root", RootPassword)
	}
	return c.ClientAs(t, "", "")
}

// ClientAs returns a client of every member authenticated as user with
// password (no credentials when user is empty). It is closed at cleanup.
func (c *Cluster) ClientAs(t testing.TB, user, password string) *clientv3.Client {
	t.Helper()
	cfg := clientv3.Config{
		Endpoints:   c.Endpoints(),
		DialTimeout: 10 * time.Second,
		Username:    user,
		Password:    password,
		Logger:      zap.NewNop(),
	}
	if c.tls != nil {
		tc, err := c.tls.ClientConfig()
		if err != nil {
			t.Fatalf("etcdtest: %v", err)
		}
		cfg.TLS = tc
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		t.Fatalf("etcdtest: client for %v as %q: %v", cfg.Endpoints, user, err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// Name returns the member's name (m0, m1, ...).
func (m *Member) Name() string { return m.name }

// Endpoint returns the member's client URL.
func (m *Member) Endpoint() string { return m.client.String() }

// Running reports whether the member is started.
func (m *Member) Running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.etcd != nil
}

// Stop stops the member, keeping its data; stopping a stopped member
// does nothing.
func (m *Member) Stop() {
	m.mu.Lock()
	e := m.etcd
	m.etcd = nil
	m.mu.Unlock()
	if e != nil {
		// etcd reports its own listeners closing as errors: keep them
		// out of the log a failing test prints.
		m.log.closing.Store(true)
		e.Close()
		m.log.closing.Store(false)
	}
}

// Restart starts a stopped member again on its old ports and data. It
// waits until the member serves (which, in a cluster, needs a quorum).
func (m *Member) Restart(t testing.TB) {
	t.Helper()
	if m.Running() {
		t.Fatalf("etcdtest: restart of member %s, which is running", m.name)
	}
	var err error
	for attempt := 1; attempt <= bindAttempts; attempt++ {
		if err = m.start(false); err == nil || !isAddrInUse(err) {
			break
		}
		// The ports are this member's identity in the cluster: wait for
		// whatever holds them rather than pick new ones.
		time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("etcdtest: restart member %s: %v", m.name, err)
	}
}

// start starts the member and waits until it serves.
func (m *Member) start(fresh bool) error {
	cfg := embed.NewConfig()
	cfg.Name = m.name
	cfg.Dir = m.dir
	cfg.ListenClientUrls = []url.URL{m.client}
	cfg.AdvertiseClientUrls = []url.URL{m.client}
	cfg.ListenPeerUrls = []url.URL{m.peer}
	cfg.AdvertisePeerUrls = []url.URL{m.peer}
	cfg.InitialCluster = m.initial
	cfg.InitialClusterToken = "etcdtest"
	if !fresh {
		cfg.ClusterState = embed.ClusterStateFlagExisting
	}
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(m.log.logger())
	// Test data dies with the test: skip fsync, and make bcrypt cheap.
	cfg.UnsafeNoFsync = true
	cfg.BcryptCost = 4
	if m.tls != nil {
		cfg.ClientTLSInfo.CertFile = m.tls.ServerCert
		cfg.ClientTLSInfo.KeyFile = m.tls.ServerKey
		cfg.ClientTLSInfo.TrustedCAFile = m.tls.CA
		cfg.ClientTLSInfo.ClientCertAuth = true
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return fmt.Errorf("start member %s (client %s, peer %s): %w", m.name, m.client.Host, m.peer.Host, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return fmt.Errorf("member %s failed while starting: %w", m.name, err)
	case <-time.After(startTimeout):
		e.Close()
		return fmt.Errorf("member %s did not serve within %v", m.name, startTimeout)
	}
	m.mu.Lock()
	m.etcd = e
	m.mu.Unlock()
	return nil
}

// isAddrInUse reports whether err is a lost bind race.
func isAddrInUse(err error) bool {
	return errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use")
}

// logBuffer keeps a member's errors for the test's log, except while
// the member is closing.
type logBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	closing atomic.Bool
}

func (b *logBuffer) Write(p []byte) (int, error) {
	if b.closing.Load() {
		return len(p), nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) Sync() error { return nil }

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *zap.Logger {
	enc := zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig())
	return zap.New(zapcore.NewCore(enc, b, zapcore.ErrorLevel))
}

// ctx returns a context bounded for one setup request.
func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}
