// Package buildertest gives tests real images quickly: a fresh
// containers-storage store in a temporary directory and builds of the
// offline testdata/busybox definition (FROM scratch plus Debian's static
// busybox). Builds need root, cgo and busybox-static; the test binary's
// TestMain must call buildah.InitReexec first.
package buildertest

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/agentforge/agentforge/builder"
	"github.com/agentforge/agentforge/builder/source"
	"github.com/agentforge/agentforge/images"
	"go.podman.io/storage"
)

// freeMu serializes storage.Store.Free, which edits a package-global list
// without a lock.
var freeMu sync.Mutex

// NewStore opens a fresh store ("vfs" or "overlay") that is shut down and
// freed when the test ends.
func NewStore(t testing.TB, driver string) storage.Store {
	t.Helper()
	s, err := builder.OpenStore(builder.StoreOptions{Root: filepath.Join(t.TempDir(), "storage"), Driver: driver})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := builder.CloseStore(s); err != nil {
			t.Error(err)
		}
		freeMu.Lock()
		s.Free()
		freeMu.Unlock()
	})
	return s
}

// BusyboxDir is the folder of the testdata/busybox definition.
func BusyboxDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "busybox")
}

// LoadBusybox loads testdata/busybox with the given overrides.
func LoadBusybox(t testing.TB, overrides map[string]string) *images.Definition {
	t.Helper()
	fsys, name, err := images.Open(BusyboxDir())
	if err != nil {
		t.Fatal(err)
	}
	def, err := images.Load(fsys, name, overrides)
	if err != nil {
		t.Fatal(err)
	}
	return def
}

// SourceCache is a source cache shared by the tests of every package, so
// that testdata/busybox's packages come from Debian's archive once per
// machine. Sharing is safe: the cache is content-addressed and every hit
// is checked again.
func SourceCache(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(os.TempDir(), "agentforge-test-sources")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Builds marks a test that builds an image with buildah: it does not run
// in the short tier (go test -short, make test-short), which has none.
func Builds(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds an image: not in the short tier (make test runs it)")
	}
}

// Busybox builds testdata/busybox into store (overrides such as
// {"greeting": "x"} make different images).
func Busybox(t testing.TB, store storage.Store, overrides map[string]string) *builder.Result {
	t.Helper()
	return BusyboxFor(t, store, nil, overrides)
}

// BusyboxFor builds testdata/busybox for platforms (none: this machine's;
// several: a manifest list). A foreign platform needs qemu-user-static and
// binfmt-support, which make deps installs.
func BusyboxFor(t testing.TB, store storage.Store, platforms []string, overrides map[string]string) *builder.Result {
	t.Helper()
	Builds(t)
	var out bytes.Buffer
	res, err := builder.Build(context.Background(), LoadBusybox(t, overrides), builder.BuildOptions{
		Store: store, Fetcher: &source.Fetcher{CacheDir: SourceCache(t)}, Output: &out, TmpDir: t.TempDir(), Platforms: platforms,
	})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out.String())
	}
	return res
}
