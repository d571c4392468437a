package builder

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"testing/fstest"
)

func TestCopyContext_SparseAndRegularOnly(t *testing.T) {
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "sub"), 0o755)
	os.WriteFile(filepath.Join(src, "sub", "a.txt"), []byte("hello"), 0o640)
	// A 256 MiB sparse file with a few bytes in the middle.
	f, _ := os.Create(filepath.Join(src, "sparse.img"))
	f.Truncate(256 << 20)
	f.WriteAt([]byte("data"), 100<<20)
	f.Close()

	dst := filepath.Join(t.TempDir(), "ctx")
	if err := copyContext(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "sub", "a.txt")); string(b) != "hello" {
		t.Errorf("a.txt: %q", b)
	}
	st, err := os.Stat(filepath.Join(dst, "sparse.img"))
	if err != nil || st.Size() != 256<<20 {
		t.Fatalf("sparse.img: %v %v", st, err)
	}
	if blocks := st.Sys().(*syscall.Stat_t).Blocks * 512; blocks > 8<<20 {
		t.Errorf("the copy takes %d bytes on disk for 4 bytes of data: not sparse", blocks)
	}
	got, _ := os.ReadFile(filepath.Join(dst, "sparse.img"))
	if !bytes.Equal(got[100<<20:100<<20+4], []byte("data")) {
		t.Error("content lost")
	}

	// A symbolic link is refused (images.Load refuses them first).
	if err := copyContext(filepath.Join(t.TempDir(), "c"), fstest.MapFS{"link": {Mode: os.ModeSymlink, Data: []byte("/etc")}}); err == nil {
		t.Error("a symbolic link was copied")
	}
}
