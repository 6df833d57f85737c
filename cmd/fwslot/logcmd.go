package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/fwslot/fwslot/internal/logattr"
	"github.com/fwslot/fwslot/probe"
)

// packetOf reads the packet of probe/explain: a probe line from the
// arguments, or the packet a kernel log line describes (--log), with the
// line's log prefix.
func packetOf(args []string, logLine string) (probe.Probe, string, error) {
	if logLine != "" {
		p, prefix, err := logattr.ParseLine(logLine)
		if err != nil {
			return p, "", usageError{fmt.Errorf("%w (give the line as dmesg or journalctl -k prints it)", err)}
		}
		return p, prefix, nil
	}
	p, err := probe.ParseLine(strings.Join(args, " "))
	if err != nil {
		return p, "", usageError{err}
	}
	return p, "", nil
}

// noLogRule is explain --log's failure when no rule on the packet's path
// logs with the line's prefix: the line was not written by this ruleset.
type noLogRule struct{ prefix string }

func (e noLogRule) Error() string {
	return fmt.Sprintf("no rule with log prefix %q is on this packet's path: this ruleset did not write the line (check --slot/--file, or the line's prefix)", e.prefix)
}

// writeLogWriters names the log rules on the path that log with prefix:
// the rules that wrote the line.
func writeLogWriters(w io.Writer, path probe.Path, prefix string) error {
	steps := logattr.Steps(path, prefix)
	if len(steps) == 0 {
		return noLogRule{prefix}
	}
	for _, s := range steps {
		where := ""
		if s.Rule.Where() != "" {
			where = s.Rule.Where() + ": "
		}
		fmt.Fprintf(w, "logged by %schain %s: %s\n", where, s.Chain, s.Rule.Text)
	}
	return nil
}

// printLogJSON prints explain --log's result with the log rules that wrote
// the line.
func printLogJSON(w io.Writer, r probe.Result, prefix string) error {
	steps := logattr.Steps(r.Path, prefix)
	if err := printJSON(w, struct {
		probe.Result
		Prefix   string       `json:"log_prefix"`
		LoggedBy []probe.Step `json:"logged_by"`
	}{r, prefix, steps}); err != nil {
		return err
	}
	if len(steps) == 0 && r.Err == nil && r.Error == "" {
		return noLogRule{prefix}
	}
	return nil
}

// logHelp is explain's help for --log.
func logHelp(name string) string {
	if name != "explain" {
		return ""
	}
	return `

--log LINE takes a line the nftables log statement wrote instead (as dmesg
or journalctl -k print it), runs its packet the same way and names the log
rule on the packet's path whose prefix is the line's ("logged by
FILE:LINE"). Exit 1 when no rule on the path logs with that prefix.`
}
