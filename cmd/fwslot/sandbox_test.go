package main

import (
	"testing"

	"github.com/fwslot/fwslot/internal/sandbox"
)

// listeningSandbox makes a sandbox (namespaces named prefix*) whose target
// listens on ports 22 and 80; the caller closes it.
func listeningSandbox(t *testing.T, prefix string) *sandbox.Sandbox {
	t.Helper()
	sb, err := sandbox.New(prefix)
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Listen(22, 80); err != nil {
		sb.Close()
		t.Fatal(err)
	}
	return sb
}
