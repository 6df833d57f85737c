package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/session"
)

// BigSetResult holds the samples of the large-set measurement: times in
// seconds, memory and sizes in MB.
type BigSetResult struct {
	Elements int
	SourceMB float64
	LoadCmd  []float64 // fwslot load
	LoadRSS  []float64
	SwapCmd  []float64 // fwslot swap right after
	DBGrowth []float64 // history file growth per load
	DBFirst  float64   // history file after the first version
	DBFinal  float64
	Versions int
	BlobMB   float64 // compiled form of the last version, as stored
	// Phases of one more load, in-process (bench.PhasedLoad), seconds.
	Phases    map[string]float64
	Nft       []float64 // nft -f (flush ruleset + file)
	NftRSS    []float64
	IpsetRest []float64 // ipset restore of a new set
	IpsetRSS  []float64
	IpsetSwap []float64 // ipset swap
	IpsetOK   bool
	IpsetWhy  string
}

func bigAddr(seed int64, i int) string {
	a := uint32(10)<<24 + uint32(seed%8)<<21 + uint32(i)
	return fmt.Sprintf("%d.%d.%d.%d", a>>24, a>>16&255, a>>8&255, a&255)
}

// writeBigSet writes an nft file with one table, one set of n IPv4
// addresses (distinct per seed) and one rule that looks it up, and the
// ipset restore file of the same addresses into set name.
func writeBigSet(dir string, n int, seed int64, ipsetName string) (nftFile, reload, ipsetFile string, err error) {
	nftFile = filepath.Join(dir, fmt.Sprintf("big%d-s%d.nft", n, seed))
	reload = filepath.Join(dir, fmt.Sprintf("big%d-s%d.reload.nft", n, seed))
	ipsetFile = filepath.Join(dir, fmt.Sprintf("big%d-s%d.ipset", n, seed))
	var b strings.Builder
	b.Grow(n*16 + 512)
	fmt.Fprintf(&b, "# %d-element set, seed %d\ntable ip filter {\n\tset big {\n\t\ttype ipv4_addr\n\t\telements = {", n, seed)
	for i := range n {
		if i%16 == 0 {
			b.WriteString("\n\t\t\t")
		}
		b.WriteString(bigAddr(seed, i))
		if i < n-1 {
			b.WriteString(", ")
		}
	}
	b.WriteString("\n\t\t}\n\t}\n\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n\t\tip saddr @big counter drop\n\t}\n}\n")
	text := b.String()
	if err = os.WriteFile(nftFile, []byte(text), 0o600); err != nil {
		return
	}
	if err = os.WriteFile(reload, []byte("flush ruleset\n"+text), 0o600); err != nil {
		return
	}
	f, err := os.Create(ipsetFile)
	if err != nil {
		return
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintf(w, "create %s hash:ip family inet hashsize %d maxelem %d\n", ipsetName, max(1024, n), max(65536, 2*n))
	for i := range n {
		fmt.Fprintf(w, "add %s %s\n", ipsetName, bigAddr(seed, i))
	}
	if err = w.Flush(); err != nil {
		f.Close()
		return
	}
	err = f.Close()
	return
}

// MeasureBigSet stages and swaps a set of n elements with fwslot, reloads
// the same file with nft -f, and builds and swaps the same set with ipset,
// each tool in its own namespace.
func MeasureBigSet(cfg *Config, n int) (res *BigSetResult, err error) {
	res = &BigSetResult{Elements: n}
	sc, err := newScratch(cfg, fmt.Sprintf("bigset%d", n))
	if err != nil {
		return nil, err
	}
	defer keepFirst(&err, sc.remove)
	dir := sc.dir
	files := make([][3]string, cfg.Runs+4)
	for s := range files {
		a, b, c, err := writeBigSet(dir, n, int64(s+1), "bignew")
		if err != nil {
			return nil, err
		}
		files[s] = [3]string{a, b, c}
	}
	if st, err := os.Stat(files[0][0]); err == nil {
		res.SourceMB = float64(st.Size()) / 1e6
	}
	mk := sc.create

	// fwslot: load version 1, swap; then per run load a new version
	// (timed, RSS, history growth) and swap to it (timed).
	tgt, err := mk()
	if err != nil {
		return nil, err
	}
	db := filepath.Join(dir, "fwslot.db")
	fw, fwRSS := cfg.fwslotOn(tgt, db)
	cfg.logf("  set of %d elements: fwslot load + swap", n)
	if _, err := fw("load", files[0][0]); err != nil {
		return nil, err
	}
	if _, err := fw("swap"); err != nil {
		return nil, err
	}
	res.DBFirst = fileMB(db)
	var lastV uint64
	for i := 0; i <= cfg.Runs; i++ {
		before := fileMB(db)
		p, err := fwRSS("load", files[i+1][0])
		if err != nil {
			return nil, err
		}
		after := fileMB(db)
		if m := stagedRE.FindStringSubmatch(p.Stdout); m != nil {
			lastV, _ = strconv.ParseUint(m[1], 10, 64)
		}
		q, err := fw("swap")
		if err != nil {
			return nil, err
		}
		if i > 0 {
			res.LoadCmd = append(res.LoadCmd, p.Wall.Seconds())
			res.LoadRSS = append(res.LoadRSS, float64(p.MaxRSS)/1e6)
			res.DBGrowth = append(res.DBGrowth, after-before)
			res.SwapCmd = append(res.SwapCmd, q.Wall.Seconds())
		}
	}
	res.DBFinal = fileMB(db)
	res.Versions = cfg.Runs + 2
	if err := func() error {
		store, err := history.Open(db, history.Options{})
		if err != nil {
			return err
		}
		defer store.Close()
		t := &session.Target{NetNS: tgt, Store: store}
		if b, err := store.Compiled(t.Key(), lastV); err == nil {
			res.BlobMB = float64(len(b)) / 1e6
		}
		// One more load in-process, phase by phase.
		cfg.logf("  set of %d elements: one phased in-process load", n)
		ph, err := PhasedLoad(context.Background(), t, files[cfg.Runs+3][0])
		if err != nil {
			return err
		}
		res.Phases = map[string]float64{}
		for k, v := range ph {
			res.Phases[k] = v.Seconds()
		}
		return nil
	}(); err != nil {
		return nil, err
	}

	// nft -f: full reload of the same files, alternating.
	cfg.logf("  set of %d elements: nft -f", n)
	cmp, err := mk()
	if err != nil {
		return nil, err
	}
	if _, err := Nft(cmp, files[0][1]); err != nil {
		return nil, err
	}
	for i := 0; i <= cfg.Runs; i++ {
		p, err := NftRSS(cmp, files[i+1][1])
		if err != nil {
			return nil, err
		}
		if i > 0 {
			res.Nft = append(res.Nft, p.Wall.Seconds())
			res.NftRSS = append(res.NftRSS, float64(p.MaxRSS)/1e6)
		}
	}

	// ipset: restore a new set "bignew", swap it with "big" (which an
	// iptables rule matches), destroy the old one.
	if _, e := exec.LookPath("ipset"); e != nil {
		res.IpsetWhy = "ipset not installed (apt-get install ipset)"
		return res, nil
	}
	cfg.logf("  set of %d elements: ipset restore + ipset swap", n)
	ips, err := mk()
	if err != nil {
		return nil, err
	}
	if _, err := Run(ips, "ipset", "create", "big", "hash:ip", "family", "inet", "hashsize", strconv.Itoa(max(1024, n)), "maxelem", strconv.Itoa(max(65536, 2*n))); err != nil {
		res.IpsetWhy = "ipset not available on this kernel: " + err.Error()
		return res, nil
	}
	rule := filepath.Join(dir, "ipset.rules")
	os.WriteFile(rule, []byte("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m set --match-set big src -j DROP\nCOMMIT\n"), 0o600)
	if _, err := Run(ips, IptNft, rule); err != nil {
		return nil, err
	}
	for i := 0; i <= cfg.Runs; i++ {
		p, err := RunRSS(ips, "ipset", "restore", "-file", files[i+1][2])
		if err != nil {
			return nil, err
		}
		q, err := Run(ips, "ipset", "swap", "big", "bignew")
		if err != nil {
			return nil, err
		}
		if _, err := Run(ips, "ipset", "destroy", "bignew"); err != nil {
			return nil, err
		}
		if i > 0 {
			res.IpsetRest = append(res.IpsetRest, p.Wall.Seconds())
			res.IpsetRSS = append(res.IpsetRSS, float64(p.MaxRSS)/1e6)
			res.IpsetSwap = append(res.IpsetSwap, q.Wall.Seconds())
		}
	}
	res.IpsetOK = true
	return res, nil
}

func fileMB(path string) float64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return float64(st.Size()) / 1e6
}

