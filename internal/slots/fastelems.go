package slots

import (
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"strings"

	"github.com/fwslot/fwslot/internal/nfnl"
	"github.com/fwslot/fwslot/internal/source"
)

// Big sets are staged from their source: the elements of a set declared
// with an element list are encoded here, exactly as nft encodes them and
// the kernel dumps them back, and only the declarations and rules are
// compiled in the private namespace. Anything this file does not know
// (a type, a keyword, an element it cannot read) leaves the list to nft:
// the set is then compiled and read back as before.

// dataType describes one nft data type as a set key or map data.
type dataType struct {
	id   uint32 // nft's type number (NFTA_SET_KEY_TYPE)
	size int    // bytes
	// host is set for host-endian types: their intervals are not
	// ordered by their bytes, so no interval set of them goes this way.
	host  bool
	parse func(w string) ([]byte, error)
	// span parses a word that is itself an interval (a prefix).
	span func(w string) (lo, hi []byte, ok bool)
}

var fastTypes = map[string]*dataType{
	"ipv4_addr":    {id: 7, size: 4, parse: parseV4, span: prefixSpan(true)},
	"ipv6_addr":    {id: 8, size: 16, parse: parseV6, span: prefixSpan(false)},
	"inet_service": {id: 13, size: 2, parse: parseUint(2)},
	"inet_proto":   {id: 12, size: 1, parse: parseProto},
	"mark":         {id: 19, size: 4, host: true, parse: parseMark},
	"ether_addr":   {id: 9, size: 6, parse: parseEther},
	"ifname":       {id: 41, size: 16, host: true, parse: parseIfname},
}

// verdictType is the data type of verdict maps.
const verdictTypeID = 0xffffff00

// fastSet is an element list this file encodes, with the set properties
// the compiled declaration must have for the encoding to be nft's.
type fastSet struct {
	list     source.ElementList
	keyID    uint32
	keyLen   int
	flags    uint32 // interval, concat, map
	dataID   uint32 // 0 for sets
	dataLen  int
	elems    [][]byte
	interval bool
	// chains are the chains the verdicts jump or go to: nft refuses
	// a map naming a chain the table lacks, so the fast path does too.
	chains map[string]bool
}

// planFast encodes the element lists of b with at least min elements; a
// list it cannot encode is left out (nft compiles it).
func planFast(b *source.Bundle, min int) []*fastSet {
	var out []*fastSet
	for _, l := range b.ElementLists(min) {
		fs, err := encodeList(l)
		if err != nil {
			continue
		}
		out = append(out, fs)
	}
	return out
}

// encodeList encodes one element list, or says why it cannot.
func encodeList(l source.ElementList) (*fastSet, error) {
	fs := &fastSet{list: l}
	for _, o := range l.Other {
		switch o {
		case "auto-merge", "size", "policy", "comment":
		default:
			return nil, fmt.Errorf("set statement %q", o)
		}
	}
	for _, f := range l.Flags {
		switch f {
		case "interval":
			fs.interval = true
		default:
			// constant too: nft sizes a constant set by its elements.
			return nil, fmt.Errorf("set flag %q", f)
		}
	}
	keyWords, dataWords := l.Type, []string(nil)
	if i := slices.Index(l.Type, ":"); i >= 0 {
		keyWords, dataWords = l.Type[:i], l.Type[i+1:]
	}
	if l.Map != (dataWords != nil) {
		return nil, errors.New("map without data type or set with one")
	}
	var keys []*dataType
	for i, w := range keyWords {
		if i%2 == 1 {
			if w != "." {
				return nil, fmt.Errorf("type %q", strings.Join(l.Type, " "))
			}
			continue
		}
		dt := fastTypes[w]
		if dt == nil {
			return nil, fmt.Errorf("type %q", w)
		}
		keys = append(keys, dt)
	}
	if len(keys) == 0 || len(keyWords)%2 == 0 {
		return nil, fmt.Errorf("type %q", strings.Join(l.Type, " "))
	}
	concat := len(keys) > 1
	if concat {
		if fs.interval {
			fs.flags |= setFlagConcat
		}
		for _, k := range keys {
			fs.keyID = fs.keyID<<6 | k.id
			fs.keyLen += pad4(k.size)
		}
	} else {
		fs.keyID, fs.keyLen = keys[0].id, keys[0].size
	}
	if fs.interval {
		fs.flags |= nfnl.SetFlagInterval
		for _, k := range keys {
			if k.host {
				return nil, errors.New("interval of a host-endian type")
			}
		}
	}
	if concat && slices.Contains(l.Other, "auto-merge") {
		return nil, errors.New("auto-merge of concatenations")
	}
	var data *dataType
	if l.Map {
		fs.flags |= nfnl.SetFlagMap
		if len(dataWords) != 1 {
			return nil, fmt.Errorf("map data %q", strings.Join(dataWords, " "))
		}
		if dataWords[0] == "verdict" {
			fs.dataID, fs.dataLen = verdictTypeID, 16
		} else if data = fastTypes[dataWords[0]]; data != nil {
			fs.dataID, fs.dataLen = data.id, data.size
		} else {
			return nil, fmt.Errorf("map data %q", dataWords[0])
		}
	}
	enc := &elemEncoder{keys: keys, data: data, verdict: fs.dataID == verdictTypeID, interval: fs.interval, chains: map[string]bool{}}
	var err error
	switch {
	case fs.interval && !concat:
		fs.elems, err = enc.rangesSingle(&l, slices.Contains(l.Other, "auto-merge"))
	default:
		fs.elems, err = enc.plain(&l, concat)
	}
	if err != nil {
		return nil, err
	}
	fs.chains = enc.chains
	fs.list.Words, fs.list.Ends = nil, nil // encoded: the words are garbage now
	return fs, nil
}

