package probe

import "github.com/fwslot/fwslot/internal/nsutil"

// nftOutputNamed is nftOutput for a named namespace (the real-network
// tests build theirs with names).
func nftOutputNamed(name, stdin string, args ...string) (string, error) {
	h, err := nsutil.Open(name)
	if err != nil {
		return "", err
	}
	defer h.Close()
	return nftOutput(h, stdin, args...)
}

// nftInNamed is nftIn for a named namespace.
func nftInNamed(name string, args ...string) error {
	h, err := nsutil.Open(name)
	if err != nil {
		return err
	}
	defer h.Close()
	return nftIn(h, args...)
}
