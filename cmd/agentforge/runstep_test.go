package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentforge/agentforge/builder/buildertest"
)

// A build stopped during a RUN step leaves nothing of the step running. A
// step runs with chroot isolation, which has no PID namespace, and on the
// interrupt buildah kills only the step's own process (chroot/run_common.go
// sends SIGKILL to its child): what that one started, here a sleep under
// sh, went on under init, where neither agentforge nor Jenkins' process
// killer (which looks for the build's environment variable) finds it.
func TestCLI_InterruptedRunStepLeavesNothingRunning(t *testing.T) {
	if args := os.Getenv("AGENTFORGE_TEST_RUNSTEP"); args != "" {
		os.Exit(runProcess(strings.Split(args, "\n"), os.Stdout, os.Stderr))
	}
	buildertest.Builds(t)
	def := t.TempDir()
	if err := os.CopyFS(def, os.DirFS(buildertest.BusyboxDir())); err != nil {
		t.Fatal(err)
	}
	// A sleep of a length no other process has, to find it by.
	secs := strconv.Itoa(100000 + os.Getpid()%100000)
	cf := filepath.Join(def, "Containerfile")
	data, err := os.ReadFile(cf)
	if err != nil {
		t.Fatal(err)
	}
	const run = `RUN ["/bin/busybox", "sh", "-c", "`
	if !bytes.Contains(data, []byte(run)) {
		t.Fatalf("no %s step in %s", run, cf)
	}
	data = bytes.Replace(data, []byte(run), []byte(run+"/bin/busybox sleep "+secs+"; "), 1)
	if err := os.WriteFile(cf, data, 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"build", def, "--cache-dir", buildertest.SourceCache(t)}, storeFlags(t)...)
	cmd := exec.Command(os.Args[0], "-test.run=^TestCLI_InterruptedRunStepLeavesNothingRunning$")
	cmd.Env = append(os.Environ(), "AGENTFORGE_TEST_RUNSTEP="+strings.Join(args, "\n"))
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	sleep := 0
	for deadline := time.Now().Add(5 * time.Minute); sleep == 0; {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("the step's sleep never started:\n%s", stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
		sleep = findProcess("/bin/busybox\x00sleep\x00" + secs + "\x00")
	}
	cmd.Process.Signal(syscall.SIGINT)
	err = cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != exitRuntime {
		t.Errorf("exit %d (%v), want %d", code, err, exitRuntime)
	}
	if err := syscall.Kill(sleep, 0); err == nil {
		syscall.Kill(sleep, syscall.SIGKILL)
		t.Fatalf("the step's sleep (%d) still runs after agentforge ended:\n%s", sleep, stderr.String())
	}
	if !regexp.MustCompile(`agentforge: ended (a process|\d+ processes) that (a )?stopped build steps? left running`).MatchString(stderr.String()) {
		t.Errorf("what was ended is not said:\n%s", stderr.String())
	}
}

// findProcess returns the pid of a process whose /proc/PID/cmdline is
// cmdline, or 0.
func findProcess(cmdline string) int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil && string(data) == cmdline {
			return pid
		}
	}
	return 0
}
