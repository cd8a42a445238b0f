package sqlstore

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/credsync/credsync/core"
)

// sqliteFile is the SQLite database file a Store opened, and what tells whether the file at its
// path is still that one. SQLite keeps writing to a file deleted or replaced under its open
// handles, and everything written there is lost at the next start; so every write batch, and
// every read at most every readCheckEvery, first checks that the file is still there and is the
// one opened (same device and inode), and new connections are opened only then.
type sqliteFile struct {
	path string // as configured: what SQLite opens and os.Stat looks at
	abs  string // for messages

	// id is the file's identity recorded once the store was opened; nil before.
	id atomic.Pointer[fileID]
	// fd is a read-only handle on the file opened, to tell a deleted file (no link left) from
	// a moved one. It is closed only after every SQLite connection: closing any descriptor of a
	// file drops the POSIX locks the process holds on it, SQLite's included.
	fd *os.File

	mu        sync.Mutex
	checkedAt time.Time // last check that passed, for reads
}

// readCheckEvery bounds how stale the file check before a read may be.
const readCheckEvery = 100 * time.Millisecond

type fileID struct{ dev, ino uint64 }

func newSQLiteFile(path string) *sqliteFile {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	return &sqliteFile{path: path, abs: abs}
}

// createPrivate creates the database file, readable and writable by its owner only, when it
// does not exist; SQLite gives its -wal and -shm files the database file's mode. An existing
// file keeps its mode.
func (f *sqliteFile) createPrivate() error {
	h, err := os.OpenFile(f.path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return h.Close()
}

// record notes the identity of the file now at the path: the one the store opened.
func (f *sqliteFile) record() error {
	h, err := os.Open(f.path)
	if err != nil {
		return err
	}
	fi, err := h.Stat()
	if err != nil {
		_ = h.Close()
		return err
	}
	dev, ino, _, ok := identity(fi)
	if !ok { // no identity on this platform: nothing to compare, nothing is checked
		return h.Close()
	}
	f.fd = h
	f.id.Store(&fileID{dev: dev, ino: ino})
	return nil
}

// close releases the handle record kept; call it once the database is closed.
func (f *sqliteFile) close() error {
	if f.fd == nil {
		return nil
	}
	return f.fd.Close()
}

// check returns an unavailability error when the file opened was deleted, or the path holds no
// file or another one; nil when it is still the file opened (or nothing was recorded yet).
func (f *sqliteFile) check() error {
	want := f.id.Load()
	if want == nil {
		return nil
	}
	if fi, err := f.fd.Stat(); err == nil {
		if _, _, links, ok := identity(fi); ok && links == 0 {
			return f.unavailable(fmt.Sprintf("the SQLite file %s was deleted while credsync had it open: what it held is lost "+
				"once credsync stops, and nothing written to it now would be kept, so credsync refuses every call. A deleted "+
				"file cannot come back: restore %s from a backup and restart credsync", f.abs, f.abs), nil)
		}
	}
	fi, err := os.Stat(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return f.unavailable(fmt.Sprintf("the SQLite file %s is missing (moved or renamed while credsync had it open): "+
			"move it back to %s, or restart credsync", f.abs, f.abs), err)
	}
	if err != nil {
		return f.unavailable(fmt.Sprintf("cannot check the SQLite file %s: make it and its directory accessible to credsync", f.abs), err)
	}
	if dev, ino, _, ok := identity(fi); ok && (dev != want.dev || ino != want.ino) {
		return f.unavailable(fmt.Sprintf("the SQLite file %s is not the file credsync opened (it was replaced: another "+
			"device or inode): put the original back, or restart credsync to use the new one", f.abs), nil)
	}
	return nil
}

// checkRecent is check, skipped when one passed within readCheckEvery.
func (f *sqliteFile) checkRecent() error {
	if f.id.Load() == nil {
		return nil
	}
	f.mu.Lock()
	fresh := time.Since(f.checkedAt) < readCheckEvery
	f.mu.Unlock()
	if fresh {
		return nil
	}
	if err := f.check(); err != nil {
		return err
	}
	f.mu.Lock()
	f.checkedAt = time.Now()
	f.mu.Unlock()
	return nil
}

func (f *sqliteFile) unavailable(msg string, cause error) error {
	return &core.StoreUnavailableError{Message: msg, Err: cause}
}

// diagnose says, after a failed read or write, whether the database (or its -wal or -shm file)
// is not writable or its filesystem is out of space; "" when neither. It opens nothing (see fd).
func (f *sqliteFile) diagnose() (readOnly, full string) {
	for _, p := range []string{f.path, f.path + "-wal", f.path + "-shm"} {
		if err := writable(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			readOnly = fmt.Sprintf("%s: %v", filepath.Base(p), err)
			break
		}
	}
	if free, ok := freeBytes(filepath.Dir(f.path)); ok && free < minFreeBytes {
		full = fmt.Sprintf("%d bytes free", free)
	}
	return readOnly, full
}

// minFreeBytes: a filesystem with less room than this is reported full.
const minFreeBytes = 64 << 10

// checkedConnector opens a new SQLite connection only while the path still holds the file the
// store opened: a connection to a file that replaced it would read and write another database.
type checkedConnector struct {
	driver.Connector
	file *sqliteFile
}

func (c checkedConnector) Connect(ctx context.Context) (driver.Conn, error) {
	if err := c.file.check(); err != nil {
		return nil, err
	}
	return c.Connector.Connect(ctx)
}
