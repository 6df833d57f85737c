package rulediff

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"

	"github.com/fwslot/fwslot/internal/names"
	"github.com/fwslot/fwslot/internal/nsutil"
	"github.com/fwslot/fwslot/internal/sysbin"
)

// LiveSlot lists the ruleset of the target namespace netns ("" = the host)
// with `nft -s list ruleset` and returns the source of slot in the given
// tables ("inet filter"), as it runs now, under the user's names. It runs
// nft against the target: for commands a person waits on (commit, drift
// details), never on a hot path.
func LiveSlot(ctx context.Context, netns string, slot names.Slot, tables []string) (string, error) {
	nft, err := sysbin.Nft()
	if err != nil {
		return "", err
	}
	// The whole ruleset, not table by table: `nft list table inet sets`
	// fails for tables named like nft keywords.
	var listing, stderr bytes.Buffer
	err = nsutil.Do(netns, func() error {
		cmd := exec.CommandContext(ctx, nft, "-s", "list", "ruleset")
		cmd.Stdout, cmd.Stderr = &listing, &stderr
		return cmd.Run()
	})
	if err != nil {
		return "", fmt.Errorf("nft list ruleset: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	want := map[string]bool{}
	for _, k := range tables {
		want[k] = true
	}
	src, _, err := slotSource(listing.String(), slot, func(k string) bool { return want[k] })
	if err != nil {
		return "", fmt.Errorf("render slot %s: %w", slot, err)
	}
	return src, nil
}
