package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadFromIptables translates testdata/iptables and proves the result
// with its probe file.
func TestLoadFromIptables(t *testing.T) {
	_, g := newTarget(t)
	saved := filepath.Join(t.TempDir(), "translated.nft")
	base := filepath.Join("..", "..", "testdata", "iptables")
	out, code := run(t, append(g, "load", "--from-iptables", filepath.Join(base, "rules.v4"), "--from-ip6tables", filepath.Join(base, "rules.v6"),
		"--probes", filepath.Join(base, "rules.probes"), "--save-translation", saved)...)
	if code != 0 {
		t.Fatalf("load --from-iptables: exit %d\n%s", code, out)
	}
	for _, want := range []string{"not translated (left out of the ruleset): ", "-m recent --name portscan", "1 iptables rules could not be translated", "probes: 10 of 10 passed", "staged version 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	text, err := os.ReadFile(saved)
	if err != nil || !strings.Contains(string(text), "# NOT TRANSLATED: -t filter -A INPUT -m recent") || strings.Contains(string(text), "Translated by") {
		t.Fatalf("saved translation: %v\n%s", err, text)
	}
	// The same input is the same version: the translation is stable.
	if out, code := run(t, append(g, "load", "--from-iptables", filepath.Join(base, "rules.v4"), "--from-ip6tables", filepath.Join(base, "rules.v6"))...); code != 0 || !strings.Contains(out, "unchanged") {
		t.Fatalf("second load: exit %d\n%s", code, out)
	}
	if out, code := run(t, append(g, "load", "--from-iptables", "/nonexistent.v4")...); code != 2 {
		t.Fatalf("missing file: exit %d\n%s", code, out)
	}
	if out, code := run(t, append(g, "load", "x.nft", "--from-iptables", filepath.Join(base, "rules.v4"))...); code != 2 {
		t.Fatalf("file and --from-iptables: exit %d\n%s", code, out)
	}
}
