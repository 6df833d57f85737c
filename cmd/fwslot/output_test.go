package main

import (
	"strings"
	"testing"
)

// checkRun reports, prefixed with name, an exit code other than
// wantCode, else each of want that out lacks and each of not it has.
func checkRun(t *testing.T, name, out string, code, wantCode int, want, not []string) {
	t.Helper()
	if code != wantCode {
		t.Errorf("%s: exit %d, want %d\n%s", name, code, wantCode, out)
		return
	}
	checkOutput(t, name+": ", out, want, not)
}

// checkOutput reports, each message prefixed with prefix, each of want
// that out lacks and each of not that it has.
func checkOutput(t *testing.T, prefix, out string, want, not []string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("%soutput lacks %q:\n%s", prefix, w, out)
		}
	}
	for _, w := range not {
		if strings.Contains(out, w) {
			t.Errorf("%soutput has %q:\n%s", prefix, w, out)
		}
	}
}