// BigSetTable renders the large-set measurement.
func BigSetTable(r *BigSetResult) *Table {
	t := &Table{Title: fmt.Sprintf("a large set: %d elements, staged and made live", r.Elements),
		Note: fmt.Sprintf("One `table ip filter` with `set big { type ipv4_addr; elements = { %d addresses } }` and one rule `ip saddr @big counter drop` (source %.1f MB; fwslot's source limit is 32 MiB). "+
			"fwslot: `fwslot load` of a new version (different addresses each run), then `fwslot swap`; history growth = (file size after the last version − after the first) / versions added (bbolt grows its file in steps, so single loads are lumpy); the history keeps the source and the compiled form of every version. "+
			"nft: `nft -f` of `flush ruleset` + the same file. ipset: `ipset restore` of a new set of the same addresses, then `ipset swap` with the set an iptables rule matches (then `ipset destroy` of the old one, untimed). Median (min–max).", r.Elements, r.SourceMB),
		Header: []string{"tool", "stage / load", "peak RSS", "make live", "stage+live / fwslot", "history growth per version"}}
	lc, sc := Summarize(r.LoadCmd), Summarize(r.SwapCmd)
	fwTotal := lc.Median + sc.Median
	t.AddRow("fwslot load + swap", FmtTime(lc), FmtMB(Summarize(r.LoadRSS)), FmtTime(sc), "1x",
		fmt.Sprintf("%.1f MB a version (file %.0f MB after 1 version, %.0f MB after %d; compiled form %.1f MB a version)",
			(r.DBFinal-r.DBFirst)/float64(r.Versions-1), r.DBFirst, r.DBFinal, r.Versions, r.BlobMB))
	ns := Summarize(r.Nft)
	t.AddRow("nft -f (reload)", "–", FmtMB(Summarize(r.NftRSS)), FmtTime(ns), Ratio(ns.Median, fwTotal), "–")
	if r.IpsetOK {
		ir, is := Summarize(r.IpsetRest), Summarize(r.IpsetSwap)
		t.AddRow("ipset restore + ipset swap", FmtTime(ir), FmtMB(Summarize(r.IpsetRSS)), FmtTime(is), Ratio(ir.Median+is.Median, fwTotal), "–")
	} else {
		t.AddRow("ipset restore + ipset swap", r.IpsetWhy, "", "", "", "")
	}
	t.Verdicts = append(t.Verdicts, fmt.Sprintf("making it live: fwslot swap %s vs nft -f %s (%s) vs ipset swap %s",
		FmtSeconds(sc.Median), FmtSeconds(ns.Median), Ratio(ns.Median, sc.Median)+" nft/fwslot", FmtSeconds(Summarize(r.IpsetSwap).Median)))
	if len(r.Phases) > 0 {
		var parts []string
		for _, p := range Phases {
			if v := r.Phases[p]; v >= 0.001 {
				parts = append(parts, fmt.Sprintf("%s %s", p, FmtSeconds(v)))
			}
		}
		t.Verdicts = append(t.Verdicts, "one more `fwslot load`, in-process, by phase (bench.PhasedLoad, one run; phases over 1 ms): "+strings.Join(parts, "; "))
	}
	return t
}
