package fileedit

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// An edit replaces the file only when its content changes, keeps its
// mode, leaves no temporary file, creates a missing file, and leaves the
// file as it was when the change fails.
func TestEdit(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "jenkins.yaml")
	if err := os.WriteFile(path, []byte("a\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		change  func([]byte, bool) ([]byte, error)
		changed bool
		want    string
		err     string
	}{
		{name: "the same", change: func(old []byte, _ bool) ([]byte, error) { return old, nil }, want: "a\n"},
		{name: "appended", change: func(old []byte, _ bool) ([]byte, error) { return append(old, "b\n"...), nil }, changed: true, want: "a\nb\n"},
		{name: "refused", change: func([]byte, bool) ([]byte, error) { return []byte("half"), errors.New("no") }, want: "a\nb\n", err: "no"},
	} {
		changed, err := Edit(path, tc.change)
		if changed != tc.changed || (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: changed %t, %v", tc.name, changed, err)
		}
		if data, _ := os.ReadFile(path); string(data) != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, data, tc.want)
		}
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", st.Mode().Perm())
	}
	created := filepath.Join(dir, "new.yaml")
	if changed, err := Edit(created, func(old []byte, exists bool) ([]byte, error) {
		if old != nil || exists {
			t.Errorf("a missing file: %q, exists %t", old, exists)
		}
		return []byte("x\n"), nil
	}); !changed || err != nil {
		t.Fatalf("create: %t %v", changed, err)
	}
	if changed, err := Edit(filepath.Join(dir, "not.yaml"), func([]byte, bool) ([]byte, error) { return nil, nil }); changed || err != nil {
		t.Errorf("nothing for a missing file: changed %t, %v", changed, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("left behind: %v", entries)
	}
}

// Concurrent edits of one file wait for each other: every one's change is
// there at the end (without the lock, most runs lose some).
func TestEdit_Concurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "list")
	os.WriteFile(path, nil, 0o644)
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := Edit(path, func(old []byte, _ bool) ([]byte, error) {
				return append(old, strconv.Itoa(i)+"\n"...), nil
			}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	data, _ := os.ReadFile(path)
	if n := len(strings.Fields(string(data))); n != 40 {
		t.Errorf("%d of 40 edits kept", n)
	}
}

// Where the folder cannot be locked (NFS: EBADF, no lock service: ENOLCK),
// the edit is still made, unlocked; another lock failure fails it.
func TestEdit_UnlockableFolder(t *testing.T) {
	defer func(f func(int, int) error) { flock = f }(flock)
	path := filepath.Join(t.TempDir(), "f")
	for _, tc := range []struct {
		err  error
		edit bool
	}{{syscall.EBADF, true}, {syscall.ENOLCK, true}, {syscall.EINTR, false}} {
		flock = func(int, int) error { return tc.err }
		changed, err := Edit(path, func([]byte, bool) ([]byte, error) { return []byte(tc.err.Error()), nil })
		if changed != tc.edit || (err == nil) != tc.edit {
			t.Errorf("flock %v: changed %t, %v", tc.err, changed, err)
		}
	}
}
