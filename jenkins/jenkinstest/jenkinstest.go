// Package jenkinstest starts the Jenkins emulator (package emulator) for a
// test: New gives a running emulator that is closed when the test ends. The
// types are the emulator's, under the names tests have always used.
package jenkinstest

import (
	"testing"

	"github.com/agentforge/agentforge/jenkins/emulator"
)

type (
	// Server is a running emulator.
	Server = emulator.Server
	// Options configure the emulator.
	Options = emulator.Options
	// User is a Jenkins account.
	User = emulator.User
	// State is the Groovy stubs' persisted state.
	State = emulator.State
	// Cloud is a cloud in State.
	Cloud = emulator.Cloud
)

// New starts an emulator with its state in the test's temporary directory;
// it is closed when the test ends. It fails the test when Groovy is not
// installed (apt-get install groovy default-jre-headless).
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	if testing.Short() {
		t.Skip("runs Groovy: not in the short tier (make test runs it)")
	}
	s, err := emulator.Start(opts, t.TempDir())
	if err != nil {
		t.Fatalf("jenkinstest: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}
