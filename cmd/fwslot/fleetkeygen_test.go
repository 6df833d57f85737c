package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fwslot/fwslot/fleet/sign"
)

// fleet keygen writes a key pair that signs and verifies, private 0600,
// and never overwrites an existing key.
func TestFleetKeygen(t *testing.T) {
	prefix := filepath.Join(t.TempDir(), "fleet")
	out, code := run(t, "fleet", "keygen", "--out", prefix)
	if code != exitOK || !strings.Contains(out, prefix+".key") || !strings.Contains(out, prefix+".pub") || !strings.Contains(out, "SHA256:") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	info, err := os.Stat(prefix + ".key")
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("private key %v %v, want mode 0600", info, err)
	}
	priv, err := sign.ReadPrivateKey(prefix + ".key")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := sign.ReadPublicKey(prefix + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	hash := strings.Repeat("ab", 32)
	sig, err := sign.Sign(priv, "web", hash, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := sign.Verify(pub, "web", hash, "", sig); err != nil {
		t.Fatalf("a signature by the new key does not verify with its public key: %v", err)
	}
	before, _ := os.ReadFile(prefix + ".key")
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"existing key", []string{"fleet", "keygen", "--out", prefix}, "exists"},
		{"no --out", []string{"fleet", "keygen"}, "needs --out PREFIX"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, code := run(t, c.args...)
			if code != exitUsage || !strings.Contains(out, c.want) {
				t.Errorf("exit %d, want %d and %q:\n%s", code, exitUsage, c.want, out)
			}
		})
	}
	if after, _ := os.ReadFile(prefix + ".key"); !bytes.Equal(before, after) {
		t.Error("the existing private key changed")
	}
}
