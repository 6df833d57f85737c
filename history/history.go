// Package history is fwslot's record of ruleset versions and activations,
// kept in one bbolt file. Each target (the host, or a named network
// namespace) has its own numbering of versions and activations.
//
// One process holds the file at a time: Open takes bbolt's file lock and
// writes a ".holder" file beside it so that a second fwslot can say who is
// holding the history while it waits.
package history

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// schemaVersion is the layout version this package writes and understands.
//
// Schema 2 marks every stored value with a format byte (format.go);
// schema 3 stores sources, files and compiled forms as compressed,
// deduplicated chunks (stream.go, blob.go) and a summary with each
// version. Older files are read as they are and migrated by their first
// write; versions stored before stay in their form.
const schemaVersion = 3

// DefaultTimeout is how long Open waits for another process holding the file.
const DefaultTimeout = 5 * time.Second

var (
	// ErrNotFound is returned (wrapped) when a version does not exist.
	ErrNotFound = errors.New("not found")
	// ErrBusy is returned (wrapped) when another process holds the history file past the timeout.
	ErrBusy = errors.New("history is busy")
	// ErrDamaged is returned (wrapped) when the file is corrupt or truncated.
	ErrDamaged = errors.New("history file is damaged")
)

// Bucket layout:
//
//	meta                       schema -> uint64, id -> identity (hex)
//	blobs, blobrefs            sha256 -> chunk content; reference count (blob.go)
//	targets/<target>/versions  n -> Version JSON (meta and Summary)
//	targets/<target>/sources   n -> manifest of the flattened source and files (stream.go),
//	                                or (before schema 3) sourceDoc JSON
//	targets/<target>/compiled  n -> manifest of the compiled form, or (before schema 3) the form
//	targets/<target>/hashes    hash -> n of the newest version with that hash
//	targets/<target>/activations seq -> Activation JSON
var (
	bucketMeta        = []byte("meta")
	bucketTargets     = []byte("targets")
	bucketVersions    = []byte("versions")
	bucketSources     = []byte("sources")
	bucketCompiled    = []byte("compiled")
	bucketHashes      = []byte("hashes")
	bucketActivations = []byte("activations")
	keySchema         = []byte("schema")
)

// Options tune Open.
type Options struct {
	// Timeout is how long Open waits for another process holding the file;
	// zero means DefaultTimeout and a negative value means do not wait.
	Timeout time.Duration
	// ReadOnly opens the file with a shared lock; it neither creates the file
	// nor writes the holder file.
	ReadOnly bool
	// Canonical, when set, turns a version's flattened source into the
	// canonical form `fwslot diff` compares (rulediff.FromSource): it
	// runs once when a version is stored, and its text is kept with the
	// version (Store.Canonical). An error means the source has none; the
	// version is stored without it.
	Canonical func(source string) (string, error)
}

// Store is an open history file.
type Store struct {
	db     *bolt.DB
	path   string
	holder string // holder file written by this Store; empty when none
	// commits counts the write transactions committed (Commits).
	commits atomic.Uint64
	// codec compresses and decompresses blobs.
	codec codec
}

// Version is one stored ruleset version of a target.
type Version struct {
	Number  uint64    `json:"version"`
	Hash    string    `json:"hash"` // hex sha256 of the flattened source
	User    string    `json:"user"`
	Time    time.Time `json:"time"`
	Message string    `json:"message"`
	Origin  string    `json:"origin"` // "file", "adopted" (what ran before fwslot), "import"...
	Source  string    `json:"-"`      // flattened source; loaded only by Get
	Files   []File    `json:"-"`      // original files as written; loaded only by Get
	Tables  []string  `json:"tables"` // "inet filter", ...
	Rules   int       `json:"rules"`
	// Summary is what history computed when it stored the version (nil
	// for versions stored before schema 3); read with the metadata.
	Summary *Summary `json:"-"`
}

