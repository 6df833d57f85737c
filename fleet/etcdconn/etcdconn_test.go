package etcdconn

import (
	"context"
	"net"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fwslot/fwslot/internal/etcdtest"
	"github.com/spf13/pflag"
)

// Flags and environment fill the Config; the password has no flag.
func TestRegister(t *testing.T) {
	cases := []struct {
		name     string
		env      map[string]string
		args     []string
		want     Config
		parseErr bool
	}{
		{"defaults", nil, nil, Config{Endpoints: []string{defaultEndpoint}, Prefix: defaultPrefix}, false},
		{"env endpoints and password", map[string]string{envEndpoints: "https://a:2379, https://b:2379", envPassword: "pw"}, []string{"--etcd-user", "agent"},
			Config{Endpoints: []string{"https://a:2379", "https://b:2379"}, User: "agent", Password: "pw", Prefix: defaultPrefix}, false},
		{"flags beat env", map[string]string{envEndpoints: "http://env:2379"}, []string{"--etcd", "https://x:2379,https://y:2379", "--etcd-cacert", "ca.pem", "--etcd-cert", "c.pem", "--etcd-key", "k.pem", "--prefix", "/lab/"},
			Config{Endpoints: []string{"https://x:2379", "https://y:2379"}, CACert: "ca.pem", Cert: "c.pem", Key: "k.pem", Prefix: "/lab/"}, false},
		{"no password flag", nil, []string{"--etcd-password", "pw"}, Config{}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv(envEndpoints, "")
			t.Setenv(envPassword, "")
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
			fs.SetOutput(&strings.Builder{})
			got := Register(fs)
			err := fs.Parse(c.args)
			if c.parseErr {
				if err == nil {
					t.Fatalf("parsed %v, want an error", c.args)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, c.want) {
				t.Errorf("got %+v, want %+v", *got, c.want)
			}
		})
	}
}

// Validate refuses, before any dial, what cannot work or would be unsafe.
func TestValidate(t *testing.T) {
	ok := Config{Endpoints: []string{"https://127.0.0.1:2379"}, Prefix: defaultPrefix}
	cases := []struct {
		name string
		edit func(c *Config)
		want string // "" valid
	}{
		{"valid", func(c *Config) {}, ""},
		{"no endpoint", func(c *Config) { c.Endpoints = nil }, "no etcd endpoint"},
		{"no scheme", func(c *Config) { c.Endpoints = []string{"127.0.0.1:2379"} }, `etcd endpoint "127.0.0.1:2379": want a URL`},
		{"other scheme", func(c *Config) { c.Endpoints = []string{"unix:///run/etcd"} }, "want a URL"},
		{"path", func(c *Config) { c.Endpoints = []string{"http://h:2379/v3"} }, "want a URL"},
		{"mixed schemes", func(c *Config) { c.Endpoints = []string{"https://a:1", "http://b:1"} }, "mix http and https"},
		{"cert without key", func(c *Config) { c.Cert = "c.pem" }, "both --etcd-cert and --etcd-key"},
		{"key without cert", func(c *Config) { c.Key = "k.pem" }, "both --etcd-cert and --etcd-key"},
		{"TLS files over http", func(c *Config) { c.Endpoints = []string{"http://a:1"}; c.CACert = "ca.pem" }, "plain http"},
		{"user without password", func(c *Config) { c.User = "agent" }, "needs its password in FWSLOT_ETCD_PASSWORD"},
		{"password without user", func(c *Config) { c.Password = "pw" }, "--etcd-user is not"},
		{"prefix without leading /", func(c *Config) { c.Prefix = "fwslot/" }, "--prefix"},
		{"prefix without trailing /", func(c *Config) { c.Prefix = "/fwslot" }, "--prefix"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := ok
			c.edit(&cfg)
			err := cfg.Validate()
			if c.want == "" && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Fatalf("got %v, want an error with %q", err, c.want)
			}
		})
	}
}

// deadEndpoint is a 127.0.0.1 URL where nothing listens.
func deadEndpoint(t *testing.T, scheme string) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return scheme + "://" + addr
}

// Client connects to real etcd, plain, TLS with client certificates and
// with user/password, and refuses (naming the endpoint and the cause) a
// server it must not trust, missing credentials and dead endpoints.
func TestClient(t *testing.T) {
	plain := etcdtest.Start(t, etcdtest.Options{})
	secure := etcdtest.Start(t, etcdtest.Options{TLS: true, Auth: true})
	secure.AddRole(t, "fleet-reader", etcdtest.Perm{Type: etcdtest.ReadWrite, Key: "/fwslot/", Prefix: true})
	secure.AddUser(t, "agent", "agent-pw", "fleet-reader")
	files := secure.TLS()
	foreign := etcdtest.NewTLSFiles(t)
	tlsCfg := func(user, pw string) Config {
		return Config{Endpoints: secure.Endpoints(), CACert: files.CA, Cert: files.ClientCert, Key: files.ClientKey, User: user, Password: pw, Prefix: defaultPrefix}
	}
	dial := time.Second
	cases := []struct {
		name string
		cfg  Config
		want []string // substrings of the error; nil: connects
	}{
		{"plain", Config{Endpoints: plain.Endpoints(), Prefix: defaultPrefix}, nil},
		{"plain, one dead endpoint first", Config{Endpoints: append([]string{deadEndpoint(t, "http")}, plain.Endpoints()...), Prefix: defaultPrefix}, nil},
		{"TLS client cert, user and password", tlsCfg("agent", "agent-pw"), nil},
		{"TLS, wrong CA", func() Config { c := tlsCfg("agent", "agent-pw"); c.CACert = foreign.CA; return c }(),
			[]string{secure.Endpoints()[0], "certificate signed by unknown authority"}},
		{"TLS, no client certificate", func() Config { c := tlsCfg("", ""); c.Cert, c.Key = "", ""; return c }(),
			[]string{secure.Endpoints()[0], "certificate required"}},
		{"TLS, client certificate of another CA", func() Config { c := tlsCfg("", ""); c.Cert, c.Key = foreign.ClientCert, foreign.ClientKey; return c }(),
			[]string{secure.Endpoints()[0], "unknown certificate authority"}},
		{"wrong password", tlsCfg("agent", "nope"), []string{"as user agent", "authentication failed"}},
		{"CA file missing", func() Config { c := tlsCfg("", ""); c.CACert = filepath.Join(t.TempDir(), "none.pem"); return c }(),
			[]string{"read etcd CA certificate", "none.pem"}},
		{"CA file not PEM", func() Config { c := tlsCfg("", ""); c.CACert = files.ClientKey; return c }(),
			[]string{"no PEM certificate"}},
		{"dead endpoint", Config{Endpoints: []string{deadEndpoint(t, "http")}, Prefix: defaultPrefix}, []string{"no etcd endpoint answered", "http://127.0.0.1:", "connection refused"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.DialTimeout = dial
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cli, err := c.cfg.Client(ctx)
			if c.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				defer cli.Close()
				if _, err := cli.Put(ctx, "/fwslot/conn", c.name); err != nil {
					t.Fatalf("put: %v", err)
				}
				return
			}
			if err == nil {
				cli.Close()
				t.Fatalf("connected, want a refusal naming %q", c.want)
			}
			t.Logf("refused: %v", err)
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}