func pad4(n int) int { return (n + 3) &^ 3 }

type elemEncoder struct {
	chains   map[string]bool
	keys     []*dataType
	data     *dataType
	verdict  bool
	interval bool
}

// split separates an element's key words from its data words.
func (e *elemEncoder) split(words []string) (key, data []string, err error) {
	i := slices.Index(words, ":")
	if e.data == nil && !e.verdict {
		if i >= 0 {
			return nil, nil, errors.New("data in a set")
		}
		return words, nil, nil
	}
	if i < 0 {
		return nil, nil, errors.New("map element without data")
	}
	return words[:i], words[i+1:], nil
}

// element splits one element's words into its key words, its data words
// (nil for a plain set) and the key's ranges, one per concatenated field.
func (e *elemEncoder) element(words []string) (key, data []string, parts [][2][]byte, err error) {
	if key, data, err = e.split(words); err != nil {
		return nil, nil, nil, err
	}
	parts, err = e.keyParts(key)
	return key, data, parts, err
}

// keyParts groups key words into one range per concatenated field.
func (e *elemEncoder) keyParts(words []string) ([][2][]byte, error) {
	var fields [][]string
	cur := []string{}
	for _, w := range words {
		if w == "." {
			fields = append(fields, cur)
			cur = []string{}
			continue
		}
		cur = append(cur, w)
	}
	fields = append(fields, cur)
	if len(fields) != len(e.keys) {
		return nil, fmt.Errorf("element %q: %d fields, the type has %d", strings.Join(words, " "), len(fields), len(e.keys))
	}
	out := make([][2][]byte, len(fields))
	for i, f := range fields {
		lo, hi, err := e.field(e.keys[i], f)
		if err != nil {
			return nil, err
		}
		out[i] = [2][]byte{lo, hi}
	}
	return out, nil
}

// field parses one key field: a value, or (interval sets) a prefix or a
// range a-b.
func (e *elemEncoder) field(dt *dataType, f []string) (lo, hi []byte, err error) {
	var a, b string
	switch {
	case len(f) == 1 && strings.Count(f[0], "-") == 1 && e.interval:
		a, b, _ = strings.Cut(f[0], "-")
	case len(f) == 3 && f[1] == "-" && e.interval:
		a, b = f[0], f[2]
	case len(f) == 1:
		if e.interval && dt.span != nil {
			if lo, hi, ok := dt.span(f[0]); ok {
				return lo, hi, nil
			}
		}
		v, err := dt.parse(f[0])
		return v, v, err
	default:
		return nil, nil, fmt.Errorf("element %q", strings.Join(f, " "))
	}
	if lo, err = dt.parse(a); err != nil {
		return nil, nil, err
	}
	if hi, err = dt.parse(b); err != nil {
		return nil, nil, err
	}
	if bytes.Compare(lo, hi) > 0 {
		return nil, nil, fmt.Errorf("range %s-%s is backwards", a, b)
	}
	return lo, hi, nil
}

