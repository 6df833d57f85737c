package slots

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"

	"github.com/fwslot/fwslot/internal/nfnl"
	"github.com/fwslot/fwslot/internal/nsutil"
	"github.com/fwslot/fwslot/internal/source"
)

// ReadLegacy reads tables fwslot is about to take over on the target in
// netns, with their source as nft prints it.
func ReadLegacy(c *nfnl.Conn, netns string, tables []*TableState) (*Ruleset, string, error) {
	want := map[tkey]bool{}
	for _, ts := range tables {
		want[tkey{ts.Family, ts.Name}] = true
	}
	rs, err := ReadTables(c, func(f uint8, n string) bool { return want[tkey{f, n}] })
	if err != nil {
		return nil, "", fmt.Errorf("read existing tables: %w", err)
	}
	var src strings.Builder
	for _, ts := range tables {
		var out, stderr bytes.Buffer
		err := nsutil.Do(netns, func() error {
			nft, err := nftPath()
			if err != nil {
				return err
			}
			cmd := exec.Command(nft, "list", "table", nfnl.FamilyName(ts.Family), ts.Name)
			cmd.Stdout, cmd.Stderr = &out, &stderr
			return cmd.Run()
		})
		if err != nil {
			return nil, "", fmt.Errorf("list table %s: %v: %s", ts.Key(), err, stderr.String())
		}
		src.Write(out.Bytes())
	}
	return rs, src.String(), nil
}

// LateTakeoverError is a table the file declares that exists while
// fwslot does not manage it but already manages others: fwslot takes over
// existing tables only on a target's first load.
type LateTakeoverError struct {
	Table   string   // the unmanaged table, "inet filter"
	Managed []string // the tables fwslot manages
}

// Error names the table and the tables fwslot manages.
func (e *LateTakeoverError) Error() string {
	return fmt.Sprintf("table %s exists and fwslot does not manage it, while fwslot already manages %s; fwslot takes over existing tables only on its first load", e.Table, strings.Join(e.Managed, ", "))
}

// RefuseXtables returns an error naming the first of tables that
// iptables-nft owns, judged by its built-in base chains, or by the
// xtables matches and targets in rs (the tables' content, when read):
// fwslot never adopts such a table.
func RefuseXtables(tables []*TableState, rs *Ruleset) error { return refuseXtables(tables, rs) }

// ShareLike marks the sets of an adopted ruleset as shared where the
// version taking the table over shares a set of the same name.
func ShareLike(adopted, next *Ruleset) { shareLike(adopted, next) }

// LocateBundleRefusal is LocateRefusal for a caller that holds the bundle
// it compiled (Load): a refusal of one of rs's rules becomes a StageError
// naming the file and line.
func LocateBundleRefusal(err error, b *source.Bundle, rs *Ruleset) error {
	return locateRefusal(err, b, rs)
}

// WritableWarnings names ruleset files that users other than the owner
// can write: whoever can write them can change the firewall.
func WritableWarnings(b *source.Bundle) []string {
	out := []string{}
	for _, f := range b.Files {
		if f.Mode&0o022 != 0 {
			out = append(out, fmt.Sprintf("%s is writable by group or others (mode %v): anyone who can write it can change the firewall; chmod go-w it", f.Path, f.Mode.Perm()))
		}
	}
	return out
}