// Summary is what `fwslot history` shows about a version, computed once
// when the version is stored so that listing costs the same at any size.
type Summary struct {
	// Lines is the number of lines of the flattened source.
	Lines int `json:"lines"`
	// Against is the version Added and Removed compare with: the newest
	// version of the target when this one was stored (0: none, every
	// line counts as added).
	Against uint64 `json:"against,omitempty"`
	// Added and Removed count the lines a shortest edit script from
	// Against's flattened source to this one adds and removes
	// (linediff.Count).
	Added   int `json:"added"`
	Removed int `json:"removed"`
	// Bytes is the size of the flattened source, the files and the
	// compiled form as given, before compression and deduplication.
	Bytes int64 `json:"bytes"`
}

// storedVersion is the JSON of a version's metadata: the Version and its
// summary.
type storedVersion struct {
	Version
	Summary *Summary `json:"summary,omitempty"`
}

// File is one original source file of a version.
type File struct {
	Path    string `json:"path"`
	Content []byte `json:"content"`
}

// Activation records one change of the live version of a target.
type Activation struct {
	Seq  uint64    `json:"seq"`
	From uint64    `json:"from"` // 0 = nothing was live
	To   uint64    `json:"to"`
	Time time.Time `json:"time"`
	How  string    `json:"how"` // "swap", "rollback", "revert", "restore"...
	User string    `json:"user"`
	Note string    `json:"note,omitempty"`
	// Result is "pending" while a confirmed swap waits for `fwslot
	// confirm`, then "confirmed" or "reverted"; empty for plain swaps.
	Result string `json:"result,omitempty"`
	// Deadline is when a pending activation reverts.
	Deadline time.Time `json:"deadline,omitempty"`
}

type sourceDoc struct {
	Source string `json:"source"`
	Files  []File `json:"files"`
	// later: the canonical form is added by Tx.SetCanonical, not
	// computed while the version is stored.
	later bool
}

// Open opens (creating if needed) the history file at path. A created
// directory gets mode 0700 and a created file 0600; an existing one that
// group or others can write, or that another user owns, is refused
// (ErrInsecure). While the Store is open,
// other processes wait in Open up to opts.Timeout and then fail with ErrBusy
// naming the holder.
func Open(path string, opts Options) (*Store, error) {
	timeout := opts.Timeout
	switch {
	case timeout == 0:
		timeout = DefaultTimeout
	case timeout < 0:
		timeout = time.Nanosecond // bbolt: try once
	}
	if err := checkPrivate(path); err != nil {
		return nil, err
	}
	if !opts.ReadOnly {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("open history %s: %w", path, err)
		}
	}
	if !opts.ReadOnly {
		// bbolt's read-write Open reads the freelist and can fault on a
		// truncated file before we get to check it, leaking its lock; so
		// check an existing file read-only first.
		if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
			db, err := openDB(path, timeout, true)
			if err != nil {
				return nil, err
			}
			if err := db.Close(); err != nil {
				return nil, fmt.Errorf("open history %s: %w", path, err)
			}
		}
	}
	db, err := openDB(path, timeout, opts.ReadOnly)
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, path: path}
	s.codec.canonical = opts.Canonical
	if err := s.init(opts.ReadOnly); err != nil {
		_ = db.Close() // the init error is the one to report
		return nil, err
	}
	if !opts.ReadOnly {
		if err := writeHolder(path + ".holder"); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("open history %s: %w", path, err)
		}
		s.holder = path + ".holder"
	}
	return s, nil
}

// kindError is an error with its own message that matches one of the
// package's sentinel errors with errors.Is.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

