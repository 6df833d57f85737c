package history

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// keyID holds the history's identity in the meta bucket.
var keyID = []byte("id")

// ErrNotEmpty is returned (wrapped) by AdoptID on a history that already
// holds versions.
var ErrNotEmpty = errors.New("history is not empty")

// newID returns a random identity for a new history file.
func newID() ([]byte, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("create history identity: %w", err)
	}
	return []byte(hex.EncodeToString(b)), nil
}

// ID returns the identity of the history file: a random id created with
// the file, which fwslot writes into the kernel tables it manages so that
// a second history cannot take them over. "" for a file written by an
// fwslot that predates identities (EnsureID gives it one).
func (s *Store) ID() (string, error) {
	var id string
	err := s.view(func(tx *bolt.Tx) error {
		if mb := tx.Bucket(bucketMeta); mb != nil {
			id = string(mb.Get(keyID))
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("read the identity of history %s: %w", s.path, err)
	}
	return id, nil
}

// EnsureID returns the identity of the history file, creating it for a
// file that has none yet. The Store must be open for writing.
func (s *Store) EnsureID() (string, error) {
	id, err := s.ID()
	if err != nil || id != "" {
		return id, err
	}
	err = s.update(func(tx *bolt.Tx) error {
		mb, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if have := mb.Get(keyID); have != nil {
			id = string(have)
			return nil
		}
		v, err := newID()
		if err != nil {
			return err
		}
		id = string(v)
		return mb.Put(keyID, v)
	})
	if err != nil {
		return "", fmt.Errorf("create the identity of history %s: %w", s.path, err)
	}
	return id, nil
}

// AdoptID gives a history that holds no version of any target the
// identity id, so that a history imported from an export owns the
// targets the exported one owned. It refuses a history with versions:
// those may already be tagged into a kernel under its own identity.
func (s *Store) AdoptID(id string) error {
	if !validID(id) {
		return fmt.Errorf("adopt history identity %q: not an fwslot history identity", id)
	}
	err := s.update(func(tx *bolt.Tx) error {
		tb := tx.Bucket(bucketTargets)
		if tb != nil {
			err := tb.ForEach(func(name, _ []byte) error {
				if vb := sub(tb.Bucket(name), bucketVersions); vb != nil && vb.Stats().KeyN > 0 {
					return &kindError{kind: ErrNotEmpty, msg: fmt.Sprintf("history %s already holds versions of %s", s.path, name)}
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		mb, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		return mb.Put(keyID, []byte(id))
	})
	if err != nil {
		return fmt.Errorf("adopt history identity: %w", err)
	}
	return nil
}

// validID reports whether id looks like a history identity: hex, and
// short enough to tag a kernel rule.
func validID(id string) bool {
	if len(id) < 8 || len(id) > 64 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}
