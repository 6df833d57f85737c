package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/nsutil"
	"github.com/fwslot/fwslot/internal/source"
	"github.com/fwslot/fwslot/internal/sysbin"
	"github.com/fwslot/fwslot/probe"
	"github.com/fwslot/fwslot/rulediff"
	"github.com/fwslot/fwslot/slots"
	"github.com/fwslot/fwslot/swap"
	"github.com/fwslot/fwslot/watch"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// ---------------------------------------------------------------- diff

// diffSide is one ruleset a diff compares.
type diffSide struct {
	Spec    string `json:"spec"`
	Label   string `json:"label"`
	Version uint64 `json:"version,omitempty"`
	File    string `json:"file,omitempty"`
	rs      *slots.Ruleset
	loc     probe.Locator
}

// sideResolver turns diff arguments into compiled rulesets, reading the
// target's status and history only when an argument needs them.
type sideResolver struct {
	ctx    context.Context
	g      *globals
	t      *slots.Target
	status *slots.Status
	ifaces []slots.Iface
}

func (r *sideResolver) resolve(spec string) (*diffSide, error) {
	s := &diffSide{Spec: spec}
	switch {
	case spec == "production" || spec == "staging":
		if r.status == nil {
			st, err := r.t.Status()
			if err != nil {
				return nil, err
			}
			r.status = st
		}
		info := r.status.Production
		if spec == "staging" {
			info = r.status.Staging
		}
		if info == nil {
			return nil, fmt.Errorf("the %s slot is empty; name a version number or a file instead", spec)
		}
		if err := r.version(s, info.Version); err != nil {
			return nil, err
		}
		s.Label = fmt.Sprintf("%s (version %d)", spec, info.Version)
	case isNumber(spec):
		n, _ := strconv.ParseUint(spec, 10, 64)
		if err := r.version(s, n); err != nil {
			return nil, err
		}
		s.Label = "version " + spec
	default:
		if _, err := os.Stat(spec); err != nil {
			return nil, usagef("diff: %q is not a version number, production, staging or a readable file (%v)", spec, err)
		}
		// Read under the include policy before nft sees anything, and
		// compile exactly what was read.
		b, err := readRuleset(r.g, spec)
		if err != nil {
			return nil, err
		}
		rs, err := slots.CompileBundle(r.ctx, b, r.ifaces, nil)
		if err != nil {
			return nil, err
		}
		loc, err := probe.SourceLocator(b)
		if err != nil {
			return nil, err
		}
		s.File, s.rs, s.loc, s.Label = spec, rs, loc, spec
	}
	return s, nil
}

func isNumber(s string) bool {
	n, err := strconv.ParseUint(s, 10, 64)
	return err == nil && n > 0
}

// version loads a stored version: its compiled form, or, when history
// holds none, its flattened source compiled again.
func (r *sideResolver) version(s *diffSide, n uint64) error {
	if r.t.Store == nil {
		return usagef("no history yet (%s does not exist)", r.g.db)
	}
	v, err := r.t.Store.Get(r.t.Key(), n)
	if err != nil {
		if errors.Is(err, history.ErrNotFound) {
			return usageError{err}
		}
		return err
	}
	s.Version, s.loc = n, historyLocator(v)
	blob, err := r.t.Store.Compiled(r.t.Key(), n)
	if err != nil {
		return err
	}
	if len(blob) > 0 {
		s.rs, err = slots.Decode(blob)
		return err
	}
	// Compiled from memory: no file a user could swap in between.
	b, err := source.FromText(fmt.Sprintf("/version-%d.nft", n), v.Source)
	if err != nil {
		return fmt.Errorf("version %d: %w", n, err)
	}
	s.rs, err = slots.CompileBundle(r.ctx, b, r.ifaces, nil)
	return err
}

// probeChange is a probe whose verdict differs between the two sides.
type probeChange struct {
	Probe string `json:"probe"`
	Where string `json:"where"`
	A     string `json:"a"`
	B     string `json:"b"`
}

