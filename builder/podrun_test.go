package builder_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentforge/agentforge/builder"
	"github.com/agentforge/agentforge/builder/buildertest"
	"github.com/agentforge/agentforge/images/errs"
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

// A pod's volumes and network: a host folder mounted read-only is there
// and cannot be written; "host" shares the node's network interfaces,
// the default none gives only loopback; anything else is refused before
// podman runs.
func TestRunAsPod_MountsAndNetwork(t *testing.T) {
	store := buildertest.NewStore(t, "vfs")
	res := buildertest.Busybox(t, store, nil)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "def.yaml"), []byte("name: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	script := "cat /workspace/def.yaml; if touch /workspace/new 2>/dev/null; then echo WRITABLE; fi; ls /sys/class/net | tr '\\n' ' '; echo"
	run := func(network string) string {
		out.Reset()
		err := builder.RunAsPod(context.Background(), store, res.ID, script, builder.PodRunOptions{Shell: "/bin/sh", User: "0:0",
			Network: network, Mounts: []string{dir + ":/workspace:ro"}, Stdout: &out, Stderr: &out})
		if err != nil {
			t.Fatalf("network %q: %v\n%s", network, err, out.String())
		}
		return out.String()
	}
	none := run("")
	if !strings.HasPrefix(none, "name: x\n") || strings.Contains(none, "WRITABLE") {
		t.Errorf("read-only mount:\n%s", none)
	}
	if strings.TrimSpace(strings.SplitN(none, "\n", 2)[1]) != "lo" {
		t.Errorf("network none: interfaces %q, want lo only", none)
	}
	host, err := os.ReadDir("/sys/class/net")
	if err != nil {
		t.Fatal(err)
	}
	if got := run("host"); len(host) > 1 && strings.TrimSpace(strings.SplitN(got, "\n", 2)[1]) == "lo" {
		t.Errorf("network host: only loopback in the container (host has %d interfaces):\n%s", len(host), got)
	}
	for _, bad := range []builder.PodRunOptions{
		{Network: "bridge"},
		{Mounts: []string{"relative:/workspace"}},
		{Mounts: []string{dir + ":/workspace:rw,exec"}},
		{Mounts: []string{dir + ":/workspace:z"}},
		{Mounts: []string{dir}},
	} {
		bad.Shell = "/bin/sh"
		if err := builder.RunAsPod(context.Background(), store, res.ID, "true", bad); !errors.Is(err, errs.ErrInput) {
			t.Errorf("%+v: %v, want bad input", bad, err)
		}
	}
}

// A pod run whose context ends (the first Ctrl-C, a Jenkins abort) stops
// its container and leaves none behind. Killing `podman run` alone left
// the container running under conmon; with agentforge the subreaper that
// kills conmon as it ends, it stayed in the store recorded as running.
func TestRunAsPod_CancelLeavesNoContainer(t *testing.T) {
	store := buildertest.NewStore(t, "vfs")
	res := buildertest.Busybox(t, store, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, w := io.Pipe()
	go func() {
		// Cancel once the script runs.
		line, _ := bufio.NewReader(r).ReadString('\n')
		if line == "started\n" {
			cancel()
		}
		io.Copy(io.Discard, r)
	}()
	start := time.Now()
	err := builder.RunAsPod(ctx, store, res.ID, "echo started; sleep 60", builder.PodRunOptions{Shell: "/bin/sh", Stdout: w, Stderr: w})
	w.Close()
	if err == nil {
		t.Fatal("a cancelled pod run was reported as passing")
	}
	if d := time.Since(start); d > 40*time.Second {
		t.Fatalf("the cancelled pod run took %v", d)
	}
	cs, err := store.Containers()
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 0 {
		t.Fatalf("a cancelled pod run left %d containers in the store (%s)", len(cs), cs[0].ID)
	}
}
