package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/fwslot/fwslot/internal/gen"
	"github.com/fwslot/fwslot/internal/sandbox"
)

// Family is the table family of every generated ruleset: ip, so that
// iptables-restore loads the same content (gen.IptablesSave) as nft and
// fwslot.
const Family = "ip"

// track registers a namespace made outside CreateNS for DeleteAllNS.
func track(name string) {
	cleanup.Lock()
	if cleanup.ns == nil {
		cleanup.ns = map[string]bool{}
	}
	cleanup.ns[name] = true
	cleanup.Unlock()
}

func untrack(name string) {
	cleanup.Lock()
	delete(cleanup.ns, name)
	cleanup.Unlock()
}

// Sandbox is an internal/sandbox pair (target and client joined by veth
// eth0, 192.0.2.1 and 192.0.2.2) whose namespaces DeleteAllNS also removes.
type Sandbox struct{ *sandbox.Sandbox }

// NewSandbox creates a target/client pair named fwsb-tgt-* / fwsb-cli-*.
func NewSandbox() (*Sandbox, error) {
	sb, err := sandbox.New(NsPrefix)
	if err != nil {
		return nil, err
	}
	track(sb.Target)
	track(sb.Client)
	return &Sandbox{sb}, nil
}

// Close removes both namespaces.
func (s *Sandbox) Close() error {
	untrack(s.Target)
	untrack(s.Client)
	return s.Sandbox.Close()
}

// WriteIptables writes gen.IptablesSave of the ruleset WriteRuleset(dir,
// n, seed) writes, and returns its path and its number of rules.
func WriteIptables(dir string, n int, seed int64) (string, int, error) {
	ipt, err := gen.IptablesSave(gen.Options{Rules: n, Seed: seed, Family: Family})
	if err != nil {
		return "", 0, err
	}
	p := filepath.Join(dir, fmt.Sprintf("r%d-s%d.iptables", n, seed))
	return p, ipt.Rules4, os.WriteFile(p, []byte(ipt.V4), 0o600)
}

// timeBin is GNU time, used by RunRSS.
const timeBin = "/usr/bin/time"

// RunRSS is Run with a true peak RSS. Go starts children with
// CLONE_VFORK|CLONE_VM, and the kernel folds the parent's RSS at exec into
// the child's ru_maxrss, so Run's MaxRSS is never below the benchmark
// process's own RSS (tens of MB after generating large rulesets). RunRSS
// runs the command under GNU time, which forks it normally, and takes its
// %M (maximum RSS of the command, including the descendants it waited
// for). Without /usr/bin/time it falls back to Run. Wall time includes
// time's own fork and exec (about 1 ms).
func RunRSS(ns string, name string, args ...string) (Proc, error) {
	if _, err := os.Stat(timeBin); err != nil {
		return Run(ns, name, args...)
	}
	f, err := os.CreateTemp("", "fwsb-rss-*")
	if err != nil {
		return Proc{}, err
	}
	f.Close()
	defer os.Remove(f.Name())
	p, err := Run(ns, timeBin, append([]string{"-f", "%M", "-o", f.Name(), name}, args...)...)
	if err != nil {
		return p, err
	}
	b, err := os.ReadFile(f.Name())
	if err != nil {
		return p, err
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	kb, err := strconv.ParseInt(strings.TrimSpace(lines[len(lines)-1]), 10, 64)
	if err != nil {
		return p, fmt.Errorf("%s -f %%M: %q: %w", timeBin, b, err)
	}
	p.MaxRSS = kb * 1024
	return p, nil
}

// NftRSS runs `nft -f file` inside ns with RunRSS.
func NftRSS(ns, file string) (Proc, error) { return RunRSS(ns, "nft", "-f", file) }
