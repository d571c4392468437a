package builder

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// What a stopped RUN step leaves behind, a chrooted process whose parent
// is gone (the sleep an sh started, once sh is killed), is adopted and
// ended; an orphan in this process's own root (rootless podman's pause
// process, a conmon) is adopted and left alone. Needs root (chroot) and
// the static busybox make deps installs. Run in a process of its own: the
// adoption is process-wide.
func TestKillStepLeftovers_EndsChrootedOrphansOnly(t *testing.T) {
	if inOwnProcess(t) {
		if err := AdoptOrphans(); err != nil {
			t.Fatal(err)
		}
		root := t.TempDir()
		busybox, err := os.ReadFile("/bin/busybox")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "busybox"), busybox, 0o755); err != nil {
			t.Fatal(err)
		}
		// sh starts a process and exits at once, as a killed step's
		// shell would: the process loses its parent.
		orphan := func(cmdline string) int {
			out, err := exec.Command("sh", "-c", cmdline+" >/dev/null 2>&1 & echo $!").Output()
			if err != nil {
				t.Fatal(err)
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
			if err != nil {
				t.Fatal(err)
			}
			if p, ok := readProcess(pid); !ok || p.ppid != os.Getpid() {
				t.Fatalf("the orphan's parent is %d, not this process (%d)", p.ppid, os.Getpid())
			}
			return pid
		}
		step := orphan("chroot " + root + " /busybox sleep 600")
		own := orphan("sleep 600")
		defer func() { syscall.Kill(own, syscall.SIGKILL); syscall.Wait4(own, nil, 0, nil) }()
		// chroot(8) may not have changed its root yet: wait until it has,
		// as a step's process has long before it is left over.
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if r, err := os.Readlink(fmt.Sprintf("/proc/%d/root", step)); err == nil && r != "/" || time.Now().After(deadline) {
				break
			}
		}
		if n := KillStepLeftovers(5 * time.Second); n != 1 {
			t.Errorf("KillStepLeftovers ended %d processes, want 1", n)
		}
		if err := syscall.Kill(step, 0); err == nil {
			t.Errorf("the chrooted sleep (%d) still runs", step)
		}
		if err := syscall.Kill(own, 0); err != nil {
			t.Errorf("the sleep in this process's root (%d) was ended: %v", own, err)
		}
	}
}

// readProcess reads a command name with spaces and parentheses right.
func TestReadProcess_OddCommandNames(t *testing.T) {
	// A copy of sleep named so that its /proc/PID/stat reads "PID (a) (b
	// c) S PPID ...".
	dir := t.TempDir()
	data, err := os.ReadFile("/bin/sleep")
	if err != nil {
		t.Fatal(err)
	}
	name := dir + "/a) (b c"
	if err := os.WriteFile(name, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, "600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		stat, _ := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/stat")
		if strings.Contains(string(stat), "(b c)") || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if p, ok := readProcess(cmd.Process.Pid); !ok || p.ppid != os.Getpid() || p.state == 'Z' {
		t.Errorf("readProcess(%d) = %+v, %v; want a live child of %d", cmd.Process.Pid, p, ok, os.Getpid())
	}
}

// An orphan that ended by itself (a zombie until reaped) is reaped, and
// not counted as ended.
func TestKillStepLeftovers_ReapsZombiesWithoutCountingThem(t *testing.T) {
	if inOwnProcess(t) {
		if err := AdoptOrphans(); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("sh", "-c", "sleep 0.2 >/dev/null 2>&1 & echo $!").Output()
		if err != nil {
			t.Fatal(err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
		if err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if p, ok := readProcess(pid); ok && p.state == 'Z' {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the orphan %d never became this process's zombie", pid)
			}
		}
		if n := KillStepLeftovers(5 * time.Second); n != 0 {
			t.Errorf("KillStepLeftovers counted %d processes ended, want 0", n)
		}
		if _, ok := readProcess(pid); ok {
			t.Errorf("the zombie %d was not reaped", pid)
		}
	}
}

// inOwnProcess runs the calling test again in a process of its own and
// fails it if it fails there; it reports true in that process, where the
// test does its work (adopting orphans is process-wide).
func inOwnProcess(t *testing.T) bool {
	const env = "AGENTFORGE_TEST_OWN_PROCESS"
	if os.Getenv(env) == t.Name() {
		return true
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v")
	cmd.Env = append(os.Environ(), env+"="+t.Name())
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS") {
		t.Fatalf("in a process of its own: %v\n%s", err, out)
	}
	return false
}