// init checks the file size against bbolt's high-water mark, creates the
// top-level buckets and checks the schema version.
func (s *Store) init(readOnly bool) error {
	check := func(tx *bolt.Tx) error {
		mb := tx.Bucket(bucketMeta)
		if mb == nil {
			if readOnly {
				return nil // empty file: nothing recorded yet
			}
			mb, err := tx.CreateBucket(bucketMeta)
			if err != nil {
				return err
			}
			if _, err := tx.CreateBucketIfNotExists(bucketTargets); err != nil {
				return err
			}
			id, err := newID()
			if err != nil {
				return err
			}
			if err := mb.Put(keyID, id); err != nil {
				return err
			}
			return mb.Put(keySchema, u64(schemaVersion))
		}
		v := mb.Get(keySchema)
		if len(v) != 8 {
			return damaged(s.path, errors.New("schema version is missing"))
		}
		if n := binary.BigEndian.Uint64(v); n > schemaVersion {
			return fmt.Errorf("history %s has schema version %d but this fwslot understands up to %d; use a newer fwslot", s.path, n, schemaVersion)
		}
		return nil
	}
	// An existing history is only read: even an empty write transaction
	// rewrites bbolt's meta page, and a command refused for bad input
	// must leave the file's bytes as they were.
	fresh := false
	err := s.view(func(tx *bolt.Tx) error {
		if fresh = tx.Bucket(bucketMeta) == nil; fresh && !readOnly {
			return nil
		}
		return check(tx)
	})
	if err == nil && fresh && !readOnly {
		err = s.update(check)
	}
	if err != nil {
		return fmt.Errorf("open history %s: %w", s.path, err)
	}
	return nil
}

// Close releases the file and removes the holder file.
func (s *Store) Close() error {
	var errs []error
	if s.holder != "" {
		if err := os.Remove(s.holder); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
		s.holder = ""
	}
	if err := s.db.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close history %s: %w", s.path, err)
	}
	return nil
}

// Path returns the file name the Store was opened with.
func (s *Store) Path() string { return s.path }

// view and update run a transaction, turning a bbolt panic on a damaged
// file into ErrDamaged instead of crashing fwslot.
func (s *Store) view(fn func(*bolt.Tx) error) error { return s.guard(s.db.View, fn) }
func (s *Store) update(fn func(*bolt.Tx) error) error {
	err := s.guard(s.db.Update, func(tx *bolt.Tx) error {
		if err := migrate(tx); err != nil {
			return fmt.Errorf("migrate to schema %d: %w", schemaVersion, err)
		}
		start := blobSeq(tx)
		if err := fn(tx); err != nil {
			return err
		}
		if err := settleBlobs(tx, start); err != nil {
			return fmt.Errorf("settle the blobs written: %w", err)
		}
		return nil
	})
	if err == nil {
		s.commits.Add(1)
	}
	return err
}

func (s *Store) guard(run func(func(*bolt.Tx) error) error, fn func(*bolt.Tx) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = damaged(s.path, fmt.Errorf("truncated or corrupt (%v)", r))
		}
	}()
	return run(fn)
}

func validTarget(target string) error {
	if target == "host" || (strings.HasPrefix(target, "netns:") && len(target) > len("netns:")) {
		return nil
	}
	return fmt.Errorf("invalid history target %q (want \"host\" or \"netns:NAME\")", target)
}

// targetBucket returns the bucket of target, or nil when nothing was recorded for it.
func targetBucket(tx *bolt.Tx, target string) *bolt.Bucket {
	tb := tx.Bucket(bucketTargets)
	if tb == nil {
		return nil
	}
	return tb.Bucket([]byte(target))
}

func createTarget(tx *bolt.Tx, target string) (*bolt.Bucket, error) {
	tb, err := tx.CreateBucketIfNotExists(bucketTargets)
	if err != nil {
		return nil, err
	}
	b, err := tb.CreateBucketIfNotExists([]byte(target))
	if err != nil {
		return nil, err
	}
	for _, name := range [][]byte{bucketVersions, bucketSources, bucketCompiled, bucketHashes, bucketActivations} {
		if _, err := b.CreateBucketIfNotExists(name); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// sub returns a sub-bucket of a target bucket; tb may be nil.
func sub(tb *bolt.Bucket, name []byte) *bolt.Bucket {
	if tb == nil {
		return nil
	}
	return tb.Bucket(name)
}

func u64(n uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, n)
	return b
}
