package main

import (
	"context"
	"fmt"
	"io"
)

// demoProbe proves the staged version before it goes live. Until the probe
// engine lands, the demo shows the live connections instead.
func demoProbe(ctx context.Context, w io.Writer, dir string) error {
	fmt.Fprintln(w, "    (probe engine not built yet: see `fwslot test`)")
	return nil
}
