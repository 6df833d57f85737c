package etcdtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// TLSFiles are the PEM files of a TLS cluster: a CA, the server's
// certificate (valid for 127.0.0.1 and localhost) and one client
// certificate (common name "client") signed by the CA.
type TLSFiles struct {
	CA         string
	ServerCert string
	ServerKey  string
	ClientCert string
	ClientKey  string

	dir    string
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
	serial atomic.Int64
}

// NewTLSFiles generates a CA, a server and a client certificate that no
// cluster uses, in a t.TempDir(): a foreign CA for tests that must be
// refused.
func NewTLSFiles(t testing.TB) *TLSFiles {
	t.Helper()
	return newTLSFiles(t, t.TempDir())
}

// newTLSFiles generates a CA, a server and a client certificate in dir.
func newTLSFiles(t testing.TB, dir string) *TLSFiles {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatalf("etcdtest: %v", err)
	}
	f := &TLSFiles{dir: dir}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("etcdtest: CA key: %v", err)
	}
	tmpl := f.template("etcdtest CA")
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("etcdtest: CA certificate: %v", err)
	}
	f.caCert, err = x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("etcdtest: CA certificate: %v", err)
	}
	f.caKey = key
	f.CA = filepath.Join(dir, "ca.pem")
	if err := writePEM(f.CA, "CERTIFICATE", der, 0o644); err != nil {
		t.Fatalf("etcdtest: %v", err)
	}
	f.ServerCert, f.ServerKey = f.issue(t, "server", "127.0.0.1", true)
	f.ClientCert, f.ClientKey = f.NewClientCert(t, "client")
	return f
}

// NewClientCert issues another client certificate with common name cn
// (etcd takes the common name as the user name when a client presents no
// password) and returns its certificate and key files.
func (f *TLSFiles) NewClientCert(t testing.TB, cn string) (cert, key string) {
	t.Helper()
	return f.issue(t, cn, "", false)
}

// ClientConfig returns a TLS configuration that trusts the CA and
// presents the client certificate.
func (f *TLSFiles) ClientConfig() (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(f.ClientCert, f.ClientKey)
	if err != nil {
		return nil, fmt.Errorf("load client certificate %s: %w", f.ClientCert, err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(f.caCert)
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}

// issue signs a certificate for cn (a server one valid for ip and
// localhost when server is set) and writes cn.pem and cn-key.pem.
func (f *TLSFiles) issue(t testing.TB, cn, ip string, server bool) (cert, key string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("etcdtest: key for %s: %v", cn, err)
	}
	tmpl := f.template(cn)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
		tmpl.IPAddresses = []net.IP{net.ParseIP(ip)}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, f.caCert, &priv.PublicKey, f.caKey)
	if err != nil {
		t.Fatalf("etcdtest: certificate for %s: %v", cn, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatalf("etcdtest: key for %s: %v", cn, err)
	}
	cert = filepath.Join(f.dir, cn+".pem")
	key = filepath.Join(f.dir, cn+"-key.pem")
	if err := writePEM(cert, "CERTIFICATE", der, 0o644); err != nil {
		t.Fatalf("etcdtest: %v", err)
	}
	if err := writePEM(key, "PRIVATE KEY", keyDER, 0o600); err != nil {
		t.Fatalf("etcdtest: %v", err)
	}
	return cert, key
}

// template is a certificate valid from an hour ago for a day.
func (f *TLSFiles) template(cn string) *x509.Certificate {
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: big.NewInt(f.serial.Add(1)),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"fwslot etcdtest"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
	}
}

func writePEM(path, kind string, der []byte, mode os.FileMode) error {
	data := pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der})
	if err := os.WriteFile(path, data, mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
