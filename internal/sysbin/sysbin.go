// Package sysbin finds the system programs fwslot runs (nft, ip,
// iptables-restore-translate) by absolute path in the system directories,
// never through $PATH: fwslot runs as root, and a $PATH that a user or a CI
// job prepends a directory to would make root run that user's nft.
package sysbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Dirs are the directories searched, in order.
var Dirs = []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"}

// Find returns the absolute path of the program name in Dirs: a regular,
// executable file. hint says how to install it.
func Find(name, hint string) (string, error) {
	if strings.Contains(name, "/") {
		return "", fmt.Errorf("program name %q has a /", name)
	}
	for _, d := range Dirs {
		p := filepath.Join(d, name)
		fi, err := os.Stat(p)
		if err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s is needed and was not found in %s (%s); fwslot never takes programs from $PATH", name, strings.Join(Dirs, ", "), hint)
}

// Nft returns the absolute path of nft.
func Nft() (string, error) { return Find("nft", "apt-get install nftables") }

// NftVersion runs the system's nft with --version and returns what it
// prints ("nftables v1.0.6 (Lester Gooch #5)").
func NftVersion() (string, error) {
	nft, err := Nft()
	if err != nil {
		return "", err
	}
	out, err := exec.Command(nft, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w", nft, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// IP returns the absolute path of ip (iproute2).
func IP() (string, error) { return Find("ip", "apt-get install iproute2") }
