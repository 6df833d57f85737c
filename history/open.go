package history

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// openDB opens the bbolt file, classifies its errors (busy, damaged, system)
// and checks that the file holds all the pages its meta page claims. A
// file opened for writing also passes bbolt's consistency check (check).
func openDB(path string, timeout time.Duration, readOnly bool) (*bolt.DB, error) {
	db, err := openBolt(path, &bolt.Options{Timeout: timeout, ReadOnly: readOnly})
	if err != nil {
		switch {
		case errors.Is(err, berrors.ErrTimeout):
			return nil, busyError(path)
		case errors.Is(err, ErrDamaged):
			return nil, err
		case isSystemError(err):
			return nil, fmt.Errorf("open history %s: %w", path, err)
		}
		// bbolt's remaining errors (invalid database, checksum error,
		// version mismatch, file size too small...) are about the content.
		return nil, damaged(path, err)
	}
	// bbolt grows a file past 16 MiB in steps of AllocSize beyond what
	// it needs (16 MiB by default): a compact history of a few MiB would
	// sit in a file of 16 or 32. Grow by 256 KiB: one more truncate and
	// fsync per commit that grows the file, and a file the size of its
	// data.
	db.AllocSize = allocSize
	fi, err := os.Stat(path)
	if err != nil {
		_ = db.Close() // the stat error is the one to report
		return nil, fmt.Errorf("open history %s: %w", path, err)
	}
	st := &Store{db: db, path: path}
	err = st.view(func(tx *bolt.Tx) error {
		if tx.Size() > fi.Size() {
			return damaged(path, fmt.Errorf("it is %d bytes but its pages reach %d bytes (truncated)", fi.Size(), tx.Size()))
		}
		if readOnly {
			return nil
		}
		return check(tx, path)
	})
	if err != nil {
		_ = db.Close() // the size error is the one to report
		return nil, err
	}
	return db, nil
}

// allocSize is how much bbolt grows the file beyond what a commit needs.
const allocSize = 256 << 10

// openBolt calls bolt.Open, turning a panic on a corrupt file into ErrDamaged.
func openBolt(path string, o *bolt.Options) (db *bolt.DB, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, damaged(path, fmt.Errorf("truncated or corrupt (%v)", r))
		}
	}()
	return bolt.Open(path, 0o600, o)
}

// isSystemError reports whether err comes from the operating system
// (permissions, missing file, locks, memory) rather than from the file's content.
func isSystemError(err error) bool {
	var pathErr *os.PathError
	var errno syscall.Errno
	return errors.As(err, &pathErr) || errors.As(err, &errno)
}

func damaged(path string, err error) error {
	return &kindError{kind: ErrDamaged, msg: fmt.Sprintf("history file %s is damaged: %v; move it aside (mv %s %s.damaged), then import your last export (fwslot export writes one; fwslot import FILE reads it) or start a new history", path, err, path, path)}
}

// maxCheckErrors is how many of bbolt's findings a damaged-file error quotes.
const maxCheckErrors = 3

// check runs bbolt's consistency check (tx.Check) on the file: pages
// both in use and free, pages neither, pages referenced twice, keys out
// of order. Such damage reads fine until a write reuses a page still in
// use and loses a version, so a file about to be written must pass it.
//
// bbolt runs the check in a goroutine of its own, where a fault on a
// damaged page cannot be recovered and would kill fwslot; so walk first
// reads every bucket, key, value and branch key here, in a guarded
// transaction (Store.guard turns a fault into ErrDamaged), and the check
// then reads only pages the walk read. Files opened read-only are not
// checked: bbolt would load their free list inside its goroutine, and
// they are not written.
//
// The cost grows with the number of keys, not bytes: 5 ms for a 135 MB
// history of 200 large versions, about 55 ms (walk 40, check 15) for a
// 48 MB one with 100,000 activations (page cache warm).
func check(tx *bolt.Tx, path string) error {
	if err := walk(tx); err != nil {
		return damaged(path, err)
	}
	var found []string
	n := 0
	for err := range tx.Check() { // drain: the checker blocks on the channel
		if n++; len(found) < maxCheckErrors {
			msg := err.Error()
			if len(msg) > 200 {
				msg = msg[:200] + "..."
			}
			found = append(found, msg)
		}
	}
	if n > 0 {
		return damaged(path, fmt.Errorf("bbolt's consistency check found %d problems (%s)", n, strings.Join(found, "; ")))
	}
	return nil
}

// walk reads every bucket, key and value of tx (the first and last byte
// of each, which reads the pages they span at both ends) and searches for
// every key, which reads the branch keys on the way and finds keys out of
// order. It stops at more entries than the file could hold, which a cycle
// in the tree makes.
func walk(tx *bolt.Tx) error {
	budget := tx.Size()/16 + 1 // an entry takes at least its 16-byte element
	var sum byte
	var bucket func(b *bolt.Bucket, depth int) error
	bucket = func(b *bolt.Bucket, depth int) error {
		if depth > 64 {
			return errors.New("buckets nest deeper than any history")
		}
		c, seek := b.Cursor(), b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if budget--; budget < 0 {
				return errors.New("its trees hold more entries than its size allows (a cycle)")
			}
			// A search for every key reads every branch key on the way
			// (the check compares them all) and finds keys out of order.
			if found, _ := seek.Seek(k); !bytes.Equal(found, k) {
				return fmt.Errorf("key %x cannot be found by searching for it (keys out of order)", k)
			}
			sum ^= k[0] ^ k[len(k)-1]
			if v != nil {
				if len(v) > 0 {
					sum ^= v[0] ^ v[len(v)-1]
				}
				continue
			}
			child := b.Bucket(k)
			if child == nil {
				return fmt.Errorf("bucket %q cannot be opened", k)
			}
			if err := bucket(child, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	err := tx.ForEach(func(name []byte, b *bolt.Bucket) error { return bucket(b, 1) })
	runtime.KeepAlive(sum) // the reads are for their side effect: touching the pages
	return err
}
