package sign

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// PEM block types of the key files.
const (
	privateType = "PRIVATE KEY" // PKCS#8
	publicType  = "PUBLIC KEY"  // PKIX
)

// WriteKeys writes priv to prefix+".key" (PEM PKCS#8, mode 0600) and its
// public key to prefix+".pub" (PEM PKIX, mode 0644). It refuses to
// overwrite either file.
func WriteKeys(prefix string, priv ed25519.PrivateKey) (keyPath, pubPath string, err error) {
	keyPath, pubPath = prefix+".key", prefix+".pub"
	for _, p := range []string{keyPath, pubPath} {
		if _, err := os.Lstat(p); err == nil {
			return "", "", fmt.Errorf("%s exists: remove it or choose another prefix (keys are never overwritten)", p)
		}
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", "", fmt.Errorf("encode private key: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		return "", "", fmt.Errorf("encode public key: %w", err)
	}
	if err := writeNew(keyPath, pem.EncodeToMemory(&pem.Block{Type: privateType, Bytes: der}), 0o600); err != nil {
		return "", "", err
	}
	if err := writeNew(pubPath, pem.EncodeToMemory(&pem.Block{Type: publicType, Bytes: pubDER}), 0o644); err != nil {
		os.Remove(keyPath)
		return "", "", err
	}
	return keyPath, pubPath, nil
}

// writeNew creates path (never an existing file) with data and mode.
func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("write key %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("write key %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return fmt.Errorf("write key %s: %w", path, err)
	}
	return nil
}

// ReadPrivateKey reads an ed25519 private key file (PEM PKCS#8). It
// refuses a file that others than its owner may read or write.
func ReadPrivateKey(path string) (ed25519.PrivateKey, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("sign key: %w", err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("sign key %s is open to others (mode %04o): chmod 600 %s", path, info.Mode().Perm(), path)
	}
	return readKey[ed25519.PrivateKey](path, "sign", privateType, x509.ParsePKCS8PrivateKey)
}

// ReadPublicKey reads an ed25519 public key file (PEM PKIX).
func ReadPublicKey(path string) (ed25519.PublicKey, error) {
	return readKey[ed25519.PublicKey](path, "trust", publicType, x509.ParsePKIXPublicKey)
}

// readKey parses the one PEM block of kind in path with parse and wants
// an ed25519 key of type K; role ("sign", "trust") names the key in errors.
func readKey[K ed25519.PrivateKey | ed25519.PublicKey](path, role, kind string, parse func([]byte) (any, error)) (K, error) {
	der, err := readPEM(path, kind)
	if err != nil {
		return nil, err
	}
	key, err := parse(der)
	if err != nil {
		return nil, fmt.Errorf("%s key %s: %w", role, path, err)
	}
	k, ok := key.(K)
	if !ok {
		return nil, fmt.Errorf("%s key %s holds a %T, want an ed25519 key (fwslot fleet keygen makes one)", role, path, key)
	}
	return k, nil
}

// readPEM returns the bytes of the one PEM block of kind in path.
func readPEM(path, kind string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("key file %s: no PEM block in it", path)
	}
	if block.Type != kind {
		return nil, fmt.Errorf("key file %s holds a %q block, want %q", path, block.Type, kind)
	}
	if next, _ := pem.Decode(rest); next != nil {
		return nil, errors.New("key file " + path + ": more than one PEM block; want one key")
	}
	return block.Bytes, nil
}
