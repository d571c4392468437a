package builder

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// AdoptOrphans makes this process the parent of its descendants that lose
// theirs (prctl PR_SET_CHILD_SUBREAPER), so that KillStepLeftovers can
// end them. A RUN step runs with chroot isolation, which has no PID namespace:
// when the step is stopped (Ctrl-C, a Jenkins abort), buildah kills the
// step's own process, and whatever that one started (a sleep under sh,
// CPython's make and its compilers) would go on running under init, out
// of reach: Jenkins finds a build's processes by an environment variable
// that a RUN step's environment does not carry. Call it once, early, in a
// program's main process; it is process-wide.
func AdoptOrphans() error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("become the subreaper of build steps' processes: %w", err)
	}
	return nil
}

// KillStepLeftovers kills and reaps the children of this process that run
// in another root directory than its own: the processes chroot-isolated
// RUN steps left behind, which AdoptOrphans made its children, and what
// those leave when they are killed. Other children are left alone:
// conmon (whose cleanup removes a pod run's container), rootless podman's
// pause process, a helper the caller started. Those that have ended are
// reaped. It waits at most wait for the killed ones to end (a process in
// uninterruptible sleep, on a hung file system, never does), and reports
// how many it ended. Call it once every step has returned.
func KillStepLeftovers(wait time.Duration) int {
	self, err := os.Stat("/proc/self/root")
	if err != nil {
		return 0
	}
	deadline := time.Now().Add(wait)
	ended := 0
	// Killing one adopts its children: go round until none is left.
	for range 100 {
		var killed []int
		for _, p := range children(os.Getpid()) {
			if p.state == 'Z' {
				// Ended already (a step's daemon that stopped, a
				// conmon): only reaped.
				unix.Wait4(p.pid, nil, unix.WNOHANG, nil)
				continue
			}
			if root, err := os.Stat("/proc/" + strconv.Itoa(p.pid) + "/root"); err != nil || os.SameFile(root, self) {
				continue
			}
			if unix.Kill(p.pid, unix.SIGKILL) == nil {
				killed = append(killed, p.pid)
			}
		}
		if len(killed) == 0 {
			break
		}
		for _, pid := range killed {
			for {
				if got, err := unix.Wait4(pid, nil, unix.WNOHANG, nil); got == pid {
					ended++
					break
				} else if err != nil || time.Now().After(deadline) {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		if time.Now().After(deadline) {
			break
		}
	}
	return ended
}

// process is a process as /proc/PID/stat describes it.
type process struct {
	pid, ppid int
	state     byte // R, S, D, Z (zombie), ...
}

// children lists the processes whose parent is ppid, from /proc.
func children(ppid int) []process {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []process
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, ok := readProcess(pid); ok && p.ppid == ppid {
			out = append(out, p)
		}
	}
	return out
}

// readProcess reads /proc/PID/stat: "PID (COMM) STATE PPID ...", where
// COMM may hold spaces and parentheses.
func readProcess(pid int) (process, bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return process{}, false
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return process{}, false
	}
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 2 || len(fields[0]) != 1 {
		return process{}, false
	}
	ppid, err := strconv.Atoi(fields[1])
	return process{pid: pid, ppid: ppid, state: fields[0][0]}, err == nil
}
