// Package etcdconn is the etcd client configuration shared by the fleet
// commands and the agent: endpoints, TLS files, user (its password only
// from the environment, never a flag, so it stays out of ps and shell
// history) and the key prefix. Client checks the configuration before it
// dials, and says which endpoint failed and why.
package etcdconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Defaults and the environment variables Register reads.
const (
	defaultEndpoint    = "http://127.0.0.1:2379"
	defaultPrefix      = "/fwslot/"
	defaultDialTimeout = 5 * time.Second
	envEndpoints       = "FWSLOT_ETCD"
	envPassword        = "FWSLOT_ETCD_PASSWORD"
)

// Config says how to reach etcd and where fwslot's keys live.
type Config struct {
	// Endpoints are etcd client URLs (http:// or https://).
	Endpoints []string
	// CACert verifies the servers (PEM); empty: the system's roots.
	CACert string
	// Cert and Key are the client certificate and key (PEM), both or
	// neither.
	Cert, Key string
	// User and Password authenticate to etcd; Password comes from
	// envPassword (FWSLOT_ETCD_PASSWORD), never from a flag.
	User, Password string
	// Prefix starts every fwslot key; it begins and ends with "/".
	Prefix string
	// DialTimeout bounds connecting and the first check of the
	// endpoints; 0 means defaultDialTimeout (5 s).
	DialTimeout time.Duration
	// Logger receives the etcd client's own log; nil discards it.
	Logger *zap.Logger
}

// Register adds --etcd, --etcd-cacert, --etcd-cert, --etcd-key,
// --etcd-user and --prefix to fs and returns the Config they fill.
// Defaults come from $FWSLOT_ETCD; the password from $FWSLOT_ETCD_PASSWORD.
func Register(fs *pflag.FlagSet) *Config {
	c := &Config{Password: os.Getenv(envPassword)}
	endpoints := []string{defaultEndpoint}
	if env := strings.TrimSpace(os.Getenv(envEndpoints)); env != "" {
		endpoints = splitList(env)
	}
	fs.StringSliceVar(&c.Endpoints, "etcd", endpoints, "etcd endpoints, comma-separated (env "+envEndpoints+")")
	fs.StringVar(&c.CACert, "etcd-cacert", "", "CA certificate (PEM) that signed the etcd servers' certificates")
	fs.StringVar(&c.Cert, "etcd-cert", "", "client certificate (PEM) for etcd; needs --etcd-key")
	fs.StringVar(&c.Key, "etcd-key", "", "client key (PEM) for --etcd-cert")
	fs.StringVar(&c.User, "etcd-user", "", "etcd user; the password is read from "+envPassword)
	fs.StringVar(&c.Prefix, "prefix", defaultPrefix, "prefix of every fwslot key in etcd")
	return c
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Validate checks the configuration without dialing: endpoints are
// http(s) URLs of one scheme, TLS files come with https, the certificate
// with its key, a user with a password, and the prefix is /.../.
func (c *Config) Validate() error {
	if len(c.Endpoints) == 0 {
		return errors.New("no etcd endpoint (--etcd or " + envEndpoints + ")")
	}
	scheme := ""
	for _, e := range c.Endpoints {
		u, err := url.Parse(e)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return fmt.Errorf("etcd endpoint %q: want a URL such as %s or https://10.0.0.1:2379", e, defaultEndpoint)
		}
		if scheme != "" && u.Scheme != scheme {
			return fmt.Errorf("etcd endpoints mix http and https (%s): use one scheme", strings.Join(c.Endpoints, ","))
		}
		scheme = u.Scheme
	}
	if (c.Cert == "") != (c.Key == "") {
		return errors.New("a client certificate needs both --etcd-cert and --etcd-key")
	}
	if scheme == "http" && (c.CACert != "" || c.Cert != "") {
		return fmt.Errorf("TLS files given but the etcd endpoints are plain http (%s): use https:// endpoints", strings.Join(c.Endpoints, ","))
	}
	if c.User != "" && c.Password == "" {
		return fmt.Errorf("--etcd-user %s needs its password in %s", c.User, envPassword)
	}
	if c.User == "" && c.Password != "" {
		return fmt.Errorf("%s is set but --etcd-user is not: name the user", envPassword)
	}
	if !strings.HasPrefix(c.Prefix, "/") || !strings.HasSuffix(c.Prefix, "/") {
		return fmt.Errorf("--prefix %q: want a key prefix that begins and ends with /, such as %s", c.Prefix, defaultPrefix)
	}
	return nil
}

// tlsConfig returns the client TLS configuration, nil for http endpoints.
func (c *Config) tlsConfig() (*tls.Config, error) {
	if !strings.HasPrefix(c.Endpoints[0], "https://") {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CACert != "" {
		pem, err := os.ReadFile(c.CACert)
		if err != nil {
			return nil, fmt.Errorf("read etcd CA certificate: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("etcd CA certificate %s: no PEM certificate in it", c.CACert)
		}
		tc.RootCAs = pool
	}
	if c.Cert != "" {
		pair, err := tls.LoadX509KeyPair(c.Cert, c.Key)
		if err != nil {
			return nil, fmt.Errorf("load etcd client certificate %s and key %s: %w", c.Cert, c.Key, err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}

// Client validates the configuration, connects, and checks that at least
// one endpoint answers (as the configured user). Its error names every
// endpoint that failed and why. The caller closes the client.
func (c *Config) Client(ctx context.Context) (*clientv3.Client, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	tc, err := c.tlsConfig()
	if err != nil {
		return nil, err
	}
	timeout := c.DialTimeout
	if timeout <= 0 {
		timeout = defaultDialTimeout
	}
	lg := c.Logger
	if lg == nil {
		lg = zap.NewNop()
	}
	cfg := clientv3.Config{
		Endpoints:   c.Endpoints,
		TLS:         tc,
		Username:    c.User,
		Password:    c.Password,
		DialTimeout: timeout,
		Logger:      lg,
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to etcd %s%s: %w", strings.Join(c.Endpoints, ","), c.as(), c.diagnose(tc, timeout, err))
	}
	if err := c.check(ctx, cli, timeout); err != nil {
		cli.Close()
		return nil, fmt.Errorf("no etcd endpoint answered%s: %w", c.as(), c.diagnose(tc, timeout, err))
	}
	return cli, nil
}

// check asks each endpoint for its status until one answers; when none
// does, the error lists each endpoint's failure.
func (c *Config) check(ctx context.Context, cli *clientv3.Client, timeout time.Duration) error {
	var errs []error
	for _, e := range c.Endpoints {
		sctx, cancel := context.WithTimeout(ctx, timeout)
		_, err := cli.Status(sctx, e)
		cancel()
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", e, err))
	}
	return errors.Join(errs...)
}

func (c *Config) as() string {
	if c.User == "" {
		return ""
	}
	return " as user " + c.User
}
