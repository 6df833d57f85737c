package history

import (
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// CanonicalOf returns the canonical form Options.Canonical makes of a
// flattened source, for Tx.SetCanonical; false when the Store has no
// canonicalizer or it fails (a failing one never costs a version).
func (s *Store) CanonicalOf(source string) (text string, ok bool) {
	if s.codec.canonical == nil {
		return "", false
	}
	defer func() {
		if recover() != nil {
			text, ok = "", false
		}
	}()
	text, err := s.codec.canonical(source)
	return text, err == nil
}

// setCanonical stores text as the canonical form of version n of target,
// as a stream offered the canonical form of the version before it and
// its own source as delta bases (canonbase.go).
func setCanonical(tx *bolt.Tx, c *codec, target string, n uint64, text string) error {
	tb := targetBucket(tx, target)
	key := u64(n)
	if sub(tb, bucketVersions).Get(key) == nil {
		return notFound(n)
	}
	m, _, err := storedStreams(tb, key)
	if err != nil {
		return err
	}
	if m == nil {
		return fmt.Errorf("version %d was stored before schema 3", n)
	}
	b, err := openBlobs(tx, c, true)
	if err != nil {
		return err
	}
	var prev *stream
	cur := sub(tb, bucketVersions).Cursor()
	cur.Seek(key)
	if k, _ := cur.Prev(); k != nil {
		if ps, _, err := storedStreams(tb, k); err == nil && ps != nil {
			prev = ps.Canon
		}
	}
	source, err := m.Source.read(b)
	if err != nil {
		return fmt.Errorf("read the source of version %d: %w", n, err)
	}
	st, err := putCanon(b, []byte(text), prev, &m.Source, source)
	if err != nil {
		return err
	}
	if m.Canon != nil {
		if err := m.Canon.release(b); err != nil {
			return err
		}
	}
	m.Canon = &st
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return tb.Bucket(bucketSources).Put(key, append([]byte{valueManifest}, data...))
}
