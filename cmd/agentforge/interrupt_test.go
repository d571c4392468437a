package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentforge/agentforge/builder/buildertest"
)

// The first Ctrl-C asks the command to stop and says so; a second one
// ends agentforge at once, by the signal, even while a step that does not
// watch for cancellation (compressing a large layer) is still running,
// and while a buildah RUN step catches the signal itself: buildah v1.42's
// run_common.go calls signal.Notify(interrupted, SIGHUP, SIGINT, SIGTERM)
// while it waits for the step's container, and only kills the container.
func TestInterruptContext_SecondSignalEndsAtOnce(t *testing.T) {
	if mode := os.Getenv("AGENTFORGE_TEST_INTERRUPT"); mode != "" {
		ctx, stop := interruptContext(os.Stderr, mode == "json")
		defer stop()
		syscall.Kill(os.Getpid(), syscall.SIGINT)
		<-ctx.Done()
		// A RUN step starts, as buildah runs it.
		interrupted := make(chan os.Signal, 100)
		signal.Notify(interrupted, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
		// A step that takes no notice: only a second signal ends it.
		for range 100 {
			syscall.Kill(os.Getpid(), syscall.SIGINT)
			time.Sleep(50 * time.Millisecond)
		}
		os.Exit(0)
	}
	for _, mode := range []string{"text", "json"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestInterruptContext_SecondSignalEndsAtOnce$")
		cmd.Env = append(os.Environ(), "AGENTFORGE_TEST_INTERRUPT="+mode)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGINT {
			t.Fatalf("%s: a second interrupt did not end the process (%v):\n%s", mode, err, stderr.String())
		}
		line := strings.TrimSpace(stderr.String())
		if !strings.Contains(line, "interrupt again to stop at once") {
			t.Errorf("%s: the first interrupt is not acknowledged:\n%s", mode, line)
		}
		if mode == "json" && !json.Valid([]byte(line)) {
			t.Errorf("the acknowledgment is not a JSON log line: %s", line)
		}
	}
}

// registry serve -o json prints one JSON object, where it listens, as soon
// as it does (a script waits for it; with port 0 it is the only way to
// learn the port), and nothing more when it is stopped.
func TestCLI_RegistryServeJSON(t *testing.T) {
	if root := os.Getenv("AGENTFORGE_TEST_SERVE"); root != "" {
		os.Exit(run([]string{"registry", "serve", "--addr", "127.0.0.1:0", "--root", root, "-o", "json"}, os.Stdout, os.Stderr))
	}
	root := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCLI_RegistryServeJSON$")
	cmd.Env = append(os.Environ(), "AGENTFORGE_TEST_SERVE="+root)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	// Decode blocks until the object is complete (printed once listening),
	// or until a server that prints nothing is killed.
	never := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
	defer never.Stop()
	dec := json.NewDecoder(out)
	var got struct{ URL, Addr, Root string }
	if err := dec.Decode(&got); err != nil || got.Root != root || !strings.HasPrefix(got.URL, "http://127.0.0.1:") || strings.HasSuffix(got.Addr, ":0") {
		t.Fatalf("printed %+v (%v), want where it listens", got, err)
	}
	resp, err := http.Get(got.URL + "/v2/")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s/v2/: %v %v", got.URL, resp, err)
	}
	cmd.Process.Signal(syscall.SIGINT)
	rest, _ := io.ReadAll(out)
	if err := cmd.Wait(); err != nil {
		t.Errorf("stopped by an interrupt: %v\n%s", err, stderr.String())
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		t.Errorf("more on stdout after the first object: %q", rest)
	}
}

// An interrupt that fails a command is acknowledged before the failure is
// reported, never after it: the outcome is the last line on stderr, and
// it says what stopped the command.
func TestCLI_InterruptAcknowledgedBeforeTheOutcome(t *testing.T) {
	if base := os.Getenv("AGENTFORGE_TEST_HANG"); base != "" {
		os.Exit(run([]string{"python", "latest", "--python-org", base}, os.Stdout, os.Stderr))
	}
	// python.org stood in by a server that never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	asked := make(chan struct{}, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			asked <- struct{}{}
		}
	}()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCLI_InterruptAcknowledgedBeforeTheOutcome$")
	cmd.Env = append(os.Environ(), "AGENTFORGE_TEST_HANG=http://"+ln.Addr().String())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-asked:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("the command never asked")
	}
	cmd.Process.Signal(syscall.SIGINT)
	cmd.Wait()
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	last := lines[len(lines)-1]
	if len(lines) < 2 || !strings.Contains(stderr.String(), "interrupt again") || !strings.HasPrefix(last, "agentforge: error: stopped (interrupt signal received)") {
		t.Errorf("want the acknowledgment, then the failure last:\n%s", stderr.String())
	}
}

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

// A SIGINT ignored when agentforge started (a script's background job:
// the shell ignores it there, so that a Ctrl-C meant for the script's
// foreground command leaves it running) stays ignored: it neither stops
// the command nor ends the process. SIGTERM still stops it.
func TestInterruptContext_IgnoredInterruptStaysIgnored(t *testing.T) {
	if os.Getenv("AGENTFORGE_TEST_IGNORED") != "" {
		ctx, stop := interruptContext(os.Stderr, false)
		defer stop()
		for range 2 {
			syscall.Kill(os.Getpid(), syscall.SIGINT)
			time.Sleep(100 * time.Millisecond)
		}
		if ctx.Err() != nil {
			os.Exit(3) // stopped by an ignored signal
		}
		syscall.Kill(os.Getpid(), syscall.SIGTERM)
		select {
		case <-ctx.Done():
			os.Exit(0)
		case <-time.After(5 * time.Second):
			os.Exit(4)
		}
	}
	// sh's `trap '' INT` is inherited through exec as an ignored signal.
	cmd := exec.Command("/bin/sh", "-c", `trap '' INT; exec "$0" -test.run='^TestInterruptContext_IgnoredInterruptStaysIgnored$'`, os.Args[0])
	cmd.Env = append(os.Environ(), "AGENTFORGE_TEST_IGNORED=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.ExitCode() == 3:
		t.Fatalf("an ignored SIGINT stopped the command:\n%s", stderr.String())
	default:
		t.Fatalf("%v:\n%s", err, stderr.String())
	}
}
