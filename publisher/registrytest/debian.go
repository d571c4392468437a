package registrytest

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// DebianRegistry is where Debian's docker-registry package puts the
// registry: distribution v2.8 (bookworm: 2.8.2), the version many
// registries and mirrors still run.
const DebianRegistry = "/usr/bin/docker-registry"

var listeningRE = regexp.MustCompile(`msg="listening on (127\.0\.0\.1:\d+)"`)

// NewDebian starts Debian's docker-registry (distribution v2.8) on a free
// port, plain HTTP without auth, storing under the test's temporary
// directory; it stops when the test ends. It is not in the short tier; it
// fails the test when the package is not installed (make deps installs
// it).
func NewDebian(t testing.TB) *Registry {
	t.Helper()
	if testing.Short() {
		t.Skip("runs Debian's docker-registry: not in the short tier (make test runs it)")
	}
	if _, err := os.Stat(DebianRegistry); err != nil {
		t.Fatalf("registrytest: %v: apt-get install docker-registry (make deps does)", err)
	}
	dir := t.TempDir()
	r := &Registry{Root: filepath.Join(dir, "data"), Scheme: "http"}
	cfg := filepath.Join(dir, "config.yml")
	// http.secret signs the upload state (_state); fixed, as a
	// deployment's is.
	conf := "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: " + r.Root +
		"\nhttp:\n  addr: 127.0.0.1:0\n  secret: registrytest\n"
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, DebianRegistry, "serve", cfg)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("registrytest: start %s: %v", DebianRegistry, err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case r.Host = <-found:
	case <-time.After(30 * time.Second):
		t.Fatalf("registrytest: %s did not say where it listens within 30 s", DebianRegistry)
	}
	return r
}
