// Package sign signs fleet versions with ed25519 so that an agent started
// with a trusted public key refuses versions that the holder of the
// matching private key did not sign: whoever controls etcd alone cannot
// push a ruleset. A signature covers the group, the ruleset's hash and the
// hash of its probes, so a signed version cannot be replayed into another
// group or with other probes.
package sign

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// domain starts every signed message, so a signature made for anything
// else never verifies as a fleet version.
const domain = "fwslot-version-v1\n"

// Errors of Verify, for errors.Is.
var (
	// ErrUnsigned: the version carries no signature.
	ErrUnsigned = errors.New("version is not signed")
	// ErrBadSignature: the signature does not verify with the trusted key.
	ErrBadSignature = errors.New("signature does not match the trusted key")
)

// message returns the bytes a signature covers:
// domain + group + "\n" + hash + "\n" + sha256hex(probes) + "\n".
// It refuses a group that is empty or holds a newline, and a hash that is
// not 64 lowercase hex digits, so that no two versions share a message.
func message(group, hash, probes string) ([]byte, error) {
	if group == "" || strings.ContainsAny(group, "\n\r") {
		return nil, fmt.Errorf("sign: group %q: want a non-empty name on one line", group)
	}
	if len(hash) != sha256.Size*2 || strings.ToLower(hash) != hash {
		return nil, fmt.Errorf("sign: hash %q: want a sha256 in 64 lowercase hex digits", hash)
	}
	if _, err := hex.DecodeString(hash); err != nil {
		return nil, fmt.Errorf("sign: hash %q: want a sha256 in 64 lowercase hex digits", hash)
	}
	ph := sha256.Sum256([]byte(probes))
	return []byte(domain + group + "\n" + hash + "\n" + hex.EncodeToString(ph[:]) + "\n"), nil
}

// Sign signs the version of group with the given ruleset hash and probes
// and returns the signature in base64, as a version stores it.
func Sign(priv ed25519.PrivateKey, group, hash, probes string) (string, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return "", fmt.Errorf("sign: private key has %d bytes, want an ed25519 key of %d", len(priv), ed25519.PrivateKeySize)
	}
	msg, err := message(group, hash, probes)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(ed25519.Sign(priv, msg)), nil
}

// Verify checks sig (base64, as a version stores it) against the version
// of group with hash and probes. It returns nil only for a signature made
// by the private key of pub over exactly these values.
func Verify(pub ed25519.PublicKey, group, hash, probes, sig string) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("verify: public key has %d bytes, want an ed25519 key of %d", len(pub), ed25519.PublicKeySize)
	}
	if sig == "" {
		return fmt.Errorf("verify version %s of group %s: %w", short(hash), group, ErrUnsigned)
	}
	raw, err := base64.StdEncoding.DecodeString(sig)
	if err != nil || len(raw) != ed25519.SignatureSize {
		return fmt.Errorf("verify version %s of group %s: signature is not %d bytes of base64: %w", short(hash), group, ed25519.SignatureSize, ErrBadSignature)
	}
	msg, err := message(group, hash, probes)
	if err != nil {
		return err
	}
	if !ed25519.Verify(pub, msg, raw) {
		return fmt.Errorf("verify version %s of group %s: %w", short(hash), group, ErrBadSignature)
	}
	return nil
}

// GenerateKey returns a new ed25519 key pair.
func GenerateKey() (ed25519.PublicKey, ed25519.PrivateKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate ed25519 key: %w", err)
	}
	return pub, priv, nil
}

// Fingerprint names a public key in messages: "SHA256:" and the base64
// of its sha256, as ssh-keygen -l prints.
func Fingerprint(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}

func short(hash string) string {
	if len(hash) > 12 {
		return hash[:12]
	}
	return hash
}
