// Command agentforge builds, verifies, publishes and registers Jenkins agent
// container images. Run "agentforge --help" for the commands.
package main

import (
	"os"

	"github.com/containers/buildah"
)

func main() {
	// Buildah re-executes this binary for chroot runs and storage helpers;
	// this must come before anything else.
	if buildah.InitReexec() {
		return
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