// dataAttr encodes map data as NFTA_SET_ELEM_DATA's payload.
func (e *elemEncoder) dataAttr(words []string) ([]byte, error) {
	var d nfnl.Encoder
	if e.verdict {
		code, chain := uint32(0), ""
		switch {
		case len(words) == 1 && words[0] == "accept":
			code = nfnl.VerdictAccept
		case len(words) == 1 && words[0] == "drop":
			code = nfnl.VerdictDrop
		case len(words) == 1 && words[0] == "continue":
			code = nfnl.VerdictContinue
		case len(words) == 1 && words[0] == "return":
			code = nfnl.VerdictReturn
		case len(words) == 2 && words[0] == "jump" && plainName(words[1]):
			code, chain = nfnl.VerdictJump, words[1]
		case len(words) == 2 && words[0] == "goto" && plainName(words[1]):
			code, chain = nfnl.VerdictGoto, words[1]
		default:
			return nil, fmt.Errorf("verdict %q", strings.Join(words, " "))
		}
		var v nfnl.Encoder
		v.Uint32(nfnl.VerdictCode, code)
		if chain != "" {
			v.String(nfnl.VerdictChain, chain)
			e.chains[chain] = true
		}
		d.Raw(nfnl.DataVerdict, v.Bytes())
		return d.Bytes(), nil
	}
	if len(words) != 1 {
		return nil, fmt.Errorf("map data %q", strings.Join(words, " "))
	}
	v, err := e.data.parse(words[0])
	if err != nil {
		return nil, err
	}
	d.Raw(nfnl.DataValue, v)
	return d.Bytes(), nil
}

