package sign

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// Only a signature by the trusted key over exactly this group, ruleset
// hash and probes verifies.
func TestSignVerify(t *testing.T) {
	pub, priv, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	otherPub, otherPriv, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	group, hash, probes := "web", sha("table inet f {}"), "accept tcp 10.0.0.1:1 -> 10.0.0.2:443\n"
	sig, err := Sign(priv, group, hash, probes)
	if err != nil {
		t.Fatal(err)
	}
	otherSig, err := Sign(otherPriv, group, hash, probes)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(sig)
	raw[0] ^= 1
	flipped := base64.StdEncoding.EncodeToString(raw)
	cases := []struct {
		name                string
		pub                 []byte
		group, hash, probes string
		sig                 string
		want                error // nil: verifies
	}{
		{"good signature", pub, group, hash, probes, sig, nil},
		{"wrong key", otherPub, group, hash, probes, sig, ErrBadSignature},
		{"signed by another key", pub, group, hash, probes, otherSig, ErrBadSignature},
		{"tampered hash", pub, group, sha("table inet f { chain c {} }"), probes, sig, ErrBadSignature},
		{"other group", pub, "db", hash, probes, sig, ErrBadSignature},
		{"other probes", pub, group, hash, probes + "drop tcp 10.0.0.1:1 -> 10.0.0.2:22\n", sig, ErrBadSignature},
		{"no probes instead of some", pub, group, hash, "", sig, ErrBadSignature},
		{"flipped bit", pub, group, hash, probes, flipped, ErrBadSignature},
		{"not base64", pub, group, hash, probes, "%%%", ErrBadSignature},
		{"truncated", pub, group, hash, probes, sig[:40], ErrBadSignature},
		{"unsigned", pub, group, hash, probes, "", ErrUnsigned},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Verify(c.pub, c.group, c.hash, c.probes, c.sig)
			if c.want == nil && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

// The signed bytes are exactly those SCHEMA.md describes, and values that
// could make two versions share a message are refused.
func TestMessage(t *testing.T) {
	hash := sha("x")
	got, err := message("web", hash, "p\n")
	if err != nil {
		t.Fatal(err)
	}
	want := "fwslot-version-v1\nweb\n" + hash + "\n" + sha("p\n") + "\n"
	if string(got) != want {
		t.Errorf("message %q, want %q", got, want)
	}
	bad := []struct{ name, group, hash string }{
		{"empty group", "", hash},
		{"newline in group", "web\n" + hash, hash},
		{"short hash", "web", hash[:63]},
		{"upper-case hash", "web", strings.ToUpper(hash)},
		{"not hex", "web", strings.Repeat("g", 64)},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			if _, err := message(c.group, c.hash, ""); err == nil {
				t.Error("accepted")
			}
		})
	}
}

// Keys written by WriteKeys read back, with the right modes; existing
// files are never overwritten; garbage and other key kinds are refused.
func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	pub, priv, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	keyPath, pubPath, err := WriteKeys(filepath.Join(dir, "fleet"), priv)
	if err != nil {
		t.Fatal(err)
	}
	for path, mode := range map[string]os.FileMode{keyPath: 0o600, pubPath: 0o644} {
		info, err := os.Stat(path)
		if err != nil || info.Mode().Perm() != mode {
			t.Errorf("%s: %v %v, want mode %04o", path, info, err, mode)
		}
	}
	gotPriv, err := ReadPrivateKey(keyPath)
	if err != nil || !gotPriv.Equal(priv) {
		t.Fatalf("read private key: %v", err)
	}
	gotPub, err := ReadPublicKey(pubPath)
	if err != nil || !gotPub.Equal(pub) {
		t.Fatalf("read public key: %v", err)
	}
	if _, _, err := WriteKeys(filepath.Join(dir, "fleet"), priv); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("second WriteKeys: %v, want a refusal to overwrite", err)
	}

	write := func(name, data string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ec)
	ecPubDER, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	keyData, _ := os.ReadFile(keyPath)
	pubData, _ := os.ReadFile(pubPath)
	cases := []struct {
		name    string
		path    string
		private bool
		want    string
	}{
		{"garbage private", write("g.key", "not a key\n", 0o600), true, "no PEM block"},
		{"garbage public", write("g.pub", "\x00\x01", 0o644), false, "no PEM block"},
		{"corrupt DER", write("c.key", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("junk")})), 0o600), true, "c.key"},
		{"ecdsa private", write("ec.key", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER})), 0o600), true, "want an ed25519 key"},
		{"ecdsa public", write("ec.pub", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecPubDER})), 0o644), false, "want an ed25519 key"},
		{"public given as private", write("p.key", string(pubData), 0o600), true, `want "PRIVATE KEY"`},
		{"private given as public", write("k.pub", string(keyData), 0o644), false, `want "PUBLIC KEY"`},
		{"private readable by others", write("open.key", string(keyData), 0o644), true, "chmod 600"},
		{"two keys in one file", write("two.pub", string(pubData)+string(pubData), 0o644), false, "more than one PEM block"},
		{"missing", filepath.Join(dir, "none.pub"), false, "no such file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var err error
			if c.private {
				_, err = ReadPrivateKey(c.path)
			} else {
				_, err = ReadPublicKey(c.path)
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error with %q", err, c.want)
			}
		})
	}
}
