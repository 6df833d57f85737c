package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"

	"github.com/fwslot/fwslot/internal/logattr"
	"github.com/fwslot/fwslot/probe"
	"github.com/spf13/cobra"
)

// logsUnattributed is returned when some relevant lines could not be
// traced back to a rule: exit 1.
type logsUnattributed struct{ n int }

func (e logsUnattributed) Error() string {
	return fmt.Sprintf("%d log lines could not be traced to a rule of the ruleset", e.n)
}

func newLogs(g *globals) *cobra.Command {
	var file, slot, from string
	var follow bool
	c := &cobra.Command{
		Use:   "logs",
		Short: "Print the kernel log lines the ruleset's log rules wrote, each with the rule's file:line",
		Long: `Read the kernel log (/dev/kmsg), keep the lines of the nftables log
statement whose prefix is one of the ruleset's log prefixes, and print each
with the log rule that wrote it and the rule that decided its packet, as
explain --log finds them. Packets that agree on prefix, family,
interfaces, protocol, destination port, icmp type and state run through
the twin once; their explanation is reused (a ruleset that tells their
addresses apart is not seen).

--follow keeps reading new records. Exit 1 when a line could not be
traced to a rule.`,
		Example: `  fwslot logs
  fwslot logs --follow --file ruleset.nft`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			text, err := rulesetText(g, file, slot)
			if err != nil {
				return err
			}
			prefixes := map[string]bool{}
			for _, p := range logattr.Prefixes(text) {
				prefixes[p] = true
			}
			if len(prefixes) == 0 {
				return usagef("the ruleset has no log statement with a prefix: no line can be traced to it")
			}
			var src io.ReadCloser
			if from != "" {
				if src, err = os.Open(from); err != nil {
					return usageError{fmt.Errorf("logs: %w", err)}
				}
			} else if src, err = openKmsg(follow); err != nil {
				return err
			}
			defer src.Close()
			att := logattr.New(func(ctx context.Context, ps []probe.Probe) ([]probe.Result, error) {
				load, topo, loc, done, err := twinFor(ctx, g, file, slot, probe.Topology{}, ps)
				if err != nil {
					return nil, err
				}
				defer done()
				rep, err := probe.Run(ctx, topo, load, ps, nil, probe.Options{Locate: loc})
				return rep.Results, err
			})
			w := cmd.OutOrStdout()
			failed := 0
			emit := func(lines []string) error {
				as, err := att.Attribute(ctx, lines)
				if err != nil {
					return err
				}
				for _, a := range as {
					if a.Err != nil {
						failed++
					}
					if err := writeAttribution(w, g.json, a); err != nil {
						return err
					}
				}
				return nil
			}
			var batch []string
			err = readLogLines(src, func(line string) error {
				if _, prefix, err := logattr.ParseLine(line); err != nil || !prefixes[prefix] {
					return nil
				}
				if !follow {
					batch = append(batch, line)
					return nil
				}
				return emit([]string{line})
			})
			if err == nil && len(batch) > 0 {
				err = emit(batch)
			}
			if err != nil {
				return err
			}
			if failed > 0 {
				return logsUnattributed{failed}
			}
			return nil
		},
	}
	c.Flags().StringVar(&file, "file", "", "the ruleset file that wrote the lines instead of a slot of the target")
	c.Flags().StringVar(&slot, "slot", "production", "which slot of the target: production or staging")
	c.Flags().BoolVar(&follow, "follow", false, "keep reading new kernel log records")
	c.Flags().StringVar(&from, "from", "", "read log lines from this file instead of /dev/kmsg")
	c.Flags().MarkHidden("from")
	return c
}

// rulesetText is the source text of the ruleset file or of a slot.
func rulesetText(g *globals, file, slot string) (string, error) {
	if file != "" {
		b, err := readRuleset(g, file)
		if err != nil {
			return "", err
		}
		return b.Flat, nil
	}
	t, done, err := g.target()
	if err != nil {
		return "", err
	}
	defer done()
	_, v, err := slotRuleset(t, slot)
	if err != nil {
		return "", err
	}
	return v.Source, nil
}

// kmsg reads /dev/kmsg: one record per read; without follow, the end of
// the buffer (EAGAIN) is the end of input.
type kmsg struct{ f *os.File }

func openKmsg(follow bool) (io.ReadCloser, error) {
	flags := os.O_RDONLY
	if !follow {
		flags |= syscall.O_NONBLOCK
	}
	f, err := os.OpenFile("/dev/kmsg", flags, 0)
	if err != nil {
		return nil, fmt.Errorf("read the kernel log: %w (run as root, or give --from FILE)", err)
	}
	return kmsg{f}, nil
}

func (k kmsg) Read(p []byte) (int, error) {
	for {
		n, err := k.f.Read(p)
		switch {
		case errors.Is(err, syscall.EAGAIN):
			return 0, io.EOF
		case errors.Is(err, syscall.EPIPE):
			continue // records were overwritten before we read them
		}
		return n, err
	}
}

func (k kmsg) Close() error { return k.f.Close() }

// readLogLines calls fn for every line of r; /dev/kmsg continuation lines
// (" KEY=VALUE" after a record) are skipped.
func readLogLines(r io.Reader, fn func(string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, " ") {
			continue
		}
		if err := fn(line); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read log lines: %w", err)
	}
	return nil
}

func stepWhere(s probe.Step) string {
	if s.Rule != nil && s.Rule.Where() != "" {
		return s.Rule.Where()
	}
	if s.Policy {
		return "chain " + s.Chain + " policy"
	}
	return fmt.Sprintf("chain %s handle %d", s.Chain, s.Handle)
}

// writeAttribution prints one line with the log rule that wrote it.
func writeAttribution(w io.Writer, asJSON bool, a logattr.Attribution) error {
	if asJSON {
		return printJSON(w, a)
	}
	if a.Err != nil {
		_, err := fmt.Fprintf(w, "?: %s\n  not traced: %v\n", a.Line, a.Err)
		return err
	}
	var where []string
	for _, s := range a.LoggedBy {
		where = append(where, stepWhere(s))
	}
	if _, err := fmt.Fprintf(w, "%s: %s\n", strings.Join(where, ", "), a.Line); err != nil {
		return err
	}
	if a.Decided != nil {
		text := a.Decided.Verdict
		if a.Decided.Rule != nil {
			text = a.Decided.Rule.Text
		}
		if _, err := fmt.Fprintf(w, "  %s by %s: %s\n", a.Verdict, stepWhere(*a.Decided), text); err != nil {
			return err
		}
	}
	return nil
}
