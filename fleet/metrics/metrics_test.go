package metrics

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// serveFree runs m.Serve on a 127.0.0.1 port that was free (retrying
// when another process takes it first) and returns the address and the
// channel of Serve's result, once the port accepts connections.
func serveFree(t *testing.T, ctx context.Context, m *Metrics) (string, chan error) {
	t.Helper()
	for attempt := 0; attempt < 5; attempt++ {
		if addr, done, ok := tryServe(t, ctx, m); ok {
			return addr, done
		}
	}
	t.Fatal("5 ports lost to other processes")
	return "", nil
}

// tryServe starts Serve on a port that was free; ok is false when another
// process took the port first.
func tryServe(t *testing.T, ctx context.Context, m *Metrics) (addr string, done chan error, ok bool) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = l.Addr().String()
	l.Close()
	done = make(chan error, 1)
	go func() { done <- m.serve(ctx, addr) }()
	// Serve either fails to bind at once or starts accepting.
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		select {
		case err := <-done:
			if errors.Is(err, syscall.EADDRINUSE) {
				return "", nil, false
			}
			t.Fatalf("Serve on %s: %v", addr, err)
		default:
		}
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr, done, true
		}
	}
	t.Fatalf("Serve on %s did not accept connections", addr)
	return "", nil, false
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s %v", resp.Status, err)
	}
	return string(body)
}

// The served page carries every agent metric with its group and host,
// and the values recorded; a second agent in the same process has its
// own series; the process-wide default registry stays untouched.
func TestServeScrape(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := New("web", "h1")
	other := New("web", "h2") // must not collide with m
	m.ObserveSwap(30 * time.Millisecond)
	m.ObserveSwap(10 * time.Millisecond)
	m.Reverts.Inc()
	m.ProbeFailures.Add(3)
	m.ObserveStage(1500 * time.Millisecond)
	m.SetVersions(7, 8)
	other.Swaps.Inc()
	addr, done := serveFree(t, ctx, m)
	page := scrape(t, addr)
	const l = `{group="web",host="h1"}`
	for _, want := range []string{
		"fwslot_agent_swaps_total" + l + " 2",
		"fwslot_agent_reverts_total" + l + " 1",
		"fwslot_agent_probe_failures_total" + l + " 3",
		"fwslot_agent_stage_duration_seconds_count" + l + " 1",
		"fwslot_agent_stage_duration_seconds_sum" + l + " 1.5",
		`fwslot_agent_stage_duration_seconds_bucket{group="web",host="h1",le="2.56"} 1`,
		`fwslot_agent_stage_duration_seconds_bucket{group="web",host="h1",le="1.28"} 0`,
		"fwslot_agent_swap_duration_seconds_count" + l + " 2",
		"fwslot_agent_swap_duration_seconds_sum" + l + " 0.04",
		"fwslot_agent_production_version" + l + " 7",
		"fwslot_agent_staging_version" + l + " 8",
		"go_goroutines ",
		"process_resident_memory_bytes ",
	} {
		if !strings.Contains(page, "\n"+want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	if strings.Contains(page, `host="h2"`) {
		t.Error("another agent's series leaked into this agent's registry")
	}
	fams, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if strings.HasPrefix(f.GetName(), "fwslot_") {
			t.Errorf("%s registered in the process-wide default registry", f.GetName())
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve after its context ended: %v", err)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after Serve returned", addr)
	}
}

// Serve on an address in use fails at once and names it.
func TestServeAddressInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	err = New("g", "h").serve(context.Background(), l.Addr().String())
	if !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), l.Addr().String()) {
		t.Fatalf("got %v, want address in use naming %s", err, l.Addr())
	}
}
