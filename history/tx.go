package history

import (
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Tx is one write transaction on a history file. A command that records
// several things after one kernel change (a swap's activation and the
// kernel record) records them through one Tx: they reach the disk
// together in one commit (one fsync), or not at all. A Tx is valid only
// inside the function given to Store.Update; where Store has a method of
// the same name, it does the same, minus the file name in its errors.
type Tx struct {
	tx *bolt.Tx
	c  *codec
}

// Update runs fn in one write transaction. The transaction is committed
// when fn returns nil and rolled back, leaving the file as it was, when
// fn returns an error (returned as is) or panics.
func (s *Store) Update(fn func(*Tx) error) error {
	return s.update(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx, c: &s.codec}) })
}

// inTx runs fn in one write transaction (Update) and returns what it
// returned; an error names the history file.
func inTx[T any](s *Store, fn func(*Tx) (T, error)) (T, error) {
	var got T
	err := s.Update(func(tx *Tx) error {
		var err error
		got, err = fn(tx)
		return err
	})
	if err != nil {
		var zero T
		return zero, fmt.Errorf("%w (history %s)", err, s.path)
	}
	return got, nil
}

// Commits returns how many write transactions this Store committed since
// Open (each one a write and an fsync of the file): what tests measure to
// hold a command to its budget of commits.
func (s *Store) Commits() uint64 { return s.commits.Load() }

// AddVersion stores v under target with the next version number, assigned
// in this transaction, and returns it as stored (see Store.AddVersion).
func (t *Tx) AddVersion(target string, v Version, compiled []byte) (Version, error) {
	return t.addVersion(target, v, compiled, false)
}

// addVersion stores v as AddVersion does; with later, without its
// canonical form, which SetCanonical adds in a later transaction (the
// way Prepare and AddPrepared store a version). A version the canonical
// form never reaches is only compared the slower way by diff.
func (t *Tx) addVersion(target string, v Version, compiled []byte, later bool) (Version, error) {
	doc, err := prepareVersion(target, &v)
	if err != nil {
		return Version{}, err
	}
	doc.later = later
	if err := putVersion(t.tx, t.c, target, &v, doc, compiled); err != nil {
		return Version{}, fmt.Errorf("add version to %s: %w", target, err)
	}
	v.Source, v.Files = "", nil
	return v, nil
}

// SetCanonical stores text as the canonical form of version n of target
// (see Store.CanonicalOf), replacing the one it has.
func (t *Tx) SetCanonical(target string, n uint64, text string) error {
	if err := setCanonical(t.tx, t.c, target, n, text); err != nil {
		return fmt.Errorf("store the canonical form of %s version %d: %w", target, n, err)
	}
	return nil
}

// prepareVersion checks target and v's hash, fills in the hash and the
// time, and returns the source document.
func prepareVersion(target string, v *Version) (sourceDoc, error) {
	if err := validTarget(target); err != nil {
		return sourceDoc{}, err
	}
	if v.Source != "" || v.Hash == "" {
		h := HashSource(v.Source)
		if v.Hash != "" && !strings.EqualFold(v.Hash, h) {
			return sourceDoc{}, fmt.Errorf("add version to %s: hash %s does not match the source (sha256 %s)", target, v.Hash, h)
		}
		v.Hash = h
	}
	if v.Time.IsZero() {
		v.Time = time.Now()
	}
	v.Time = v.Time.UTC()
	v.Summary = nil // history computes it
	return sourceDoc{Source: v.Source, Files: v.Files}, nil
}

// AddActivation records a under target with the next sequence number and
// returns it as stored. To (and From, when not 0) must be stored versions;
// a zero Time is now.
func (t *Tx) AddActivation(target string, a Activation) (Activation, error) {
	if err := validTarget(target); err != nil {
		return Activation{}, err
	}
	if a.Time.IsZero() {
		a.Time = time.Now()
	}
	a.Time = a.Time.UTC()
	tb, err := createTarget(t.tx, target)
	if err != nil {
		return Activation{}, fmt.Errorf("add activation to %s: %w", target, err)
	}
	vb := tb.Bucket(bucketVersions)
	if a.To == 0 || vb.Get(u64(a.To)) == nil {
		return Activation{}, fmt.Errorf("add activation to %s: %w", target, notFound(a.To))
	}
	if a.From != 0 && vb.Get(u64(a.From)) == nil {
		return Activation{}, fmt.Errorf("add activation to %s: %w", target, notFound(a.From))
	}
	ab := tb.Bucket(bucketActivations)
	if a.Seq, err = ab.NextSequence(); err != nil {
		return Activation{}, fmt.Errorf("add activation to %s: %w", target, err)
	}
	data, err := encodeJSON(a)
	if err != nil {
		return Activation{}, fmt.Errorf("add activation to %s: encode: %w", target, err)
	}
	if err := ab.Put(u64(a.Seq), data); err != nil {
		return Activation{}, fmt.Errorf("add activation to %s: %w", target, err)
	}
	return a, nil
}

// SetKernel records the kernel state of target.
func (t *Tx) SetKernel(target string, k Kernel) error {
	if err := validTarget(target); err != nil {
		return err
	}
	data, err := encodeJSON(k)
	if err != nil {
		return fmt.Errorf("record kernel state of %s: %w", target, err)
	}
	tb, err := createTarget(t.tx, target)
	if err != nil {
		return fmt.Errorf("record kernel state of %s: %w", target, err)
	}
	sb, err := tb.CreateBucketIfNotExists(bucketState)
	if err != nil {
		return fmt.Errorf("record kernel state of %s: %w", target, err)
	}
	if err := sb.Put(keyKernel, data); err != nil {
		return fmt.Errorf("record kernel state of %s: %w", target, err)
	}
	return nil
}

// Kernel returns the kernel state of target as this transaction sees it;
// false when none is recorded.
func (t *Tx) Kernel(target string) (Kernel, bool, error) {
	return readKernel(t.tx, target)
}

// readKernel reads the recorded kernel state of target.
func readKernel(tx *bolt.Tx, target string) (Kernel, bool, error) {
	sb := sub(targetBucket(tx, target), bucketState)
	if sb == nil {
		return Kernel{}, false, nil
	}
	data := sb.Get(keyKernel)
	if data == nil {
		return Kernel{}, false, nil
	}
	var k Kernel
	if err := decodeJSON(data, &k); err != nil {
		return Kernel{}, false, fmt.Errorf("decode kernel state of %s: %w", target, err)
	}
	return k, true, nil
}

// SetResult records how a pending activation ended (see Store.SetResult).
func (t *Tx) SetResult(target string, seq uint64, result, note string) error {
	ab := sub(targetBucket(t.tx, target), bucketActivations)
	if ab == nil {
		return fmt.Errorf("activation %d: %w", seq, ErrNotFound)
	}
	data := ab.Get(u64(seq))
	if data == nil {
		return fmt.Errorf("activation %d: %w", seq, ErrNotFound)
	}
	a, err := decodeActivation(data)
	if err != nil {
		return err
	}
	a.Result = result
	if note != "" {
		a.Note = note
	}
	out, err := encodeJSON(a)
	if err != nil {
		return err
	}
	return ab.Put(u64(seq), out)
}
