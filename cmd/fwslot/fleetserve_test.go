package main

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// freeAddrs returns n distinct 127.0.0.1 addresses whose ports were free.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var addrs []string
	var ls []net.Listener
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		addrs = append(addrs, l.Addr().String())
	}
	for _, l := range ls {
		l.Close()
	}
	return addrs
}

// servingEtcd is a running `fwslot fleet serve`.
type servingEtcd struct {
	cmd      *exec.Cmd
	endpoint string
	stdout   *syncBuffer
	stderr   *syncBuffer
	done     chan struct{} // closed when stdout ends
}

// startFleetServe starts `fwslot fleet serve` on 127.0.0.1 ports that
// were free, retrying when another process takes one first, and waits
// until it says it serves.
func startFleetServe(t *testing.T, bin, dir string) *servingEtcd {
	t.Helper()
	for attempt := 0; attempt < 5; attempt++ {
		addrs := freeAddrs(t, 2)
		s := &servingEtcd{endpoint: "http://" + addrs[0], stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
		s.cmd = exec.Command(bin, "fleet", "serve", "--data-dir", dir, "--listen-client", s.endpoint, "--listen-peer", "http://"+addrs[1])
		s.cmd.Stderr = s.stderr
		out, err := s.cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := s.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		first := make(chan string, 1)
		go func() {
			defer close(s.done)
			sc := bufio.NewScanner(out)
			for n := 0; sc.Scan(); n++ {
				s.stdout.Write([]byte(sc.Text() + "\n"))
				if n == 0 {
					first <- sc.Text()
				}
			}
			close(first)
		}()
		line := <-first
		if strings.HasPrefix(line, "etcd serving clients on "+s.endpoint) {
			return s
		}
		<-s.done
		err = s.cmd.Wait()
		if !strings.Contains(s.stderr.String(), "address already in use") {
			t.Fatalf("fleet serve did not start (%v):\n%s%s", err, s.stdout.String(), s.stderr.String())
		}
	}
	t.Fatal("fleet serve lost its ports to other processes 5 times")
	return nil
}

// Ctrl-C or SIGTERM stops `fwslot fleet serve` cleanly: exit 0, no error
// logged, its port released, and the data kept for the next start.
func TestFleetServeSignals(t *testing.T) {
	bin := fwslotBinary(t)
	dir := filepath.Join(t.TempDir(), "etcd")
	cases := []struct {
		name string
		sig  syscall.Signal
	}{
		{"Ctrl-C", syscall.SIGINT},
		{"SIGTERM", syscall.SIGTERM},
	}
	var previous string
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := startFleetServe(t, bin, dir)
			cli, err := clientv3.New(clientv3.Config{Endpoints: []string{s.endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
			if err != nil {
				t.Fatal(err)
			}
			defer cli.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if previous != "" {
				resp, err := cli.Get(ctx, "/fwslot/"+previous)
				if err != nil || len(resp.Kvs) != 1 {
					t.Errorf("the key written before the restart: %v %v", resp, err)
				}
			}
			if _, err := cli.Put(ctx, "/fwslot/"+c.name, "x"); err != nil {
				t.Fatal(err)
			}
			previous = c.name
			if err := s.cmd.Process.Signal(c.sig); err != nil {
				t.Fatal(err)
			}
			<-s.done
			err = s.cmd.Wait()
			if err != nil || !strings.Contains(s.stdout.String(), "etcd stopped") {
				t.Errorf("exit %v, want 0 and 'etcd stopped':\n%s%s", err, s.stdout.String(), s.stderr.String())
			}
			if strings.Contains(s.stderr.String(), "ERROR") {
				t.Errorf("a clean stop logged errors:\n%s", s.stderr.String())
			}
			if conn, err := net.Dial("tcp", strings.TrimPrefix(s.endpoint, "http://")); err == nil {
				conn.Close()
				t.Errorf("%s still accepts connections after fleet serve exited", s.endpoint)
			}
		})
	}
	info, err := os.Stat(dir)
	if err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("data dir %v %v, want mode 0700", info, err)
	}
}

// Bad usage of fleet and fleet serve exits 2 and says what to do.
func TestFleetServeUsage(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no data dir", []string{"fleet", "serve"}, "needs --data-dir"},
		{"listen on every address", []string{"fleet", "serve", "--data-dir", t.TempDir(), "--listen-client", "http://0.0.0.0:2379"}, "name the address to advertise"},
		{"https", []string{"fleet", "serve", "--data-dir", t.TempDir(), "--listen-client", "https://127.0.0.1:2379"}, "want http://HOST:PORT"},
		{"unknown fleet command", []string{"fleet", "bogus"}, `unknown command "fleet bogus"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, code := run(t, c.args...)
			if code != exitUsage || !strings.Contains(out, c.want) {
				t.Errorf("exit %d, want %d and %q:\n%s", code, exitUsage, c.want, out)
			}
		})
	}
}
