package etcdserve

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// freeURLs returns two http URLs on 127.0.0.1 ports that were free.
func freeURLs(t *testing.T) (client, peer string) {
	t.Helper()
	var urls []string
	var ls []net.Listener
	for i := 0; i < 2; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		urls = append(urls, "http://"+l.Addr().String())
	}
	for _, l := range ls {
		l.Close()
	}
	return urls[0], urls[1]
}

// startFree starts a member on free ports, retrying when another process
// takes a port between the pick and the bind.
func startFree(t *testing.T, dir string) *Server {
	t.Helper()
	for attempt := 0; ; attempt++ {
		client, peer := freeURLs(t)
		srv, err := Start(Config{DataDir: dir, ListenClient: client, ListenPeer: peer, Log: &bytes.Buffer{}})
		if err == nil {
			return srv
		}
		if attempt == 4 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatal(err)
		}
	}
}

func client(t *testing.T, endpoint string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// A member serves, stops on Serve's context (releasing its port), and a
// member started again on the same data directory has the data.
func TestServeStopRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "etcd")
	srv := startFree(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := client(t, srv.Endpoint()).Put(ctx, "/fwslot/k", "kept"); err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx) }()
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Serve after its context ended: %v", err)
	}
	host := strings.TrimPrefix(srv.Endpoint(), "http://")
	if c, err := net.Dial("tcp", host); err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections after Serve returned", host)
	}
	again := startFree(t, dir)
	defer again.Close()
	resp, err := client(t, again.Endpoint()).Get(ctx, "/fwslot/k")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "kept" {
		t.Fatalf("after restart /fwslot/k = %v, want kept", resp.Kvs)
	}
}

// Validate refuses configurations etcd would refuse later or that could
// not work, and says why.
func TestValidate(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want string // "" valid
	}{
		{"defaults", Config{DataDir: "d"}, ""},
		{"no data dir", Config{}, "data directory"},
		{"all addresses, advertised", Config{DataDir: "d", ListenClient: "http://0.0.0.0:2379", AdvertiseClient: "http://10.0.0.1:2379"}, ""},
		{"all addresses, nothing advertised", Config{DataDir: "d", ListenClient: "http://0.0.0.0:2379"}, "listens on every address"},
		{"peer on all addresses", Config{DataDir: "d", ListenPeer: "http://[::]:2380"}, "listens on every address"},
		{"https", Config{DataDir: "d", ListenClient: "https://127.0.0.1:2379"}, "want http://HOST:PORT"},
		{"no port", Config{DataDir: "d", ListenClient: "http://127.0.0.1"}, "want http://HOST:PORT"},
		{"path", Config{DataDir: "d", ListenClient: "http://127.0.0.1:2379/x"}, "want http://HOST:PORT"},
		{"same port", Config{DataDir: "d", ListenClient: "http://127.0.0.1:2379", ListenPeer: "http://127.0.0.1:2379"}, "its own port"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.cfg.Validate()
			if c.want == "" && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Fatalf("got %v, want an error with %q", err, c.want)
			}
		})
	}
}

// A port already taken makes Start fail, naming the URL.
func TestStartPortTaken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, peer := freeURLs(t)
	taken := fmt.Sprintf("http://%s", l.Addr())
	_, err = Start(Config{DataDir: t.TempDir(), ListenClient: taken, ListenPeer: peer})
	if err == nil || !strings.Contains(err.Error(), taken) || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("got %v, want an error naming %s in use", err, taken)
	}
}