// newRulesetDiff is `fwslot diff`: the ruleset diff, and with --probes the
// probes whose verdict changes.
func newRulesetDiff(g *globals) *cobra.Command {
	var probesFile, topoFile, color string
	var context int
	c := &cobra.Command{
		Use:   "diff [A [B]]",
		Short: "Show what changes between two rulesets (default: production and staging)",
		Long: `Compare two rulesets as nft prints them, table by table and chain by chain,
so moved includes, reformatted whitespace and defines do not show, only
what the kernel would run differently. A and B are each a version number,
"production", "staging" or a ruleset file; the defaults are production
and staging, so "fwslot diff" shows what the next swap changes.

Each side is rendered in a private network namespace (compiled for the
target's interfaces, or installed from history) and listed with nft;
fwslot's slot layout is removed, so you see your own chain and set names.
Lines are coloured on a terminal (--color). With --probes FILE the same
probes run against twins of both sides and the probes whose verdict or
NAT outcome differs are listed too.`,
		Example: `  fwslot diff                       # production -> staging: what a swap changes
  fwslot diff 3 5
  fwslot diff production ruleset.nft
  fwslot diff --probes ruleset.probes`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 2 {
				return usagef("diff takes at most two rulesets, got %d (see fwslot diff --help)", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			specs := append(append([]string{}, args...), "production", "staging")[:2]
			if len(args) == 1 {
				specs = []string{args[0], "staging"}
			}
			useColor, err := colorWanted(color, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			var ps []probe.Probe
			var topo probe.Topology
			if probesFile != "" {
				if ps, err = readProbes(probesFile); err != nil {
					return err
				}
				if topo, err = readTopology(topoFile); err != nil {
					return err
				}
			}
			t, done, err := g.target(false)
			if err != nil {
				return err
			}
			defer done()
			ifs, err := slots.Interfaces(g.netns)
			if err != nil {
				return err
			}
			r := &sideResolver{ctx: cmd.Context(), g: g, t: t, ifaces: ifs}
			var sides [2]*diffSide
			for i, spec := range specs {
				if sides[i], err = r.resolve(spec); err != nil {
					return fmt.Errorf("%s: %w", spec, err)
				}
			}
			var rendered [2]*rulediff.Ruleset
			for i, s := range sides {
				if rendered[i], err = rulediff.RenderCompiled(cmd.Context(), s.rs, ifs); err != nil {
					return fmt.Errorf("render %s: %w", s.Label, err)
				}
			}
			changes := rulediff.Compare(rendered[0], rendered[1])
			var pchanges []probeChange
			if len(ps) > 0 {
				if pchanges, err = probeChanges(cmd.Context(), sides, ps, topo, ifs); err != nil {
					return err
				}
			}
			if g.json {
				out := struct {
					A       *diffSide         `json:"a"`
					B       *diffSide         `json:"b"`
					Changes []rulediff.Change `json:"changes"`
					Probes  []probeChange     `json:"probes,omitempty"`
					Summary map[string]int    `json:"summary"`
				}{A: sides[0], B: sides[1], Changes: changes, Probes: pchanges, Summary: diffSummary(changes)}
				if ps != nil && out.Probes == nil {
					out.Probes = []probeChange{}
				}
				return printJSON(cmd.OutOrStdout(), out)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "--- %s\n+++ %s\n", sides[0].Label, sides[1].Label)
			if len(changes) == 0 {
				fmt.Fprintln(w, "no differences in the rulesets")
			} else {
				if err := rulediff.WriteText(w, changes, rulediff.Style{Color: useColor, Context: context}); err != nil {
					return err
				}
				s := diffSummary(changes)
				what := fmt.Sprintf("%d objects differ", s["objects"])
				if s["objects"] == 1 {
					what = "1 object differs"
				}
				fmt.Fprintf(w, "%s (+%d -%d lines)\n", what, s["added"], s["removed"])
			}
			if len(ps) > 0 {
				for _, c := range pchanges {
					fmt.Fprintf(w, "%s: %s\n  %-11s %s\n  %-11s %s\n", c.Where, c.Probe, sides[0].Spec+":", c.A, sides[1].Spec+":", c.B)
				}
				fmt.Fprintf(w, "%d of %d probes change verdict from %s to %s\n", len(pchanges), len(ps), sides[0].Spec, sides[1].Spec)
			}
			return nil
		},
	}
	c.Flags().StringVar(&probesFile, "probes", "", "also list the probes in this file whose verdict differs")
	c.Flags().StringVar(&topoFile, "topology", "", "interfaces of the probe twins (default: inferred from the probes)")
	c.Flags().StringVar(&color, "color", "auto", "colour the diff: auto (on a terminal), always or never")
	c.Flags().IntVar(&context, "context", 3, "unchanged lines shown around each change")
	return c
}

func diffSummary(changes []rulediff.Change) map[string]int {
	s := map[string]int{"objects": len(changes)}
	for _, c := range changes {
		s["added"] += c.Added()
		s["removed"] += c.Removed()
	}
	return s
}

// probeChanges runs the probes against twins of both sides.
func probeChanges(ctx context.Context, sides [2]*diffSide, ps []probe.Probe, topo probe.Topology, ifs []slots.Iface) ([]probeChange, error) {
	if len(topo.Interfaces) == 0 {
		topo = probe.InferTopology(ps)
	}
	topo = probe.MirrorIndexes(topo, ifs)
	var reps [2]probe.Report
	for i, s := range sides {
		rep, err := probe.Run(ctx, topo, probe.RulesetLoader(s.rs), ps, nil, probe.Options{Locate: s.loc})
		if err != nil {
			return nil, fmt.Errorf("probes on %s: %w", s.Label, err)
		}
		reps[i] = rep
	}
	out := []probeChange{}
	for i, p := range ps {
		a, b := reps[0].Results[i], reps[1].Results[i]
		if string(a.Got) != string(b.Got) || a.Outcome != b.Outcome {
			out = append(out, probeChange{p.Text, p.Where(), fmt.Sprintf("%s (%s)", a.Got, a.Outcome), fmt.Sprintf("%s (%s)", b.Got, b.Outcome)})
		}
	}
	return out, nil
}

// colorWanted decides whether to colour output: "auto" colours a terminal
// unless NO_COLOR is set or TERM is dumb.
func colorWanted(mode string, w io.Writer) (bool, error) {
	switch mode {
	case "always":
		return true, nil
	case "never":
		return false, nil
	case "auto":
		if os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
			return false, nil
		}
		return isTerminal(w), nil
	}
	return false, usagef("--color is auto, always or never, not %q", mode)
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// ------------------------------------------------------- history views

// historyRow is one version in `history --json`.
type historyRow struct {
	history.Version
	Slot    string `json:"slot,omitempty"`
	Added   int    `json:"lines_added"`
	Removed int    `json:"lines_removed"`
}

// runHistory lists versions with lines changed against the previous
// version and the slot each sits in, then activations with how each ended.
func runHistory(g *globals, cmd *cobra.Command, limit int) error {
	t, done, err := g.target(false)
	if err != nil {
		return err
	}
	defer done()
	if t.Store == nil {
		if g.json {
			return printJSON(cmd.OutOrStdout(), []any{})
		}
		fmt.Fprintf(cmd.OutOrStdout(), "no history yet (%s does not exist)\n", g.db)
		return nil
	}
	rows, acts, err := historyRows(t, limit)
	if err != nil {
		return err
	}
	if g.json {
		return printJSON(cmd.OutOrStdout(), rows)
	}
	w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "VERSION\tTIME\tUSER\tHASH\tCHANGE\tRULES\tSLOT\tMESSAGE")
	for _, r := range rows {
		change := fmt.Sprintf("+%d -%d", r.Added, r.Removed)
		if r.Origin == "adopted" {
			change = "adopted"
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", r.Number, r.Time.Local().Format("2006-01-02 15:04:05"),
			printable(r.User), printable(short(r.Hash)), change, r.Rules, r.Slot, printable(r.Message))
	}
	w.Flush()
	if len(acts) == 0 {
		return nil
	}
	fmt.Fprintln(cmd.OutOrStdout())
	w = tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ACTIVATION\tTIME\tHOW\tFROM\tTO\tUSER\tENDED")
	for _, a := range acts {
		from := "-"
		if a.From != 0 {
			from = strconv.FormatUint(a.From, 10)
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%d\t%s\t%s\n", a.Seq, a.Time.Local().Format("2006-01-02 15:04:05"), printable(a.How), from, a.To, printable(a.User), printable(a.Ended))
	}
	return w.Flush()
}

// activationRow is an activation with how it ended.
type activationRow struct {
	history.Activation
	Ended string `json:"ended"`
}

// historyRows reads the newest limit versions (all when limit <= 0) with
// their line counts and slots, and the activations with their endings.
func historyRows(t *slots.Target, limit int) ([]historyRow, []activationRow, error) {
	vs, err := t.Store.Versions(t.Key())
	if err != nil {
		return nil, nil, err
	}
	acts, err := t.Store.Activations(t.Key())
	if err != nil {
		return nil, nil, err
	}
	start := 0
	if limit > 0 && len(vs) > limit {
		start = len(vs) - limit
	}
	slotOf := map[uint64]string{}
	if s, err := t.Status(); err == nil {
		if s.Production != nil {
			slotOf[s.Production.Version] = "production"
		}
		if s.Staging != nil {
			slotOf[s.Staging.Version] = "staging"
		}
	}
	rows := make([]historyRow, 0, len(vs)-start)
	var prev []string
	if start > 0 {
		if p, err := t.Store.Get(t.Key(), vs[start-1].Number); err == nil {
			prev = splitLines(p.Source)
		}
	}
	for _, v := range vs[start:] {
		full, err := t.Store.Get(t.Key(), v.Number)
		if err != nil {
			return nil, nil, err
		}
		cur := splitLines(full.Source)
		add, rm := rulediff.CountLines(prev, cur)
		rows = append(rows, historyRow{Version: v, Slot: slotOf[v.Number], Added: add, Removed: rm})
		prev = cur
	}
	arows := make([]activationRow, 0, len(acts))
	for i, a := range acts {
		arows = append(arows, activationRow{a, activationEnd(acts, i)})
	}
	if limit > 0 && len(arows) > limit {
		arows = arows[len(arows)-limit:]
	}
	return rows, arows, nil
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// activationEnd says how activation i ended, from what came after it:
// "live", "rolled back", "reverted", "replaced by N", and for confirmed
// swaps "confirmed" or "pending confirmation".
func activationEnd(acts []history.Activation, i int) string {
	a := acts[i]
	result := a.Result
	var end string
	if i+1 < len(acts) {
		next := acts[i+1]
		switch {
		case result == "reverted" || next.How == "revert":
			end = "reverted"
		case next.How == "rollback":
			end = "rolled back"
		default:
			end = fmt.Sprintf("replaced by %d", next.To)
		}
	} else {
		end = "live"
		if result == "pending" {
			return "pending confirmation"
		}
	}
	if result == "confirmed" {
		return "confirmed, " + end
	}
	return end
}

// printOriginal prints a version's files as written, includes separate,
// each after a "# ==> FILE <==" line (`show --original`).
func printOriginal(g *globals, cmd *cobra.Command, n uint64, v history.Version) error {
	if g.json {
		type file struct {
			Path    string `json:"path"`
			Content string `json:"content"`
		}
		files := []file{}
		for _, f := range v.Files {
			files = append(files, file{f.Path, string(f.Content)})
		}
		return printJSON(cmd.OutOrStdout(), struct {
			history.Version
			Files []file `json:"files"`
		}{v, files})
	}
	w := cmd.OutOrStdout()
	if len(v.Files) == 0 {
		fmt.Fprintf(w, "# ==> version %d (%s): no files recorded; its source as fwslot read it <==\n%s", n, printable(v.Origin), v.Source)
		return nil
	}
	for i, f := range v.Files {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "# ==> %s <==\n", printable(f.Path))
		w.Write(f.Content)
		if len(f.Content) > 0 && f.Content[len(f.Content)-1] != '\n' {
			fmt.Fprintln(w)
		}
	}
	return nil
}

// ------------------------------------------------------------- prune

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
			t, done, err := g.target(true)
			if err != nil {
				return err
			}
			defer done()
			st, err := t.Status()
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

// -------------------------------------------------------------- watch

// cliStager stages through the same path as `fwslot load`, opening the
// history only for the time of one change, so other fwslot commands run
// while watch waits.
type cliStager struct {
	g       *globals
	message string
	probes  []probe.Probe
	topo    probe.Topology
	swap    bool
	confirm time.Duration
	keep    string // --keep-access; the lockout guard as in load and swap
}

func (s *cliStager) Stage(ctx context.Context, file string) (watch.Outcome, error) {
	t, done, err := s.g.target(true)
	if err != nil {
		return watch.Outcome{}, err
	}
	defer done()
	guardStage, guardLive, err := lockoutGuard(s.g, s.keep, false)
	if err != nil {
		return watch.Outcome{}, err
	}
	opts := slots.LoadOptions{Message: s.message, IncludeDirs: s.g.includeDirs}
	var probes func(context.Context, string, *slots.Ruleset) error
	if len(s.probes) > 0 {
		probes = func(ctx context.Context, file string, rs *slots.Ruleset) error {
			return runProbes(ctx, s.g, file, rs, s.probes, s.topo)
		}
	}
	opts.Check = allChecks(probes, guardStage)
	res, err := t.Load(ctx, file, opts)
	if err != nil {
		return watch.Outcome{}, err
	}
	if res.Unchanged != "" {
		return watch.Outcome{Kind: watch.Unchanged, Version: res.Version, Detail: res.Unchanged + " holds it"}, nil
	}
	out := watch.Outcome{Kind: watch.Staged, Version: res.Version}
	if !s.swap || res.Unchanged != "" {
		return out, nil
	}
	// Probes passed (Load refuses otherwise): make it live, provisionally.
	sw, err := swap.Swap(ctx, t, swap.Options{Confirm: s.confirm, Check: guardLive})
	if err != nil {
		out.Detail = "not made live: " + watch.FirstErrorLine(err)
		return out, nil
	}
	if err := startWatchdog(s.g, t, sw); err != nil {
		out.Detail = fmt.Sprintf("watchdog did not start (%v); the next fwslot command after the deadline reverts", err)
	}
	out.Live = true
	return out, nil
}

// runProbes proves a compiled candidate in a twin with the target's
// interface indexes; an error names the first failing probe.
func runProbes(ctx context.Context, g *globals, file string, rs *slots.Ruleset, ps []probe.Probe, topo probe.Topology) error {
	rep, err := proveCandidate(ctx, g, file, rs, ps, topo)
	if err != nil {
		return err
	}
	if rep.OK() {
		return nil
	}
	for i, r := range rep.Results {
		if !r.Passed() {
			why := r.Failure
			if why == "" {
				why = r.Error
			}
			return fmt.Errorf("probe %s failed: %s (%d of %d probes failed)", ps[i].Where(), why, rep.Failed, len(rep.Results))
		}
	}
	return probesFailed{rep.Failed, len(rep.Results)}
}

func newWatch(g *globals) *cobra.Command {
	var probesFile, topoFile, msg, keep string
	var doSwap bool
	var confirm, debounce time.Duration
	c := &cobra.Command{
		Use:   "watch RULESET",
		Short: "Stage a ruleset again whenever it or a file it includes changes",
		Long: `Follow RULESET and every file it includes (the include list is read again
after each change; editors that save by renaming a new file over the old
one are followed), and on each change of content compile it, run the
probes (--probes) and stage it, printing one line per outcome:

  staged v7            rejected: ruleset.nft:12:5-9: Error: ...       unchanged

Bursts of writes are staged once (--debounce). Nothing goes live unless
--swap is given; then every staged version that passes all probes (--probes
is required) is swapped live provisionally, with --confirm D: unless
"fwslot confirm" runs within D, the previous version comes back. watch runs
in the foreground until SIGINT or SIGTERM; deploy/systemd ships a unit.`,
		Example: `  fwslot watch /etc/fwslot/ruleset.nft --probes /etc/fwslot/ruleset.probes
  fwslot watch ruleset.nft --probes ruleset.probes --swap --confirm 2m`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if doSwap && (probesFile == "" || confirm <= 0) {
				return usagef("--swap needs --probes FILE and --confirm DURATION: watch makes nothing live that no probe proved, nor without a way back")
			}
			if !doSwap && confirm != 0 {
				return usagef("--confirm only goes with --swap")
			}
			if _, err := os.Stat(args[0]); err != nil {
				return usageError{fmt.Errorf("watch: %w", err)}
			}
			if _, _, err := lockoutGuard(g, keep, false); err != nil {
				return err
			}
			st := &cliStager{g: g, message: msg, swap: doSwap, confirm: confirm, keep: keep}
			if probesFile != "" {
				var err error
				if st.probes, err = readProbes(probesFile); err != nil {
					return err
				}
				if st.topo, err = readTopology(topoFile); err != nil {
					return err
				}
			}
			if st.message == "" {
				st.message = "watch: " + filepath.Base(args[0]) + " changed"
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			w := cmd.OutOrStdout()
			report := func(r watch.Report) {
				if r.Outcome.Kind == watch.Same {
					return
				}
				if g.json {
					printJSONLine(w, r)
					return
				}
				fmt.Fprintln(w, watchLine(r))
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "fwslot: watching %s and its includes (Ctrl-C stops)\n", args[0])
			return watch.Run(ctx, watch.Config{File: args[0], IncludeDirs: g.includeDirs, Debounce: debounce, Stager: st, Report: report})
		},
	}
	c.Flags().StringVar(&probesFile, "probes", "", "refuse to stage a version unless every probe in this file passes")
	c.Flags().StringVar(&topoFile, "topology", "", "interfaces of the probe twin (default: inferred from the probes)")
	c.Flags().StringVarP(&msg, "message", "m", "", `message recorded with each version (default "watch: FILE changed")`)
	c.Flags().BoolVar(&doSwap, "swap", false, "make each staged version that passes all probes live (needs --probes and --confirm)")
	c.Flags().DurationVar(&confirm, "confirm", 0, "with --swap: revert unless `fwslot confirm` runs within this time")
	c.Flags().DurationVar(&debounce, "debounce", watch.DefaultDebounce, "quiet time after the last write before a change is staged")
	c.Flags().StringVar(&keep, "keep-access", "", `refuse to stage or swap a version that would cut this connection, like "198.51.100.7:50022 -> 192.0.2.10:22" (default: $SSH_CONNECTION on the host)`)
	return c
}

// watchLine is the one line watch prints for a report.
func watchLine(r watch.Report) string {
	ts := r.Time.Local().Format("15:04:05")
	o := r.Outcome
	var line string
	switch o.Kind {
	case watch.Staged:
		line = fmt.Sprintf("staged v%d", o.Version)
		if o.Live {
			line += ", live pending confirmation (fwslot confirm)"
		}
	case watch.Unchanged:
		line = fmt.Sprintf("unchanged (v%d)", o.Version)
	default:
		line = o.Kind
	}
	if o.Detail != "" {
		if o.Kind == watch.Rejected {
			line += ": " + o.Detail
		} else {
			line += " (" + o.Detail + ")"
		}
	}
	return ts + " " + line
}

func printJSONLine(w io.Writer, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		return
	}
	w.Write(append(data, '\n'))
}

// ------------------------------------------------------ from iptables

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
