package builder

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/agentforge/agentforge/images/errs"

	"go.podman.io/storage"
	"golang.org/x/sys/unix"
)

// PodRunOptions say how RunAsPod runs an image.
type PodRunOptions struct {
	// User is the uid:gid the container runs as (a pod's runAsUser); default 1000:1000.
	User string
	// Privileged gives the container every capability and device, as a
	// pod's privileged securityContext does.
	Privileged bool
	// EmptyDir, when set, is the mount path of a fresh, empty volume owned
	// by User, as an emptyDir in the pod template gives.
	EmptyDir string
	// WorkDir holds the emptyDir's folder; default /var/tmp (overlay needs
	// a file system with user extended attributes, which tmpfs lacks on
	// older kernels).
	WorkDir string
	// Shell runs the script; default bash.
	Shell string
	// Env is extra NAME=VALUE settings.
	Env []string
	// Network is the container's network: "" or "none" (none at all) or
	// "host" (what the node reaches, as a pod's own network does: a build
	// inside that downloads its sources needs it).
	Network string
	// Mounts are host folders given to the container, as a pod's volumes
	// (the Jenkins workspace, a hostPath): "HOST:CONTAINER" or
	// "HOST:CONTAINER:ro", both absolute.
	Mounts []string
	// Stdout and Stderr receive the script's output.
	Stdout, Stderr io.Writer
}

// RunAsPod runs script with bash (or o.Shell) in the local image imageID (in store) the
// way a Kubernetes pod runs an agent container: as an unprivileged uid,
// entrypoint overridden, the image's VOLUME lines ignored (Kubernetes does
// not create them), an emptyDir where the options say, no network. It runs
// the host's podman with runc and cgroupfs (crun and systemd cgroups do not
// work in every CI container), sharing store, so the image is not copied.
// It is a check of the built image, not a way to build: builds stay
// in-process.
func RunAsPod(ctx context.Context, store storage.Store, imageID, script string, o PodRunOptions) error {
	podman, err := LookTool("podman")
	if err != nil {
		return err
	}
	if _, err := LookTool("runc"); err != nil {
		return err
	}
	if o.User == "" {
		o.User = "1000:1000"
	}
	if o.Shell == "" {
		o.Shell = "bash"
	}
	uid, gid, ok := numericUser(o.User)
	if !ok {
		return errs.Inputf("pod user %q: want uid:gid in numbers (a pod's runAsUser/runAsGroup)", o.User)
	}
	network := o.Network
	switch network {
	case "":
		network = "none"
	case "none", "host":
	default:
		return errs.Inputf("pod network %q: want none or host", o.Network)
	}
	for _, m := range o.Mounts {
		if err := checkMount(m); err != nil {
			return err
		}
	}
	runroot := store.RunRoot()
	if len(runroot) > 50 {
		// podman refuses a longer runroot: reach the same one by a short
		// link. The link stays (podman records the runroot it was first
		// given in its database), named after the runroot it points to.
		sum := sha256.Sum256([]byte(store.RunRoot()))
		runroot = filepath.Join(os.TempDir(), "agentforge-runroot-"+hex.EncodeToString(sum[:6]))
		if cur, err := os.Readlink(runroot); err != nil || cur != store.RunRoot() {
			os.Remove(runroot)
			if err := os.Symlink(store.RunRoot(), runroot); err != nil {
				return fmt.Errorf("runroot link: %w", err)
			}
		}
	}
	global := []string{
		"--root", store.GraphRoot(), "--runroot", runroot, "--storage-driver", store.GraphDriverName(),
		"--runtime", "runc", "--cgroup-manager", "cgroupfs", "--events-backend", "file",
	}
	// The container's ID, for stopping it when ctx ends (see stopPod).
	cidDir, err := os.MkdirTemp("", "agentforge-podrun-")
	if err != nil {
		return fmt.Errorf("pod run: %w", err)
	}
	defer os.RemoveAll(cidDir)
	cidFile := filepath.Join(cidDir, "cid")
	args := append(append([]string{}, global...),
		"run", "--rm", "--cidfile", cidFile, "--network", network, "--image-volume", "ignore", "--user", o.User, "--entrypoint", o.Shell,
	)
	// Explicit limits at or below the current hard limits, and no higher
	// than measured to work (runc is refused higher nproc limits in some
	// CI containers).
	for _, l := range []struct {
		name string
		res  int
		max  uint64
	}{{"nofile", unix.RLIMIT_NOFILE, 20000}, {"nproc", unix.RLIMIT_NPROC, 4096}} {
		var rl unix.Rlimit
		if unix.Getrlimit(l.res, &rl) == nil {
			n := strconv.FormatUint(min(rl.Max, l.max), 10)
			args = append(args, "--ulimit", l.name+"="+n+":"+n)
		}
	}
	if o.Privileged {
		args = append(args, "--privileged")
	}
	if o.EmptyDir != "" {
		if o.WorkDir == "" {
			o.WorkDir = "/var/tmp"
		}
		dir, err := os.MkdirTemp(o.WorkDir, "agentforge-emptydir-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		if err := os.Chown(dir, uid, gid); err != nil {
			return fmt.Errorf("emptyDir: %w", err)
		}
		args = append(args, "-v", dir+":"+o.EmptyDir)
	}
	for _, m := range o.Mounts {
		args = append(args, "-v", m)
	}
	for _, e := range o.Env {
		args = append(args, "-e", e)
	}
	args = append(args, imageID, "-c", script)
	cmd := exec.CommandContext(ctx, podman, args...)
	cmd.Stdout, cmd.Stderr = o.Stdout, o.Stderr
	cmd.Cancel = func() error { return stopPod(cmd, podman, global, cidFile) }
	cmd.WaitDelay = podStopDelay
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("run %s as a pod would (podman %s): %w", shortID(imageID), "run --user "+o.User, err)
	}
	return nil
}

