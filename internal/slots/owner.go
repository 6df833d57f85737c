package slots

import (
	"errors"
	"fmt"
	"strings"

	"github.com/fwslot/fwslot/internal/names"
	"github.com/fwslot/fwslot/internal/nfnl"
)

// ErrNotOwner means the target's tables are managed by another history
// file: two histories numbering versions for one kernel would each see
// the other's versions as drift and could not roll back.
var ErrNotOwner = errors.New("one history per target")

// ErrTwoOwners means the target's tables are tagged by two histories. It
// is an ErrNotOwner.
var ErrTwoOwners = fmt.Errorf("%w: tables are tagged by two histories", ErrNotOwner)

// ownerPrefix starts the comment of the owner rule in a table's meta chain.
const ownerPrefix = names.TagPrefix + "owner="

// maxOwnerDB bounds the history path kept in the owner rule: a rule
// comment holds at most 255 bytes.
const maxOwnerDB = 180

// ownerComment is the comment of the owner rule: the history's identity
// and, for people reading `nft list ruleset`, its path (last, so it may
// hold spaces).
func ownerComment(id, db string) string {
	if len(db) > maxOwnerDB {
		db = "..." + db[len(db)-maxOwnerDB:]
	}
	return ownerPrefix + id + " db=" + db
}

// parseOwnerComment reads an owner rule's comment.
func parseOwnerComment(s string) (id, db string, ok bool) {
	rest, ok := strings.CutPrefix(s, ownerPrefix)
	if !ok {
		return "", "", false
	}
	id, db, _ = strings.Cut(rest, " db=")
	return id, db, id != ""
}

// Owner returns the identity and path of the history that manages the
// target's tables, as tagged in the kernel; "" when no managed table is
// tagged. Tables tagged by two histories are an error.
func (s *State) Owner() (id, db string, err error) {
	for _, t := range s.Managed() {
		switch {
		case t.Owner == "":
		case id == "":
			id, db = t.Owner, t.OwnerDB
		case t.Owner != id:
			return "", "", fmt.Errorf("%w, %s (%s) and %s (%s, table %s)", ErrTwoOwners, id, db, t.Owner, t.OwnerDB, t.Key())
		}
	}
	return id, db, nil
}

// Own adds to b the messages that tag every managed table (as st says
// after the batch's Stage) with the identity and path of the history
// that manages it; tables already tagged so get nothing.
func Own(b *nfnl.Batch, st *State, id, db string) {
	comment := ownerComment(id, db)
	for _, t := range st.Managed() {
		if t.Owner == id && ownerComment(t.Owner, t.OwnerDB) == comment {
			continue
		}
		if t.OwnerRule != 0 {
			b.Add(nfnl.MsgNewRule, t.Family, nfnl.FlagReplace,
				verdictRule(t.Name, names.MetaChain, t.OwnerRule, nfnl.VerdictContinue, "", comment), "replace owner rule")
		} else {
			b.Add(nfnl.MsgNewRule, t.Family, nfnl.FlagCreate|nfnl.FlagAppend,
				verdictRule(t.Name, names.MetaChain, 0, nfnl.VerdictContinue, "", comment), "add owner rule")
		}
		t.Owner, t.OwnerDB = id, db
	}
}
