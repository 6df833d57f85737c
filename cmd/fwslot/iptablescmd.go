package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/fwslot/fwslot/internal/nsutil"
	"github.com/fwslot/fwslot/internal/sysbin"
	"github.com/spf13/cobra"
)

// translateTool is the translator of iptables-save files (Debian package
// iptables).
const translateTool = "iptables-restore-translate"

// translation is an iptables-save file turned into nft syntax.
type translation struct {
	Text string
	// Untranslated holds the rules the tool could not translate, as it
	// left them: iptables-restore syntax after "# ".
	Untranslated []string
}

// translateIptables runs iptables-restore-translate (or the ip6tables one)
// on file in a private network namespace and drops its time-stamped
// header and footer so the same input always gives the same ruleset.
func translateIptables(ctx context.Context, tool, file string) (*translation, error) {
	bin, err := sysbin.Find(tool, "apt-get install iptables")
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(file); err != nil {
		return nil, usageError{fmt.Errorf("--from-iptables: %w", err)}
	}
	var out, stderr bytes.Buffer
	err = nsutil.DoFresh(func() error {
		cmd := exec.CommandContext(ctx, bin, "-f", file)
		cmd.Stdout, cmd.Stderr = &out, &stderr
		return cmd.Run()
	})
	if err != nil {
		return nil, usageError{fmt.Errorf("%s -f %s: %v: %s", tool, file, err, strings.TrimSpace(stderr.String()))}
	}
	tr := &translation{}
	var b strings.Builder
	fmt.Fprintf(&b, "# translated from %s by %s\n", filepath.Base(file), tool)
	for _, line := range strings.Split(out.String(), "\n") {
		switch {
		case strings.HasPrefix(line, "# Translated by"), strings.HasPrefix(line, "# Completed on"):
			continue
		case strings.HasPrefix(line, "# "):
			tr.Untranslated = append(tr.Untranslated, strings.TrimSpace(strings.TrimPrefix(line, "# ")))
			b.WriteString("# NOT TRANSLATED: " + strings.TrimSpace(strings.TrimPrefix(line, "# ")) + "\n")
			continue
		}
		if line != "" {
			b.WriteString(line + "\n")
		}
	}
	tr.Text = b.String()
	return tr, nil
}

// withFromIptables adds --from-iptables and --from-ip6tables to `load`:
// the files are translated to nft syntax and the result is loaded like
// any ruleset file (probes, message and output as usual).
func withFromIptables(g *globals, c *cobra.Command) *cobra.Command {
	var v4, v6, save string
	c.Flags().StringVar(&v4, "from-iptables", "", "load this iptables-save file, translated with iptables-restore-translate, instead of a ruleset file")
	c.Flags().StringVar(&v6, "from-ip6tables", "", "load this ip6tables-save file (with or without --from-iptables)")
	c.Flags().StringVar(&save, "save-translation", "", "with --from-iptables: write the translated ruleset to this file (and record that path in history)")
	c.Example += `
  fwslot load --from-iptables /etc/iptables/rules.v4 --from-ip6tables /etc/iptables/rules.v6 --probes ruleset.probes`
	plainArgs, plainRun := c.Args, c.RunE
	c.Args = func(cmd *cobra.Command, args []string) error {
		if v4 == "" && v6 == "" {
			return plainArgs(cmd, args)
		}
		if len(args) != 0 {
			return usagef("load --from-iptables takes no ruleset file")
		}
		return nil
	}
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if v4 == "" && v6 == "" {
			if save != "" {
				return usagef("--save-translation only goes with --from-iptables or --from-ip6tables")
			}
			return plainRun(cmd, args)
		}
		var text strings.Builder
		var untranslated []string
		for _, in := range []struct{ tool, file string }{{translateTool, v4}, {"ip6tables-restore-translate", v6}} {
			if in.file == "" {
				continue
			}
			tr, err := translateIptables(cmd.Context(), in.tool, in.file)
			if err != nil {
				return err
			}
			text.WriteString(tr.Text)
			for _, u := range tr.Untranslated {
				untranslated = append(untranslated, in.file+": "+u)
			}
		}
		for _, u := range untranslated {
			fmt.Fprintf(cmd.ErrOrStderr(), "fwslot: not translated (left out of the ruleset): %s\n", u)
		}
		if len(untranslated) > 0 {
			fmt.Fprintf(cmd.ErrOrStderr(), "fwslot: warning: %d iptables rules could not be translated; the staged ruleset lacks them (check with fwslot diff and your probes before a swap)\n", len(untranslated))
		}
		name := save
		if name == "" {
			dir, err := os.MkdirTemp("", "fwslot-iptables-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			in := firstNonEmpty(v4, v6)
			name = filepath.Join(dir, strings.TrimSuffix(filepath.Base(in), filepath.Ext(in))+".nft")
		}
		if err := os.WriteFile(name, []byte(text.String()), 0o600); err != nil {
			return fmt.Errorf("write the translated ruleset: %w", err)
		}
		if m := cmd.Flags().Lookup("message"); m != nil && !m.Changed {
			_ = m.Value.Set("translated from " + strings.Join(nonEmpty(v4, v6), " and "))
		}
		return plainRun(cmd, []string{name})
	}
	return c
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

func nonEmpty(s ...string) []string {
	var out []string
	for _, x := range s {
		if x != "" {
			out = append(out, x)
		}
	}
	return out
}
