package builder_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/builder"
	"github.com/agentforge/agentforge/builder/buildertest"
)

// RunAsPod runs the image as a pod does: the given uid, an emptyDir that
// uid can write, the image's own files. Needs podman and runc (make deps).
func TestRunAsPod_UserAndEmptyDir(t *testing.T) {
	store := buildertest.NewStore(t, "vfs")
	res := buildertest.Busybox(t, store, nil)
	var out bytes.Buffer
	err := builder.RunAsPod(context.Background(), store, res.ID, "id -u; id -g; touch /data/x && ls -n /data; cat /etc/greeting",
		builder.PodRunOptions{Shell: "/bin/sh", EmptyDir: "/data", Stdout: &out, Stderr: &out})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) < 4 || lines[0] != "1000" || lines[1] != "1000" || !strings.Contains(out.String(), "1000     1000") || lines[len(lines)-1] != "hello from agentforge" {
		t.Fatalf("output:\n%s", out.String())
	}
	// A failing script fails the run.
	if err := builder.RunAsPod(context.Background(), store, res.ID, "exit 3", builder.PodRunOptions{Shell: "/bin/sh"}); err == nil {
		t.Fatal("a failing script was reported as passing")
	}
	// Again on the same store (podman keeps the runroot it first saw).
	if err := builder.RunAsPod(context.Background(), store, res.ID, "true", builder.PodRunOptions{Shell: "/bin/sh"}); err != nil {
		t.Fatalf("a second run on the same store: %v", err)
	}
	if err := builder.RunAsPod(context.Background(), store, res.ID, "true", builder.PodRunOptions{Shell: "/bin/sh", User: "jenkins"}); err == nil {
		t.Fatal("a non-numeric user was accepted")
	}
}

// The probe agrees with the kernel: as root on a normal machine a user
// namespace can be made; inside a chroot it cannot.
func TestUserNamespaces(t *testing.T) {
	if !builder.UserNamespaces(context.Background()) {
		t.Skip("this machine refuses user namespaces (a chroot?): nothing to compare")
	}
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("busybox-static (make deps): %v", err)
	}
	os.WriteFile(filepath.Join(root, "bin", "busybox"), data, 0o755)
	out, err := exec.Command("chroot", root, "/bin/busybox", "unshare", "-U", "/bin/busybox", "true").CombinedOutput()
	if err == nil {
		t.Fatalf("a chrooted process made a user namespace:\n%s", out)
	}
}
