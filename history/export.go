package history

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// Record is one version with everything stored for it, as export writes
// it and import reads it.
type Record struct {
	Version
	Source   string `json:"source"`
	Files    []File `json:"files"`
	Compiled []byte `json:"compiled"`
}

// Export calls fn with every version of target, oldest first, each with its
// source, files and compiled form. It reads one version at a time, so a
// large history is never all in memory.
func (s *Store) Export(target string, fn func(Record) error) error {
	vs, err := s.Versions(target)
	if err != nil {
		return err
	}
	for _, v := range vs {
		full, err := s.Get(target, v.Number)
		if err != nil {
			return err
		}
		blob, err := s.Compiled(target, v.Number)
		if err != nil {
			return err
		}
		r := Record{Version: full, Source: full.Source, Files: full.Files, Compiled: blob}
		r.Version.Source, r.Version.Files = "", nil
		if err := fn(r); err != nil {
			return fmt.Errorf("export version %d of %s: %w", v.Number, target, err)
		}
	}
	return nil
}

// sequence returns the highest version number target ever assigned,
// pruned versions included (0 when none).
func (s *Store) sequence(target string) (uint64, error) {
	n, err := s.Next(target)
	return n - 1, err
}

// ErrDiverged is returned (wrapped) by Import when the history in the file
// and the one imported disagree about a version or an activation.
var ErrDiverged = errors.New("histories diverge")

// Imported says what Import added.
type Imported struct {
	Versions    []uint64 `json:"versions"`
	Activations []uint64 `json:"activations"`
}

// Import adds versions and activations exported from another history of
// the same target, keeping their numbers and hashes, in one transaction.
// An empty history takes everything. A non-empty one must share a prefix
// with the import: every version number both have carries the same hash,
// every activation both have went from and to the same versions, and they
// have at least one version in common; then only the newer tail (numbers
// above the history's newest) is added. seq is the exporter's version
// sequence, so numbers it gave out and pruned are not handed out again.
//
// Import trusts nothing it is given but the compiled forms, which the
// caller must have rebuilt from the sources (restore and rollback run a
// compiled form without compiling): numbers above MaxNumber or repeated,
// pending activations and control characters in text fields are refused
// (ErrUntrusted), and every version's hash must match its source.
func (s *Store) Import(target string, recs []Record, acts []Activation, seq uint64) (Imported, error) {
	if err := validTarget(target); err != nil {
		return Imported{}, err
	}
	if err := CheckImport(recs, acts, seq); err != nil {
		return Imported{}, fmt.Errorf("import into %s history %s: %w", target, s.path, err)
	}
	res := Imported{Versions: []uint64{}, Activations: []uint64{}}
	err := s.update(func(tx *bolt.Tx) error {
		c := &s.codec
		tb, err := createTarget(tx, target)
		if err != nil {
			return err
		}
		vb, ab := tb.Bucket(bucketVersions), tb.Bucket(bucketActivations)
		lastV, lastA := lastKey(vb), lastKey(ab)
		common, err := overlap(vb, recs, func(r Record) uint64 { return r.Number }, decodeVersion, func(have Version, r Record) error {
			if !strings.EqualFold(have.Hash, r.Hash) {
				return &kindError{kind: ErrDiverged, msg: fmt.Sprintf("version %d has hash %.12s here and %.12s in the import; the histories diverge, import into an empty history (--db NEW)", r.Number, have.Hash, r.Hash)}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if lastV != 0 && len(recs) > 0 && common == 0 {
			return &kindError{kind: ErrDiverged, msg: fmt.Sprintf("the history holds versions up to %d and the import shares none of them; import into an empty history (--db NEW)", lastV)}
		}
		if _, err := overlap(ab, acts, func(a Activation) uint64 { return a.Seq }, decodeActivation, func(have, a Activation) error {
			if have.From != a.From || have.To != a.To {
				return &kindError{kind: ErrDiverged, msg: fmt.Sprintf("activation %d went from %d to %d here and from %d to %d in the import; the histories diverge", a.Seq, have.From, have.To, a.From, a.To)}
			}
			return nil
		}); err != nil {
			return err
		}
		for _, r := range recs {
			if r.Number <= lastV {
				continue
			}
			if err := putRecord(tx, c, tb, r); err != nil {
				return fmt.Errorf("version %d: %w", r.Number, err)
			}
			res.Versions = append(res.Versions, r.Number)
		}
		for _, a := range acts {
			if a.Seq == 0 || a.Seq <= lastA {
				continue
			}
			if vb.Get(u64(a.To)) == nil || (a.From != 0 && vb.Get(u64(a.From)) == nil) {
				return &kindError{kind: ErrUntrusted, msg: fmt.Sprintf("activation %d names version %d or %d, which neither history has", a.Seq, a.From, a.To)}
			}
			data, err := encodeJSON(a)
			if err != nil {
				return fmt.Errorf("encode activation: %w", err)
			}
			if err := ab.Put(u64(a.Seq), data); err != nil {
				return err
			}
			if ab.Sequence() < a.Seq {
				if err := ab.SetSequence(a.Seq); err != nil {
					return err
				}
			}
			res.Activations = append(res.Activations, a.Seq)
		}
		if vb.Sequence() < seq {
			return vb.SetSequence(seq)
		}
		return nil
	})
	if err != nil {
		return Imported{}, fmt.Errorf("import into %s history %s: %w", target, s.path, err)
	}
	return res, nil
}

// putRecord stores a version under its own number, checking its hash.
func putRecord(tx *bolt.Tx, c *codec, tb *bolt.Bucket, r Record) error {
	if h := HashSource(r.Source); !strings.EqualFold(h, r.Hash) {
		return fmt.Errorf("hash %.12s does not match its source (sha256 %.12s)", r.Hash, h)
	}
	v := r.Version
	v.Hash = strings.ToLower(v.Hash)
	v.Time = v.Time.UTC()
	v.Summary = nil
	if err := storeVersion(tx, c, tb, v, sourceDoc{Source: r.Source, Files: r.Files}, r.Compiled); err != nil {
		return err
	}
	vb := tb.Bucket(bucketVersions)
	if vb.Sequence() < v.Number {
		return vb.SetSequence(v.Number)
	}
	return nil
}

// lastKey returns the largest numeric key of a bucket (0 when empty).
func lastKey(b *bolt.Bucket) uint64 {
	k, _ := b.Cursor().Last()
	if len(k) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(k)
}

// overlap hands check each item of an import that b (versions or
// activations) already holds, with what b holds under its key, and
// returns how many it holds.
func overlap[T, H any](b *bolt.Bucket, items []T, key func(T) uint64, decode func([]byte) (H, error), check func(have H, item T) error) (int, error) {
	n := 0
	for _, it := range items {
		data := b.Get(u64(key(it)))
		if data == nil {
			continue
		}
		have, err := decode(data)
		if err != nil {
			return n, err
		}
		if err := check(have, it); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
