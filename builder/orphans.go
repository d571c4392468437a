package builder

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// AdoptOrphans makes this process the parent of its descendants that lose
// theirs (prctl PR_SET_CHILD_SUBREAPER), so that KillChildren can end
// them. A RUN step runs with chroot isolation, which has no PID namespace:
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

// KillChildren kills and reaps every child process this one still has,
// and the children those leave behind, and reports how many it ended.
// Call it as the program ends, once every step has returned: with
// AdoptOrphans, what is left then is what stopped RUN steps (or daemons
// they started) left running.
func KillChildren() int {
	ended := 0
	// Killing one adopts its children: go round until none is left.
	for range 100 {
		pids := children(os.Getpid())
		if len(pids) == 0 {
			break
		}
		for _, p := range pids {
			unix.Kill(p.pid, unix.SIGKILL)
		}
		for _, p := range pids {
			// A zombie had ended already; it is only reaped.
			if _, err := unix.Wait4(p.pid, nil, 0, nil); err == nil && p.state != 'Z' {
				ended++
			}
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
