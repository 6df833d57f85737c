// Versions and activations of a target: storing and reading them.

package history

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// HashSource returns the hex sha256 of a flattened source, as stored in Version.Hash.
func HashSource(source string) string {
	sum := sha256.Sum256([]byte(source))
	return hex.EncodeToString(sum[:])
}

// AddVersion stores v under target with the next version number and returns
// it as stored. An empty Hash is computed from Source, a zero Time is now;
// a Hash that does not match a non-empty Source is an error.
func (s *Store) AddVersion(target string, v Version, compiled []byte) (Version, error) {
	return inTx(s, func(tx *Tx) (Version, error) { return tx.AddVersion(target, v, compiled) })
}

// putVersion stores v with the next number of target and sets v.Number.
func putVersion(tx *bolt.Tx, c *codec, target string, v *Version, doc sourceDoc, compiled []byte) error {
	tb, err := createTarget(tx, target)
	if err != nil {
		return err
	}
	vb := tb.Bucket(bucketVersions)
	n, err := vb.NextSequence()
	if err != nil {
		return err
	}
	v.Number = n
	return storeVersion(tx, c, tb, *v, doc, compiled)
}

// storeVersion writes v under its number: metadata with its summary
// against the newest version stored before, source document and compiled
// form as streams, and the hash index.
func storeVersion(tx *bolt.Tx, c *codec, tb *bolt.Bucket, v Version, doc sourceDoc, compiled []byte) error {
	b, err := openBlobs(tx, c, true)
	if err != nil {
		return err
	}
	vb := tb.Bucket(bucketVersions)
	key := u64(v.Number)
	if vb.Get(key) != nil {
		return fmt.Errorf("version %d is stored already", v.Number)
	}
	prevKey, _ := vb.Cursor().Last()
	// The canonical form takes as long as the rest on a big set: make it
	// on the other core meanwhile.
	var canon *string
	var wg sync.WaitGroup
	defer wg.Wait()
	if c.canonical != nil && !doc.later {
		wg.Go(func() {
			// A canonicalizer that fails in any way leaves the version
			// without a canonical form, never without the version.
			defer func() { _ = recover() }()
			if text, err := c.canonical(doc.Source); err == nil {
				canon = &text
			}
		})
	}
	sum, err := summarize(b, tb, prevKey, doc, compiled)
	if err != nil {
		return err
	}
	meta, err := encodeJSON(storedVersion{Version: v, Summary: sum})
	if err != nil {
		return fmt.Errorf("encode version: %w", err)
	}
	src, comp, err := putContent(b, tb, prevKey, doc, compiled, func() *string { wg.Wait(); return canon })
	if err != nil {
		return fmt.Errorf("store the content of version %d: %w", v.Number, err)
	}
	if err := vb.Put(key, meta); err != nil {
		return err
	}
	if err := tb.Bucket(bucketSources).Put(key, src); err != nil {
		return err
	}
	if err := tb.Bucket(bucketCompiled).Put(key, comp); err != nil {
		return err
	}
	return tb.Bucket(bucketHashes).Put([]byte(v.Hash), key)
}

func decodeVersion(data []byte) (Version, error) {
	var sv storedVersion
	if err := decodeJSON(data, &sv); err != nil {
		return Version{}, fmt.Errorf("decode version: %w", err)
	}
	sv.Version.Summary = sv.Summary
	return sv.Version, nil
}

func notFound(n uint64) error {
	return &kindError{kind: ErrNotFound, msg: fmt.Sprintf("version %d not found", n)}
}

// versionData returns what bucket (versions, sources or compiled) of
// target holds for version n, or a not-found error.
func versionData(tx *bolt.Tx, target string, bucket []byte, n uint64) ([]byte, error) {
	b := sub(targetBucket(tx, target), bucket)
	if b == nil {
		return nil, notFound(n)
	}
	data := b.Get(u64(n))
	if data == nil {
		return nil, notFound(n)
	}
	return data, nil
}

// metaOf returns version n of target without its source and files.
func metaOf(tx *bolt.Tx, target string, n uint64) (Version, error) {
	data, err := versionData(tx, target, bucketVersions, n)
	if err != nil {
		return Version{}, err
	}
	return decodeVersion(data)
}

