package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/slots"
	"github.com/fwslot/fwslot/session"
	"github.com/spf13/cobra"
)

func newPrune(g *globals) *cobra.Command {
	var keep int
	keepBytes := byteSize(history.DefaultKeepBytes)
	c := &cobra.Command{
		Use:   "prune",
		Short: "Delete old versions that never went live",
		Long: fmt.Sprintf(`Apply the retention policy now: keep every version that was ever live (any
activation names it) and the versions in the production and staging slots,
plus the newest --keep versions that were only staged (default %d) as long
as they hold at most --keep-bytes (default 1GiB; 0: no bound); delete the
rest. Version numbers are never reused. The history file stops growing
once pruning runs regularly: the space of deleted versions is reused.`, history.DefaultKeep),
		Example: `  fwslot prune
  fwslot prune --keep 20`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if keep < 0 {
				return usagef("--keep needs 0 or more")
			}
			s, err := g.open(cmd.Context(), session.Guard{}, true)
			if err != nil {
				return err
			}
			defer s.Close()
			t := s.Target()
			st, err := s.Status()
			if err != nil {
				return fmt.Errorf("prune needs the slots' versions to keep them: %w", err)
			}
			var protect []uint64
			for _, info := range []*slots.SlotInfo{st.Production, st.Staging} {
				if info != nil {
					protect = append(protect, info.Version)
				}
			}
			res, err := t.Store.Prune(t.Key(), history.Policy{Keep: keep, KeepBytes: keepBytesPolicy(keepBytes), Protect: history.Protect(protect...)})
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), res)
			}
			if len(res.Removed) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "nothing to prune: %d versions kept\n", res.Kept)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "pruned %d versions (%s); %d kept\n", len(res.Removed), ranges(res.Removed), res.Kept)
			return nil
		},
	}
	c.Flags().IntVar(&keep, "keep", history.DefaultKeep, "never-live versions to keep, newest first")
	c.Flags().Var(&keepBytes, "keep-bytes", "bytes of never-live versions to keep, newest first (0: no bound)")
	return c
}

// keepBytesPolicy maps --keep-bytes to history.Policy.KeepBytes, where 0
// means the default and a negative value no bound.
func keepBytesPolicy(b byteSize) int64 {
	if b == 0 {
		return -1
	}
	return int64(b)
}

// ranges prints ascending numbers compactly: "1-4, 7, 9-10".
func ranges(ns []uint64) string {
	var parts []string
	for i := 0; i < len(ns); {
		j := i
		for j+1 < len(ns) && ns[j+1] == ns[j]+1 {
			j++
		}
		if i == j {
			parts = append(parts, strconv.FormatUint(ns[i], 10))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", ns[i], ns[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ", ")
}
