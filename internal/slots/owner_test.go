package slots

import (
	"strings"
	"testing"
)

// The owner rule's comment names the history's identity and path, fits
// in a rule comment (255 bytes) and reads back, spaces and all.
func TestOwnerComment(t *testing.T) {
	long := "/" + strings.Repeat("d/", 150) + "fwslot.db"
	cases := []struct {
		name, id, db, wantDB string
	}{
		{"plain", "00112233445566778899aabbccddeeff", "/var/lib/fwslot/fwslot.db", "/var/lib/fwslot/fwslot.db"},
		{"path with spaces", "0a0b", "/srv/my fw/h db.db", "/srv/my fw/h db.db"},
		{"long path keeps its end", "0a0b", long, "..." + long[len(long)-maxOwnerDB:]},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			comment := ownerComment(c.id, c.db)
			if len(commentUdata(comment)) > 255+2 {
				t.Fatalf("comment of %d bytes does not fit a rule", len(comment))
			}
			id, db, ok := parseOwnerComment(comment)
			if !ok || id != c.id || db != c.wantDB {
				t.Fatalf("parse(%q) = %q, %q, %v", comment, id, db, ok)
			}
			if _, _, ok := parseOwnerComment(metaComment("a", false)); ok {
				t.Fatal("the meta rule's comment is not an owner rule")
			}
		})
	}
}
