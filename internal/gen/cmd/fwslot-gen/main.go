// Command fwslot-gen prints a generated nftables ruleset (see package
// internal/gen) to stdout, so that benchmarks of fwslot and of other tools
// (nft -f, ...) load the same content:
//
//	fwslot-gen -rules 10000 -seed 1 -family inet | nft -f -
//	fwslot-gen -rules 10000 -seed 1 -family ip -sets=false -format iptables | iptables-restore
//
// With -corpus DIR it writes the generated fidelity corpus (gen.Corpus)
// into DIR instead, replacing the .nft files there:
//
//	fwslot-gen -corpus testdata/corpus/gen
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/fwslot/fwslot/internal/gen"
)

func main() {
	var opts gen.Options
	flag.IntVar(&opts.Rules, "rules", 1000, "exact number of rules")
	flag.Int64Var(&opts.Seed, "seed", 1, "random seed; equal flags give equal output")
	flag.StringVar(&opts.Family, "family", "inet", "table family: inet, ip or ip6")
	flag.StringVar(&opts.Table, "table", "filter", "table name")
	flag.BoolVar(&opts.Sets, "sets", true, "declare named sets and a named verdict map and use them")
	corpus := flag.String("corpus", "", "write the generated fidelity corpus into this directory and exit")
	format := flag.String("format", "nft", "nft, or iptables (iptables-save form of the same rules; needs -sets=false; with -family inet prints the ip6tables part after the iptables part)")
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "fwslot-gen: unexpected arguments:", flag.Args())
		os.Exit(2)
	}
	if *corpus != "" {
		if err := writeCorpus(*corpus); err != nil {
			fmt.Fprintln(os.Stderr, "fwslot-gen:", err)
			os.Exit(1)
		}
		return
	}
	if !gen.ValidFamily(opts.Family) {
		fmt.Fprintf(os.Stderr, "fwslot-gen: unsupported family %q (want inet, ip or ip6)\n", opts.Family)
		os.Exit(2)
	}
	if opts.Rules < 0 {
		fmt.Fprintln(os.Stderr, "fwslot-gen: -rules must not be negative")
		os.Exit(2)
	}
	text := ""
	switch *format {
	case "nft":
		text = gen.Ruleset(opts)
	case "iptables":
		ipt, err := gen.IptablesSave(opts)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fwslot-gen:", err)
			os.Exit(2)
		}
		text = ipt.V4 + ipt.V6
	default:
		fmt.Fprintf(os.Stderr, "fwslot-gen: -format is nft or iptables, not %q\n", *format)
		os.Exit(2)
	}
	if _, err := os.Stdout.WriteString(text); err != nil {
		fmt.Fprintln(os.Stderr, "fwslot-gen:", err)
		os.Exit(1)
	}
}

// writeCorpus replaces the .nft files of dir with gen.Corpus().
func writeCorpus(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	old, err := filepath.Glob(filepath.Join(dir, "*.nft"))
	if err != nil {
		return err
	}
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return err
		}
	}
	for _, f := range gen.Corpus() {
		if err := os.WriteFile(filepath.Join(dir, f.Name), []byte(f.Text), 0o644); err != nil {
			return err
		}
	}
	return nil
}
