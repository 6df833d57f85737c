package slots

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"github.com/fwslot/fwslot/internal/names"
	"github.com/fwslot/fwslot/internal/nfnl"
)

// Tag identifies the version that sits in a slot. fwslot writes it into
// the kernel (marker chain comments and dispatch rule comments), which is
// the source of truth for what runs.
type Tag struct {
	Version uint64
	Hash    string
}

// Userdata TLV types. Comments use libnftnl's comment type, so `nft list
// ruleset` prints them; the base chain spec uses a private type that nft
// ignores.
const (
	udataComment  = 0
	udataBaseSpec = 0xf5
)

func udataTLV(typ byte, v []byte) ([]byte, error) {
	if len(v) > 255 {
		return nil, fmt.Errorf("userdata of %d bytes does not fit in 255", len(v))
	}
	return append([]byte{typ, byte(len(v))}, v...), nil
}

func commentUdata(s string) []byte {
	b, _ := udataTLV(udataComment, append([]byte(s), 0))
	return b
}

// parseUdata splits libnftnl userdata into its TLVs.
func parseUdata(b []byte) map[byte][]byte {
	out := map[byte][]byte{}
	for len(b) >= 2 {
		t, l := b[0], int(b[1])
		if 2+l > len(b) {
			break
		}
		out[t] = b[2 : 2+l]
		b = b[2+l:]
	}
	return out
}

func commentOf(b []byte) string {
	return nfnl.Str(parseUdata(b)[udataComment])
}

func markerComment(slot names.Slot, t Tag) string {
	return fmt.Sprintf("%sslot=%s version=%d hash=%s", names.TagPrefix, slot, t.Version, t.Hash)
}

// metaComment is the comment of a table's meta rule. takeover marks a
// table that still runs its pre-fwslot content until the next swap.
func metaComment(active names.Slot, takeover bool) string {
	if takeover {
		return fmt.Sprintf("%sactive=%s takeover=pending", names.TagPrefix, active)
	}
	return fmt.Sprintf("%sactive=%s", names.TagPrefix, active)
}

func dispatchComment(kind string, slot names.Slot, t Tag) string {
	return fmt.Sprintf("%s%s slot=%s version=%d", names.TagPrefix, kind, slot, t.Version)
}

// parseTagComment reads the key=value fields of an fwslot comment.
func parseTagComment(s string) (map[string]string, bool) {
	if !strings.HasPrefix(s, names.TagPrefix) {
		return nil, false
	}
	out := map[string]string{}
	for i, f := range strings.Fields(strings.TrimPrefix(s, names.TagPrefix)) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			out[fmt.Sprintf("word%d", i)] = f
			continue
		}
		out[k] = v
	}
	return out, true
}

func tagFrom(f map[string]string) (Tag, bool) {
	v, err := strconv.ParseUint(f["version"], 10, 64)
	if err != nil {
		return Tag{}, false
	}
	return Tag{Version: v, Hash: f["hash"]}, true
}

// encodeBaseSpec stores a base chain's hook in the userdata of its slot
// copy, so a swap can rebuild the base chain from the kernel alone.
func encodeBaseSpec(b *BaseSpec) []byte {
	v := []byte{byte(len(b.Type))}
	v = append(v, b.Type...)
	v = binary.BigEndian.AppendUint32(v, b.Policy)
	v = binary.BigEndian.AppendUint32(v, b.Flags)
	return append(v, b.Hook...)
}

func decodeBaseSpec(v []byte) (*BaseSpec, error) {
	if len(v) < 1 || len(v) < 1+int(v[0])+8 {
		return nil, fmt.Errorf("short base chain spec")
	}
	n := int(v[0])
	b := &BaseSpec{Type: string(v[1 : 1+n])}
	b.Policy = binary.BigEndian.Uint32(v[1+n:])
	b.Flags = binary.BigEndian.Uint32(v[5+n:])
	b.Hook = append([]byte(nil), v[9+n:]...)
	return b, nil
}
