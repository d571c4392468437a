package images_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/agentforge/agentforge/builder"
	"github.com/agentforge/agentforge/builder/buildertest"
	"github.com/agentforge/agentforge/builder/source"
	"github.com/agentforge/agentforge/images"
	"github.com/containers/buildah"
)

// The init tests build images with buildah in-process.
func TestMain(m *testing.M) {
	if buildah.InitReexec() {
		return
	}
	os.Exit(m.Run())
}

// stubJava stands in for java in the init tests. Like the JVM it ends with
// status 143 on SIGTERM (the JVM's handler runs the shutdown hooks, then
// exits 128+15). It says which process is PID 1 and who its parent is.
const stubJava = `#!/bin/bash
echo "java: pid1=$(readlink /proc/1/exe) ppid=$PPID"
case "${STUB_JAVA:-}" in
print)
	echo "java: argv $*"
	for a; do
		case "$a" in @/dev/fd/*) echo "java: $a holds $(cat "${a#@}")" ;; esac
	done
	if env | grep -q '^JENKINS_SECRET='; then echo "java: JENKINS_SECRET in the environment"; fi
	if tr '\0' '\n' < /proc/1/environ | grep -q '^JENKINS_SECRET='; then echo "java: JENKINS_SECRET in PID 1's environment"; fi
	;;
wait)
	trap 'echo "java: SIGTERM"; exit 143' TERM
	echo "java: waiting"
	: > /work/java-waiting
	sleep 600 &
	wait $!
	;;
esac
`

// initCheck runs as the single command of the entrypoint (jenkins-agent
// CMD). It must find catatonit as PID 1 and itself not, and an orphan (a
// process whose parent exits at once) must be reparented to PID 1 and
// reaped when it exits: no zombie is left.
const initCheck = `#!/bin/bash
set -eu
pid1=$(readlink /proc/1/exe)
echo "check: pid1=$pid1 self=$$"
[ "$pid1" = /usr/bin/catatonit ] || exit 11
[ "$$" != 1 ] || exit 12
orphan=$(bash -c 'sleep 1 >/dev/null 2>&1 & echo $!')
for i in $(seq 50); do
	read -r stat < "/proc/$orphan/stat"
	set -- ${stat##*) }
	[ "$2" != 1 ] || break
	sleep 0.02
done
echo "check: orphan $orphan state $1 parent $2"
[ "$2" = 1 ] || exit 13
sleep 2
if [ -e "/proc/$orphan" ]; then
	echo "check: orphan not reaped: $(cat /proc/$orphan/stat)"
	exit 14
fi
for f in /proc/[0-9]*/stat; do
	read -r stat < "$f" || continue
	set -- ${stat##*) }
	if [ "$1" = Z ]; then echo "check: zombie $stat"; exit 15; fi
done
echo "check: orphan reaped, no zombie"
`

// agentImage builds a small image that starts like python-agent: its real
// jenkins-agent as the entrypoint, catatonit at /usr/bin/catatonit, bash,
// a stub java and the check script, on busybox; the pod's emptyDir is at
// /work. It needs root, podman,
// runc, catatonit and busybox-static (make deps).
func agentImage(t *testing.T) (*builder.Result, func(ctx context.Context, script string, env []string) (string, error)) {
	t.Helper()
	buildertest.Builds(t)
	for _, tool := range []string{"podman", "runc", "/usr/bin/catatonit", "/bin/bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s (make deps): %v", tool, err)
		}
	}
	store := buildertest.NewStore(t, "vfs")
	base := buildertest.Busybox(t, store, nil)

	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	put := func(path string, data []byte, mode os.FileMode) {
		p := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
	}
	copyFile := func(from, to string) {
		data, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		put(to, data, 0o755)
	}
	// bash and the libraries it links, at the host's paths.
	out, err := exec.Command("ldd", "/bin/bash").Output()
	if err != nil {
		t.Fatalf("ldd /bin/bash: %v", err)
	}
	copyFile("/bin/bash", "bin/bash")
	for _, lib := range regexp.MustCompile(`/\S+`).FindAllString(string(out), -1) {
		real, err := filepath.EvalSymlinks(lib)
		if err != nil {
			t.Fatal(err)
		}
		copyFile(real, lib)
	}
	copyFile("/usr/bin/catatonit", "usr/bin/catatonit")
	copyFile("python-agent/jenkins-agent", "usr/local/bin/jenkins-agent")
	put("usr/bin/java", []byte(stubJava), 0o755)
	put("check", []byte(initCheck), 0o755)
	files := map[string]string{
		"image.yaml":    "name: agent-init\nversion: 1.0.0\nbase:\n  image: scratch\nsourceDateEpoch: 1700000000\n",
		"Containerfile": "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY root/ /\nENTRYPOINT [\"/usr/local/bin/jenkins-agent\"]\n",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	def, err := images.Load(os.DirFS(dir), "agent-init", map[string]string{"base.image": base.Names[0]})
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	res, err := builder.Build(context.Background(), def, builder.BuildOptions{Store: store, Output: &log, TmpDir: t.TempDir(),
		Fetcher: &source.Fetcher{CacheDir: buildertest.SourceCache(t)}})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, log.String())
	}
	run := func(ctx context.Context, script string, env []string) (string, error) {
		var out bytes.Buffer
		err := builder.RunAsPod(ctx, store, res.ID, script, builder.PodRunOptions{Env: env, EmptyDir: "/work", Stdout: &out, Stderr: &out})
		return out.String(), err
	}
	return res, run
}