// podStopDelay is how long a cancelled pod run may take to remove its
// container before podman is killed.
const podStopDelay = 30 * time.Second

// stopPod ends a pod run whose context ended: it kills the container
// through podman, so that `podman run --rm`, still waiting, sees it end
// and removes it. Killing `podman run` instead would leave the container
// running under conmon, and agentforge, the subreaper of both (see
// AdoptOrphans), kills conmon as it ends: the container would then stay
// in the store, recorded as running, its storage held, for good. Before
// podman has written the container's ID, podman itself is killed.
func stopPod(cmd *exec.Cmd, podman string, global []string, cidFile string) error {
	id, err := os.ReadFile(cidFile)
	if err != nil || len(bytes.TrimSpace(id)) == 0 {
		return cmd.Process.Kill()
	}
	ctx, cancel := context.WithTimeout(context.Background(), podStopDelay)
	defer cancel()
	kill := exec.CommandContext(ctx, podman, append(append([]string{}, global...), "kill", "--signal", "KILL", string(bytes.TrimSpace(id)))...)
	if out, err := kill.CombinedOutput(); err != nil {
		return errors.Join(fmt.Errorf("kill the pod's container: %w: %s", err, bytes.TrimSpace(out)), cmd.Process.Kill())
	}
	return nil
}

// checkMount accepts "HOST:CONTAINER[:ro]" with two absolute paths that
// name no further option.
func checkMount(m string) error {
	parts := strings.Split(m, ":")
	ok := len(parts) == 2 || len(parts) == 3 && parts[2] == "ro"
	if !ok || !filepath.IsAbs(parts[0]) || !filepath.IsAbs(parts[1]) || strings.Contains(m, ",") {
		return errs.Inputf("pod mount %q: want HOST:CONTAINER or HOST:CONTAINER:ro, absolute paths", m)
	}
	return nil
}

// numericUser parses "uid:gid".
func numericUser(s string) (int, int, bool) {
	u, g, ok := strings.Cut(s, ":")
	uid, err1 := strconv.Atoi(u)
	gid, err2 := strconv.Atoi(g)
	return uid, gid, ok && err1 == nil && err2 == nil && uid >= 0 && gid >= 0
}

// UserNamespaces reports whether this machine lets a process create a
// user namespace, which rootless podman needs. The kernel refuses it to
// chrooted processes (a debootstrap build root, for example), and some
// hosts disable it; then no container started from here can run rootless
// podman either. It asks util-linux's unshare.
func UserNamespaces(ctx context.Context) bool {
	return exec.CommandContext(ctx, "unshare", "--user", "true").Run() == nil
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
