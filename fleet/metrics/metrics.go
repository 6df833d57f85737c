// Package metrics holds the fleet agent's Prometheus metrics, in a
// registry of its own (never the process-wide default, so that several
// agents in one process, as in tests, do not collide), and serves them
// over http for scraping.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// path is the URL path of the metrics.
const path = "/metrics"

// shutdownTimeout bounds how long serve waits for scrapes in flight.
const shutdownTimeout = 5 * time.Second

// Metrics are one agent's metrics. Every series carries the labels group
// and host.
type Metrics struct {
	// Registry holds every metric below plus the Go runtime and process
	// collectors (memory, file descriptors).
	Registry *prometheus.Registry
	// Swaps counts swaps this agent made live; Reverts counts reverts
	// (failed health check, confirm deadline, fleet rollback).
	Swaps, Reverts prometheus.Counter
	// ProbeFailures counts probes that failed, in staging or in a health
	// check.
	ProbeFailures prometheus.Counter
	// StageDuration and SwapDuration are the seconds a stage (fetch,
	// compile, probes in the twin) and a swap took.
	StageDuration, SwapDuration prometheus.Histogram
	// ProductionVersion and StagingVersion are the fleet version numbers
	// in the slots; 0 means none.
	ProductionVersion, StagingVersion prometheus.Gauge
}

// New returns the metrics of the agent of host in group.
func New(group, host string) *Metrics {
	labels := prometheus.Labels{"group": group, "host": host}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "fwslot", Subsystem: "agent", Name: name, Help: help, ConstLabels: labels})
	}
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "fwslot", Subsystem: "agent", Name: name, Help: help, ConstLabels: labels})
	}
	histogram := func(name, help string, buckets []float64) prometheus.Histogram {
		return prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "fwslot", Subsystem: "agent", Name: name, Help: help, ConstLabels: labels, Buckets: buckets})
	}
	m := &Metrics{
		Registry:      prometheus.NewRegistry(),
		Swaps:         counter("swaps_total", "Swaps this agent made live."),
		Reverts:       counter("reverts_total", "Reverts to the previous version (failed check, confirm deadline, fleet rollback)."),
		ProbeFailures: counter("probe_failures_total", "Probes that failed, in staging or in a health check."),
		// 10 ms to 82 s: a stage compiles and probes in a twin.
		StageDuration: histogram("stage_duration_seconds", "Time to stage a version: fetch, compile, probes in the twin.", prometheus.ExponentialBuckets(0.01, 2, 14)),
		// 1 ms to 33 s: a swap is one kernel transaction plus bookkeeping.
		SwapDuration:      histogram("swap_duration_seconds", "Time to make a staged version live.", prometheus.ExponentialBuckets(0.001, 2, 16)),
		ProductionVersion: gauge("production_version", "Fleet version number in the production slot (0: none)."),
		StagingVersion:    gauge("staging_version", "Fleet version number in the staging slot (0: none)."),
	}
	m.Registry.MustRegister(
		m.Swaps, m.Reverts, m.ProbeFailures, m.StageDuration, m.SwapDuration, m.ProductionVersion, m.StagingVersion,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// ObserveStage records the duration of one stage.
func (m *Metrics) ObserveStage(d time.Duration) { m.StageDuration.Observe(d.Seconds()) }

// ObserveSwap records the duration of one swap and counts it.
func (m *Metrics) ObserveSwap(d time.Duration) {
	m.SwapDuration.Observe(d.Seconds())
	m.Swaps.Inc()
}

// SetVersions records the versions in the slots (0: none).
func (m *Metrics) SetVersions(production, staging int64) {
	m.ProductionVersion.Set(float64(production))
	m.StagingVersion.Set(float64(staging))
}

// handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// serve listens on addr (host:port) and serves the metrics at path until
// ctx ends. It returns at once if it cannot listen, and nil after a
// clean stop.
func (m *Metrics) serve(ctx context.Context, addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	return m.ServeListener(ctx, l)
}

// ServeListener serves the metrics at /metrics on l, a listener already
// open, until ctx ends; it closes l.
func (m *Metrics) ServeListener(ctx context.Context, l net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle(path, m.handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	select {
	case err := <-done:
		return fmt.Errorf("metrics: serve on %s: %w", l.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("metrics: stop serving on %s: %w", l.Addr(), err)
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics: serve on %s: %w", l.Addr(), err)
	}
	return nil
}
