// Command agentforge builds, verifies, publishes and registers Jenkins agent
// container images. Run "agentforge --help" for the commands.
package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/agentforge/agentforge/builder"
	"github.com/containers/buildah"
	"github.com/sirupsen/logrus"
)

func main() {
	// Buildah re-executes this binary for chroot runs and storage helpers;
	// this must come before anything else.
	if buildah.InitReexec() {
		return
	}
	os.Exit(runProcess(os.Args[1:], os.Stdout, os.Stderr))
}

// adopted says this process adopts its descendants' orphans (set once, by
// runProcess, before anything starts), so that they can be ended with it.
var adopted bool

// runProcess runs agentforge as a process of its own: it adopts the
// processes a stopped RUN step leaves behind, and run ends them when the
// command is done (see builder.AdoptOrphans). Only the process's main
// function calls it; a test calling run shares its process with others.
func runProcess(args []string, stdout, stderr io.Writer) int {
	adopted = builder.AdoptOrphans() == nil
	return run(args, stdout, stderr)
}

// endAdopted ends what build steps left running, if this process adopted
// it, and says so.
func endAdopted(stderr io.Writer, jsonLogs bool) {
	if !adopted {
		return
	}
	switch n := builder.KillStepLeftovers(5 * time.Second); n {
	case 0:
	case 1:
		ownLine(stderr, jsonLogs, logrus.WarnLevel, "ended a process that a stopped build step left running", nil)
	default:
		ownLine(stderr, jsonLogs, logrus.WarnLevel, fmt.Sprintf("ended %d processes that stopped build steps left running", n), nil)
	}
}
