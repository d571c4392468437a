package main

import (
	"bytes"
	"encoding/json"
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
	if mode := os.Getenv("AGENTFORGE_TEST_INTERRUPT"); mode != "" {
		ctx, stop := interruptContext(os.Stderr, mode == "json")
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
