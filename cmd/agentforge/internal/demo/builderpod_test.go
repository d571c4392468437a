package demo

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// podInitCheck is the builder pod script's PID 1 check, from its comment
// to the line it prints when PID 1 passes.
func podInitCheck(t *testing.T) string {
	t.Helper()
	start := strings.Index(builderPodScript, "# PID 1 as pod.yaml")
	if start < 0 {
		t.Fatal("builderpod.sh has no PID 1 check")
	}
	rest := builderPodScript[start:]
	end := strings.Index(rest, "\necho \"init:")
	if end < 0 {
		t.Fatal("builderpod.sh's PID 1 check prints no verdict")
	}
	line, _, _ := strings.Cut(rest[end+1:], "\n")
	return rest[:end+1] + line + "\n"
}

// processesWith lists the processes whose command line has marker.
func processesWith(marker string) []int {
	var pids []int
	paths, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(data, []byte(marker)) {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p))); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// The pod script's PID 1 check passes an init that reaps and ends on
// SIGTERM, fails (and does not hang) on one that does either not, and
// leaves nothing running behind in any case. Run as root, with unshare,
// nsenter and catatonit.
func TestBuilderPodInitCheck(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (unshare --pid)")
	}
	for _, tool := range []string{"bash", "unshare", "nsenter", "catatonit"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	// Root in a container without CAP_SYS_ADMIN may not make namespaces.
	if out, err := exec.Command("unshare", "--pid", "--fork", "--mount-proc", "true").CombinedOutput(); err != nil {
		t.Skipf("unshare --pid does not work here: %v: %s", err, out)
	}
	script := "set -euo pipefail\n" + podInitCheck(t)
	// Each case's sleep lasts a number of seconds no other process uses:
	// what is left of it after the check is found by that number.
	for i, tc := range []struct {
		name    string
		command []string
		ok      bool
		say     string
	}{
		{"catatonit reaps and forwards SIGTERM", []string{"catatonit", "--", "sleep", "%d"}, true, "reaped a step's background process"},
		{"sleep never reaps", []string{"sleep", "%d"}, false, "a zombie"},
		{"a shell reaps but ignores SIGTERM as PID 1", []string{"bash", "-c", "sleep %d; :"}, false, "did not end within 10 s of a SIGTERM"},
		{"PID 1 that ends at once", []string{"catatonit", "--", "true"}, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			marker := strconv.Itoa(86700 + i)
			words := make([]string, len(tc.command))
			for j, w := range tc.command {
				words[j] = strings.ReplaceAll(w, "%d", marker)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "bash", "-c", script)
			cmd.Env = append(os.Environ(), "POD_COMMAND="+strings.Join(words, "\n"))
			cmd.WaitDelay = 5 * time.Second // what it left behind may hold its output open
			out, err := cmd.CombinedOutput()
			if ctx.Err() != nil {
				t.Errorf("the check did not end within a minute:\n%s", out)
			} else if (err == nil) != tc.ok || !strings.Contains(string(out), tc.say) {
				t.Errorf("PID 1 %q: %v, want ok=%v saying %q:\n%s", words, err, tc.ok, tc.say, out)
			}
			time.Sleep(200 * time.Millisecond) // a SIGKILLed namespace's processes end
			if left := processesWith(marker); len(left) > 0 {
				t.Errorf("left running: %v", left)
				for _, pid := range left {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		})
	}
}
