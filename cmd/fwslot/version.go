package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/fwslot/fwslot/internal/sysbin"
	"github.com/spf13/cobra"
)

// versionInfo is what `fwslot version` reports.
type versionInfo struct {
	Version  string `json:"version"`
	Commit   string `json:"commit,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go"`
	Nft      string `json:"nft"`
}

func newVersion(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print fwslot's version, commit, Go version and the nft it compiles with",
		Long: `Print the module version and VCS commit fwslot was built from, the Go
version, and the version of the nft binary that compiles rulesets (or why it
cannot be run). Include it in bug reports.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			v := readVersion()
			if g.json {
				return printJSON(cmd.OutOrStdout(), v)
			}
			commit := v.Commit
			if commit == "" {
				commit = "unknown"
			} else if v.Modified {
				commit += " (modified)"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "fwslot %s\ncommit  %s\ngo      %s\nnft     %s\n", v.Version, commit, v.Go, v.Nft)
			return nil
		},
	}
}

func readVersion() versionInfo {
	v := versionInfo{Version: "(devel)", Go: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Commit = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	nft, err := sysbin.NftVersion()
	if err != nil {
		nft = fmt.Sprintf("not usable: %v", err)
	}
	v.Nft = nft
	return v
}
