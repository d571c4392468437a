package builder_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/builder/source"

	"github.com/agentforge/agentforge/builder"
	"github.com/agentforge/agentforge/builder/buildertest"
)

// startPodmanService runs `podman system service` (Debian's podman, which
// .ci/run installs) on a private socket and a private vfs store.
func startPodmanService(t *testing.T) (url, root, runroot string) {
	t.Helper()
	if _, err := exec.LookPath("podman"); err != nil {
		t.Fatal("podman is needed for the podman-service backend test (apt-get install podman; .ci/run does)")
	}
	dir := t.TempDir()
	// podman refuses a runroot longer than 50 characters.
	short, err := os.MkdirTemp("/run", "afp-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(short) })
	root, runroot = filepath.Join(dir, "root"), short
	sock := filepath.Join(dir, "podman.sock")
	cmd := exec.Command("podman", "--root", root, "--runroot", runroot, "--storage-driver", "vfs",
		"system", "service", "--time=0", "unix://"+sock)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(sock); err == nil {
			return "unix://" + sock, root, runroot
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("podman service did not start")
	return
}

func TestBuildPodman_ThroughTheService(t *testing.T) {
	buildertest.Builds(t)
	url, root, runroot := startPodmanService(t)
	def := buildertest.LoadBusybox(t, nil)
	build := func() *builder.Result {
		res, err := builder.BuildPodman(context.Background(), url, def, builder.BuildOptions{Fetcher: &source.Fetcher{CacheDir: t.TempDir()}, TmpDir: t.TempDir(), Output: os.Stderr})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	first := build()
	if len(first.Layers) != 3 || first.Created != "2023-11-14T22:13:20Z" || !strings.HasPrefix(first.Digest, "sha256:") {
		t.Fatalf("result: %+v", first)
	}
	if again := build(); again.ID != first.ID {
		t.Errorf("an unchanged rebuild through the service gave %s, then %s", first.ID, again.ID)
	}

	// Our own verifier reads the service's store and checks every layer.
	store, err := builder.OpenStore(builder.StoreOptions{Root: root, RunRoot: runroot, Driver: "vfs"})
	if err != nil {
		t.Fatal(err)
	}
	defer builder.CloseStore(store)
	ref, err := oci.ParseReference("busybox-demo:1.0.0", store)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := oci.Verify(context.Background(), ref, oci.VerifyOptions{})
	if err != nil || !rep.OK || len(rep.Layers) != 3 {
		t.Fatalf("verify the service's image: %v", err)
	}
	for i, l := range rep.Layers {
		if l.DiffID != first.Layers[i].DiffID {
			t.Errorf("layer %d: service reported %s, storage holds %s", i, first.Layers[i].DiffID, l.DiffID)
		}
	}
}
