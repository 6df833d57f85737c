// Package etcdserve runs a single-member etcd inside fwslot
// (go.etcd.io/etcd/server/v3/embed), for `fwslot fleet serve` and the
// fleet demo: a lab or a small site needs no separate etcd install.
// Larger sites run a real etcd cluster and point the fleet at it.
package etcdserve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Defaults of Config.
const (
	DefaultListenClient = "http://127.0.0.1:2379"
	DefaultListenPeer   = "http://127.0.0.1:2380"
	DefaultName         = "fwslot"
	// ReadyTimeout bounds how long Start waits for the member to serve.
	ReadyTimeout = time.Minute
)

// Config says where the member keeps its data and listens.
type Config struct {
	// DataDir holds the member's data; it is created (0700) if missing.
	DataDir string
	// ListenClient and ListenPeer are http(s) URLs with a concrete host
	// (an unspecified address such as 0.0.0.0 needs an Advertise URL).
	ListenClient, ListenPeer string
	// AdvertiseClient and AdvertisePeer are the URLs given to clients
	// and peers; empty: the listen URLs.
	AdvertiseClient, AdvertisePeer string
	// Name is the member's name; empty: DefaultName.
	Name string
	// Log receives the member's warnings and errors; nil: discarded.
	Log io.Writer
}

// Server is a running member.
type Server struct {
	etcd    *embed.Etcd
	closing *atomic.Bool
	client  string
}

// Validate checks cfg without starting anything: a data directory, http
// URLs with ports, distinct client and peer addresses, and an advertised
// URL for a listener on every address.
func (c Config) Validate() error {
	_, err := c.resolve()
	return err
}

// resolved is a Config with defaults applied and URLs parsed.
type resolved struct {
	Config
	lc, ac, lp, ap url.URL
}

func (c Config) resolve() (*resolved, error) {
	if c.DataDir == "" {
		return nil, errors.New("etcd needs a data directory")
	}
	if c.ListenClient == "" {
		c.ListenClient = DefaultListenClient
	}
	if c.ListenPeer == "" {
		c.ListenPeer = DefaultListenPeer
	}
	if c.Name == "" {
		c.Name = DefaultName
	}
	r := &resolved{Config: c}
	var err error
	if r.lc, r.ac, err = urls("client", c.ListenClient, c.AdvertiseClient); err != nil {
		return nil, err
	}
	if r.lp, r.ap, err = urls("peer", c.ListenPeer, c.AdvertisePeer); err != nil {
		return nil, err
	}
	if r.lc.Host == r.lp.Host {
		return nil, fmt.Errorf("etcd client and peer URLs both listen on %s: give each its own port", r.lc.Host)
	}
	return r, nil
}

// Start starts the member and waits until it serves clients.
func Start(c Config) (*Server, error) {
	cfg, err := c.resolve()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("etcd data directory: %w", err)
	}
	lc, ac, lp, ap := cfg.lc, cfg.ac, cfg.lp, cfg.ap
	ec := embed.NewConfig()
	ec.Name = cfg.Name
	ec.Dir = cfg.DataDir
	ec.ListenClientUrls, ec.AdvertiseClientUrls = []url.URL{lc}, []url.URL{ac}
	ec.ListenPeerUrls, ec.AdvertisePeerUrls = []url.URL{lp}, []url.URL{ap}
	ec.InitialCluster = cfg.Name + "=" + ap.String()
	ec.InitialClusterToken = "fwslot-" + cfg.Name
	closing := &atomic.Bool{}
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(logger(cfg.Log, closing))
	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("start etcd (clients %s, peers %s, data %s): %w", lc.String(), lp.String(), cfg.DataDir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		closing.Store(true)
		e.Close()
		return nil, fmt.Errorf("etcd failed while starting: %w", err)
	case <-time.After(ReadyTimeout):
		closing.Store(true)
		e.Close()
		return nil, fmt.Errorf("etcd did not serve within %v (data %s)", ReadyTimeout, cfg.DataDir)
	}
	return &Server{etcd: e, closing: closing, client: ac.String()}, nil
}

// urls parses a listen URL and its advertised URL (default: the listen
// one, which then must name a concrete host).
func urls(kind, listen, advertise string) (l, a url.URL, err error) {
	lu, err := parseURL(kind, "listen", listen)
	if err != nil {
		return l, a, err
	}
	if advertise == "" {
		if ip := net.ParseIP(lu.Hostname()); ip != nil && ip.IsUnspecified() {
			return l, a, fmt.Errorf("etcd %s URL %s listens on every address: name the address to advertise to %ss", kind, listen, kind)
		}
		return *lu, *lu, nil
	}
	au, err := parseURL(kind, "advertise", advertise)
	if err != nil {
		return l, a, err
	}
	return *lu, *au, nil
}

func parseURL(kind, role, s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "http" || u.Port() == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("etcd %s %s URL %q: want http://HOST:PORT such as %s", kind, role, s, DefaultListenClient)
	}
	u.Path = ""
	return u, nil
}

// Endpoint returns the client URL the member advertises.
func (s *Server) Endpoint() string { return s.client }

// Err receives an error when the member fails while serving.
func (s *Server) Err() <-chan error { return s.etcd.Err() }

// Close stops the member cleanly: in-flight requests finish (bounded by
// etcd's request timeout), the data is synced, the ports are released.
func (s *Server) Close() {
	s.closing.Store(true)
	s.etcd.Close()
}

// Serve runs the member until ctx ends, then stops it. It returns an error
// only if the member fails while serving.
func (s *Server) Serve(ctx context.Context) error {
	select {
	case <-ctx.Done():
		s.Close()
		return nil
	case err := <-s.Err():
		s.Close()
		return fmt.Errorf("etcd stopped serving: %w", err)
	}
}

// logger writes warnings and errors to w, and nothing once the member is
// closing (etcd reports its own listeners closing as errors).
func logger(w io.Writer, closing *atomic.Bool) *zap.Logger {
	if w == nil {
		return zap.NewNop()
	}
	ec := zap.NewProductionEncoderConfig()
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	enc := zapcore.NewConsoleEncoder(ec)
	core := zapcore.NewCore(enc, zapcore.AddSync(w), zap.WarnLevel)
	return zap.New(&quietCore{Core: core, closing: closing})
}

// quietCore drops every entry once closing is set.
type quietCore struct {
	zapcore.Core
	closing *atomic.Bool
}

func (q *quietCore) With(fields []zapcore.Field) zapcore.Core {
	return &quietCore{Core: q.Core.With(fields), closing: q.closing}
}

func (q *quietCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if q.closing.Load() {
		return ce
	}
	if q.Enabled(e.Level) {
		return ce.AddCore(e, q)
	}
	return ce
}

// FreePorts returns n distinct TCP ports of 127.0.0.1 that were free a
// moment ago (all held open until every one is picked, so that they
// differ). Another process may take one before the member binds it:
// callers retry on a lost race.
func FreePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick a free port on 127.0.0.1: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