// Get returns version n of target with its Source and Files.
func (s *Store) Get(target string, n uint64) (Version, error) {
	var v Version
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		if v, err = metaOf(tx, target, n); err != nil {
			return err
		}
		b, err := openBlobs(tx, &s.codec, false)
		if err != nil {
			return err
		}
		doc, err := readSource(b, targetBucket(tx, target), u64(n))
		if err != nil {
			return fmt.Errorf("decode source of version %d: %w", n, err)
		}
		v.Source, v.Files = doc.Source, doc.Files
		return nil
	})
	if err != nil {
		return Version{}, fmt.Errorf("get %s version %d from %s: %w", target, n, s.path, err)
	}
	return v, nil
}

// Compiled returns the compiled form stored with version n of target.
func (s *Store) Compiled(target string, n uint64) ([]byte, error) {
	var out []byte
	err := s.view(func(tx *bolt.Tx) error {
		data, err := versionData(tx, target, bucketCompiled, n)
		if err != nil {
			return err
		}
		b, err := openBlobs(tx, &s.codec, false)
		if err != nil {
			return err
		}
		data, err = readCompiled(tx, b, data)
		if err != nil {
			return err
		}
		out = bytes.Clone(data) // data may live in the mmap only during the tx
		if out == nil {
			out = []byte{}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("get compiled %s version %d from %s: %w", target, n, s.path, err)
	}
	return out, nil
}

// FindHash returns the newest version of target whose Hash is hash (meta only).
func (s *Store) FindHash(target, hash string) (Version, bool, error) {
	v, found, err := lookup(s, func(tx *bolt.Tx) ([]byte, error) {
		tb := targetBucket(tx, target)
		hb := sub(tb, bucketHashes)
		if hb == nil {
			return nil, nil
		}
		key := hb.Get([]byte(strings.ToLower(hash)))
		if key == nil {
			return nil, nil
		}
		data := sub(tb, bucketVersions).Get(key)
		if data == nil {
			return nil, fmt.Errorf("hash %s points to missing version %d", hash, binary.BigEndian.Uint64(key))
		}
		return data, nil
	}, decodeVersion)
	if err != nil {
		return Version{}, false, fmt.Errorf("find hash in %s history %s: %w", target, s.path, err)
	}
	return v, found, nil
}

// Versions returns all versions of target in ascending order, meta only.
func (s *Store) Versions(target string) ([]Version, error) {
	out, err := listTarget(s, target, bucketVersions, decodeVersion)
	if err != nil {
		return nil, fmt.Errorf("list %s versions in %s: %w", target, s.path, err)
	}
	return out, nil
}

func decodeActivation(data []byte) (Activation, error) {
	var a Activation
	if err := decodeJSON(data, &a); err != nil {
		return Activation{}, fmt.Errorf("decode activation: %w", err)
	}
	return a, nil
}

// Activations returns all activations of target, oldest first.
func (s *Store) Activations(target string) ([]Activation, error) {
	out, err := listTarget(s, target, bucketActivations, decodeActivation)
	if err != nil {
		return nil, fmt.Errorf("list %s activations in %s: %w", target, s.path, err)
	}
	return out, nil
}

// listTarget decodes every entry of target's bucket (versions or
// activations) in key order.
func listTarget[T any](s *Store, target string, bucket []byte, decode func([]byte) (T, error)) ([]T, error) {
	var out []T
	err := s.view(func(tx *bolt.Tx) error {
		b := sub(targetBucket(tx, target), bucket)
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, data []byte) error {
			x, err := decode(data)
			out = append(out, x)
			return err
		})
	})
	return out, err
}

// lookup decodes, in a read transaction, the value find returns; false
// when find returns none.
func lookup[T any](s *Store, find func(*bolt.Tx) ([]byte, error), decode func([]byte) (T, error)) (T, bool, error) {
	var out T
	var found bool
	err := s.view(func(tx *bolt.Tx) error {
		data, err := find(tx)
		if err != nil || data == nil {
			return err
		}
		out, err = decode(data)
		found = err == nil
		return err
	})
	return out, found, err
}

// LastActivation returns the newest activation of target; false when there is none.
func (s *Store) LastActivation(target string) (Activation, bool, error) {
	a, found, err := lookup(s, func(tx *bolt.Tx) ([]byte, error) {
		ab := sub(targetBucket(tx, target), bucketActivations)
		if ab == nil {
			return nil, nil
		}
		_, data := ab.Cursor().Last()
		return data, nil
	}, decodeActivation)
	if err != nil {
		return Activation{}, false, fmt.Errorf("last %s activation in %s: %w", target, s.path, err)
	}
	return a, found, nil
}
