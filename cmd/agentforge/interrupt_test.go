package main

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The first Ctrl-C asks the command to stop and says so; a second one
// ends agentforge at once, even while a step that does not watch for
// cancellation (compressing a large layer) is still running.
func TestInterruptContext_SecondSignalEndsAtOnce(t *testing.T) {
	if os.Getenv("AGENTFORGE_TEST_INTERRUPT") == "1" {
		ctx, stop := interruptContext(os.Stderr)
		defer stop()
		syscall.Kill(os.Getpid(), syscall.SIGINT)
		<-ctx.Done()
		// A step that takes no notice: only a second signal ends it.
		for range 100 {
			syscall.Kill(os.Getpid(), syscall.SIGINT)
			time.Sleep(50 * time.Millisecond)
		}
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestInterruptContext_SecondSignalEndsAtOnce$")
	cmd.Env = append(os.Environ(), "AGENTFORGE_TEST_INTERRUPT=1")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGINT {
		t.Fatalf("a second interrupt did not end the process (%v):\n%s", err, out)
	}
	if !strings.Contains(string(out), "interrupt again to stop at once") {
		t.Errorf("the first interrupt is not acknowledged:\n%s", out)
	}
}