// The image's entrypoint, started as PID 1 the way a pod starts it (uid
// 1000, podman with runc; RunAsPod's bash execs it as PID 1), puts
// catatonit in front of itself as PID 1 however it is started: with one
// command, with the Kubernetes plugin's environment, with the legacy
// positional "SECRET NAME" arguments. catatonit reaps orphans, forwards
// SIGTERM to the agent and exits with the agent's status.
func TestEntrypoint_InitAsPID1(t *testing.T) {
	_, run := agentImage(t)
	plugin := []string{"JENKINS_URL=http://jenkins.ci:8080/", "JENKINS_SECRET=0123abcd", "JENKINS_AGENT_NAME=agent-1", "JENKINS_AGENT_WORKDIR=/work"}

	t.Run("a command: orphans reaped", func(t *testing.T) {
		out, err := run(context.Background(), "exec /usr/local/bin/jenkins-agent /check", nil)
		if err != nil || !strings.Contains(out, "check: orphan reaped, no zombie") {
			t.Fatalf("%v\n%s", err, out)
		}
	})

	t.Run("legacy positional arguments", func(t *testing.T) {
		out, err := run(context.Background(), "exec /usr/local/bin/jenkins-agent 0123abcd agent-1", append(plugin, "STUB_JAVA=print"))
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		for _, want := range []string{
			"java: pid1=/usr/bin/catatonit ppid=1",
			"java: argv -jar /usr/share/jenkins/agent.jar -url http://jenkins.ci:8080/ -workDir /work 0123abcd agent-1\n",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("want %q in\n%s", want, out)
			}
		}
	})

	t.Run("the secret through a pipe, not argv or the environment", func(t *testing.T) {
		out, err := run(context.Background(), "exec /usr/local/bin/jenkins-agent", append(plugin, "STUB_JAVA=print"))
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		for _, want := range []string{
			"java: argv -jar /usr/share/jenkins/agent.jar -secret @/dev/fd/3 -name agent-1 -url http://jenkins.ci:8080/ -workDir /work\n",
			"java: @/dev/fd/3 holds 0123abcd\n",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("want %q in\n%s", want, out)
			}
		}
		if strings.Contains(out, "JENKINS_SECRET in the environment") {
			t.Errorf("the agent's environment holds the secret:\n%s", out)
		}
		// catatonit's, which every process of the pod's uid reads
		// (/proc/1/environ): the init keeps the environment it was
		// started with.
		if strings.Contains(out, "JENKINS_SECRET in PID 1's environment") {
			t.Errorf("PID 1's environment holds the secret:\n%s", out)
		}
	})

	t.Run("SIGTERM to PID 1 ends the agent with its status", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		// What the kubelet does when a pod is deleted: SIGTERM to the
		// container's PID 1, once the agent runs. From inside the
		// container's PID namespace the kernel drops a signal to PID 1
		// that has no handler, so this also shows catatonit takes it.
		// The watchdog ends the container if SIGTERM does not (a
		// killed podman client would leave it running).
		script := "(sleep 40; kill -KILL -1) &\n(until [ -e /work/java-waiting ]; do sleep 0.1; done; kill -TERM 1) &\nexec /usr/local/bin/jenkins-agent\n"
		start := time.Now()
		out, err := run(ctx, script, append(plugin, "STUB_JAVA=wait"))
		took := time.Since(start)
		if err == nil || !strings.Contains(err.Error(), "exit status 143") {
			t.Fatalf("want exit status 143, got %v after %s\n%s", err, took, out)
		}
		for _, want := range []string{"java: pid1=/usr/bin/catatonit ppid=1", "java: waiting", "java: SIGTERM"} {
			if !strings.Contains(out, want) {
				t.Errorf("want %q in\n%s", want, out)
			}
		}
		if took > 30*time.Second {
			t.Errorf("SIGTERM took %s to end the container", took)
		}
	})
}
