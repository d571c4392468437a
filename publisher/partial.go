package publisher

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
)

// partialMark is in the name of a staging folder being written.
const partialMark = ".partial-"

// abandonedAge is how old a staging folder nobody holds must be before it
// is taken for abandoned. A run takes its lock right after it creates its
// folder, but on a disk shared by hosts whose locks stay local (NFS with
// local_lock, FUSE), another host's live folder looks unheld: an hour is
// far longer than any stage takes (the python-agent's: 5 s), so only
// folders of runs long dead are taken.
const abandonedAge = time.Hour

// holdPartial takes an exclusive flock(2) on the staging folder dir for as
// long as this run writes it, so that a folder nobody holds is known to
// be one whose run died (killed, a second Ctrl-C) before it could remove
// it. Where folders cannot be locked (NFS) it holds nothing.
func holdPartial(dir string) (release func()) {
	f, err := os.Open(dir)
	if err != nil {
		return func() {}
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return func() {}
	}
	return func() { f.Close() }
}

// removeAbandoned removes the staging folders under root that runs left
// behind when they died: named *.partial-*, older than minAge and locked
// by nobody. A folder whose lock cannot be tried is left alone.
func removeAbandoned(root string, minAge time.Duration, log logrus.FieldLogger) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.Contains(e.Name(), partialMark) {
			continue
		}
		info, err := e.Info()
		if err != nil || time.Since(info.ModTime()) < minAge {
			continue
		}
		dir := filepath.Join(root, e.Name())
		f, err := os.Open(dir)
		if err != nil {
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			// Held now by this run: nobody else is writing it.
			if err := os.RemoveAll(dir); err == nil {
				log.Infof("removed %s, left by a run that stopped before it finished", dir)
			}
		}
		f.Close()
	}
}
