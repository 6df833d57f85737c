package etcdconn

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"time"
)

// alertWait is how long diagnose waits for a TLS server to reject the
// client's certificate after the handshake (TLS 1.3 reports that
// rejection after the client has finished its side).
const alertWait = 300 * time.Millisecond

// diagnose explains why a dial failed when gRPC only says that time ran
// out: it connects to each endpoint itself and returns, per endpoint,
// the transport's own error (connection refused, certificate signed by
// an unknown authority, certificate required). It returns cause when
// every endpoint is reachable at the transport level.
func (c *Config) diagnose(tc *tls.Config, timeout time.Duration, cause error) error {
	var errs []error
	for _, e := range c.Endpoints {
		if err := probeEndpoint(e, tc, timeout); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", e, err))
		}
	}
	if len(errs) == 0 {
		return cause
	}
	return errors.Join(errs...)
}

// probeEndpoint opens a TCP connection to endpoint and, for https, runs
// a TLS handshake as the client would.
func probeEndpoint(endpoint string, tc *tls.Config, timeout time.Duration) error {
	u, err := url.Parse(endpoint)
	if err != nil {
		return err
	}
	conn, err := net.DialTimeout("tcp", u.Host, timeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	if u.Scheme != "https" || tc == nil {
		return nil
	}
	cfg := tc.Clone()
	cfg.ServerName = u.Hostname()
	cfg.NextProtos = []string{"h2"}
	tconn := tls.Client(conn, cfg)
	if err := tconn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	if err := tconn.Handshake(); err != nil {
		return fmt.Errorf("TLS: %w", err)
	}
	if err := tconn.SetReadDeadline(time.Now().Add(alertWait)); err != nil {
		return err
	}
	if _, err := tconn.Read(make([]byte, 1)); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		var ne net.Error
		if !(errors.As(err, &ne) && ne.Timeout()) {
			return fmt.Errorf("TLS: %w", err)
		}
	}
	return nil
}