func plainName(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for _, c := range s {
		if !(c == '_' || c == '-' || c == '.' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return s[0] != '-' && s[0] != '.'
}

// Attributes the kernel dumps that internal/nfnl does not name: nested
// ones come back without NLA_F_NESTED, and are written so here.
const (
	elemUserdata        = 6    // NFTA_SET_ELEM_USERDATA
	elemKeyEnd          = 10   // NFTA_SET_ELEM_KEY_END
	elemFlagIntervalEnd = 1    // NFT_SET_ELEM_INTERVAL_END
	setFlagConcat       = 0x80 // NFT_SET_CONCAT
)

// valueAttr encodes an NFTA_DATA_VALUE attribute holding v.
func valueAttr(v []byte) []byte {
	var e nfnl.Encoder
	e.Raw(nfnl.DataValue, v)
	return e.Bytes()
}

// elem encodes one element's attributes as the kernel dumps them.
func elem(key, keyEnd, data []byte, flags uint32, udata []byte) []byte {
	var e nfnl.Encoder
	e.Raw(nfnl.SetElemKey, valueAttr(key))
	if flags != 0 {
		e.Uint32(nfnl.SetElemFlags, flags)
	}
	if data != nil {
		e.Raw(nfnl.SetElemData, data)
	}
	if udata != nil {
		e.Raw(elemUserdata, udata)
	}
	if keyEnd != nil {
		e.Raw(elemKeyEnd, valueAttr(keyEnd))
	}
	return e.Bytes()
}

// plain encodes the elements of a set that is not a single-field interval
// set: hash sets and maps, and concatenations with or without intervals
// (one element with a key end per range).
func (e *elemEncoder) plain(l *source.ElementList, concat bool) ([][]byte, error) {
	out := make([][]byte, 0, l.Len())
	// A key written twice is one element, as nft makes it; a map key
	// with two values is left to nft, which refuses it (and so is the
	// rare pair of keys whose hashes collide).
	seed := maphash.MakeSeed()
	seen := make(map[uint64]int32, l.Len())
	for i := range l.Len() {
		w := l.Elem(i)
		kw, dw, parts, err := e.element(w)
		if err != nil {
			return nil, err
		}
		var key, end []byte
		ranged := false
		for i, p := range parts {
			if concat {
				key = append(key, padTo(p[0], pad4(e.keys[i].size))...)
				end = append(end, padTo(p[1], pad4(e.keys[i].size))...)
			} else {
				key, end = p[0], p[1]
			}
			ranged = ranged || !bytes.Equal(p[0], p[1])
		}
		if ranged && !e.interval {
			return nil, fmt.Errorf("element %q is a range in a set without flags interval", strings.Join(kw, " "))
		}
		if !e.interval {
			end = nil
		}
		var data []byte
		if dw != nil {
			if data, err = e.dataAttr(dw); err != nil {
				return nil, err
			}
		}
		el := elem(key, end, data, 0, nil)
		var h maphash.Hash
		h.SetSeed(seed)
		h.Write(key)
		h.Write(end)
		if j, dup := seen[h.Sum64()]; dup {
			if !bytes.Equal(out[j], el) {
				return nil, fmt.Errorf("map key %q has two values", strings.Join(kw, " "))
			}
			continue
		}
		seen[h.Sum64()] = int32(len(out))
		out = append(out, el)
	}
	return out, nil
}

func padTo(b []byte, n int) []byte {
	if len(b) == n {
		return b
	}
	return append(append(make([]byte, 0, n), b...), make([]byte, n-len(b))...)
}

// span is one interval of a single-field interval set, bounds inclusive.
type span struct {
	lo, hi []byte
	data   []byte
}

// rangesSingle encodes the elements of a single-field interval set as nft
// does: sorted, merged when auto-merge is set (overlapping or adjacent
// intervals become one), refused when they overlap otherwise (nft then
// says so); each interval is a start element and an end element holding
// the first value after it (none when it ends at the maximum: the start
// element says the interval is open), in descending order, with an end
// element at zero when no interval starts there.
func (e *elemEncoder) rangesSingle(l *source.ElementList, merge bool) ([][]byte, error) {
	spans := make([]span, 0, l.Len())
	for i := range l.Len() {
		w := l.Elem(i)
		_, dw, parts, err := e.element(w)
		if err != nil {
			return nil, err
		}
		s := span{lo: parts[0][0], hi: parts[0][1]}
		if dw != nil {
			if s.data, err = e.dataAttr(dw); err != nil {
				return nil, err
			}
		}
		spans = append(spans, s)
	}
	if merge && (e.data != nil || e.verdict) {
		return nil, errors.New("auto-merge of a map")
	}
	slices.SortFunc(spans, func(a, b span) int { return bytes.Compare(a.lo, b.lo) })
	merged := spans[:0]
	for _, s := range spans {
		if n := len(merged); n > 0 {
			last := &merged[n-1]
			if bytes.Compare(s.lo, last.hi) <= 0 {
				if !merge {
					return nil, errors.New("overlapping intervals")
				}
				if bytes.Compare(s.hi, last.hi) > 0 {
					last.hi = s.hi
				}
				continue
			}
			if next, ok := succ(last.hi); merge && ok && bytes.Equal(next, s.lo) {
				last.hi = s.hi
				continue
			}
		}
		merged = append(merged, s)
	}
	out := make([][]byte, 0, 2*len(merged)+1)
	for i := len(merged) - 1; i >= 0; i-- {
		s := merged[i]
		next, ok := succ(s.hi)
		if ok {
			out = append(out, elem(next, nil, nil, elemFlagIntervalEnd, nil))
			out = append(out, elem(s.lo, nil, s.data, 0, nil))
		} else {
			out = append(out, elem(s.lo, nil, s.data, 0, intervalOpenUdata))
		}
	}
	if len(merged) > 0 && !isZero(merged[0].lo) {
		out = append(out, elem(make([]byte, len(merged[0].lo)), nil, nil, elemFlagIntervalEnd, nil))
	}
	return out, nil
}

// intervalOpenUdata is the element userdata nft writes on the start of an
// interval that runs to the maximum: NFTNL_UDATA_SET_ELEM_FLAGS (1),
// length 4, NFTNL_SET_ELEM_F_INTERVAL_OPEN (host order).
var intervalOpenUdata = []byte{1, 4, 1, 0, 0, 0}

// succ returns v+1 as a big-endian number of the same width; ok is false
// when v is the maximum.
func succ(v []byte) ([]byte, bool) {
	out := append([]byte(nil), v...)
	for i := len(out) - 1; i >= 0; i-- {
		out[i]++
		if out[i] != 0 {
			return out, true
		}
	}
	return nil, false
}

func isZero(v []byte) bool {
	for _, c := range v {
		if c != 0 {
			return false
		}
	}
	return true
}
