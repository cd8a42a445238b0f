//go:build unix

package sqlstore

import (
	"os"
	"syscall"
)

// identity is a file's device, inode and link count.
func identity(fi os.FileInfo) (dev, ino, links uint64, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, 0, false
	}
	return uint64(st.Dev), uint64(st.Ino), uint64(st.Nlink), true //nolint:unconvert // the types differ between platforms
}

// writable reports why path may not be written (read-only mount, immutable attribute,
// permissions), without opening it.
func writable(path string) error {
	const wOK = 0x2
	if err := syscall.Access(path, wOK); err != nil {
		return &os.PathError{Op: "access", Path: path, Err: err}
	}
	return nil
}
