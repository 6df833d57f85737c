package history

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// openDB opens the bbolt file, classifies its errors (busy, damaged, system)
// and checks that the file holds all the pages its meta page claims.
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
		return nil
	})
	if err != nil {
		_ = db.Close() // the size error is the one to report
		return nil, err
	}
	return db, nil
}

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
	return &kindError{kind: ErrDamaged, msg: fmt.Sprintf("history file %s is damaged: %v; move it aside to start a new history", path, err)}
}
