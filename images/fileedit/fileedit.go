// Package fileedit changes a file in place without ever leaving it half
// written or losing a concurrent change: the new content is written to a
// temporary file in the same folder, synced, given the old file's mode,
// and renamed over it, all under an exclusive lock on the folder. It is
// how agentforge edits files people keep in git or a controller reads
// (a definition's image.yaml, a configuration-as-code file).
package fileedit

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Edit reads the file at path and calls change with its content (exists
// false and old nil when there is no such file). When change returns
// content other than old, the file is replaced by it (a missing file is
// created unless change returns nil); Edit reports whether it was. A change that fails leaves the file as it was, and its
// error is returned as it is; Edit's own name the file. Edits of
// files in one folder, by this process or another, wait for each other
// (flock(2) on the folder, so no lock file is left behind), so that each
// reads what the one before wrote. A new file gets mode 0644.
func Edit(path string, change func(old []byte, exists bool) ([]byte, error)) (changed bool, err error) {
	dir := filepath.Dir(path)
	unlock, err := lock(dir)
	if err != nil {
		return false, err
	}
	defer unlock()
	mode := fs.FileMode(0o644)
	old, err := os.ReadFile(path)
	exists := err == nil
	switch {
	case errors.Is(err, fs.ErrNotExist):
		old = nil
	case err != nil:
		return false, fmt.Errorf("read %s: %w", path, err)
	default:
		st, err := os.Stat(path)
		if err != nil {
			return false, err
		}
		mode = st.Mode().Perm()
	}
	out, err := change(old, exists)
	if err != nil {
		return false, err
	}
	if bytes.Equal(out, old) && (exists || out == nil) {
		return false, nil
	}
	if err := Replace(path, out, mode); err != nil {
		return false, fmt.Errorf("replace %s: %w", path, err)
	}
	return true, nil
}

// Replace writes data to path through a temporary file in its folder,
// synced, given mode and renamed over it: a reader (another run sharing a
// cache, say) finds the old content or the new, never part of either, and
// concurrent writers never rename each other's temporary files away. It
// takes no lock: the last writer wins (Edit serializes edits).
func Replace(path string, data []byte, mode fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename there is nothing left to remove
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// flock is flock(2) (a variable for tests).
var flock = syscall.Flock

// lock takes an exclusive lock on the folder dir and returns its release.
// On a file system that cannot lock a folder (NFS emulates flock with
// byte-range locks, which a folder opened for reading cannot take: EBADF;
// or no lock service: ENOLCK) the edit goes on unlocked: its rename is
// still atomic, only a concurrent edit may be lost there.
func lock(dir string) (unlock func(), err error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		if errors.Is(err, syscall.EBADF) || errors.Is(err, syscall.ENOLCK) || errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.EINVAL) {
			return func() {}, nil
		}
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return func() { f.Close() }, nil
}
