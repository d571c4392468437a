package jenkins

import (
	"testing"

	"github.com/agentforge/agentforge/jenkins/jenkinstest"
	"github.com/bndr/gojenkins"
)

// Connecting leaves gojenkins' package-level loggers alone: a library must
// not set another package's globals (gojenkins' Init points them at
// stdout, where agentforge's JSON goes).
func TestNew_LeavesGojenkinsGlobalsAlone(t *testing.T) {
	gojenkins.Info, gojenkins.Warning, gojenkins.Error = nil, nil, nil
	srv := jenkinstest.New(t, jenkinstest.Options{Users: []jenkinstest.User{admin}})
	c := connect(t, srv, "admin", token)
	if c.Version == "" {
		t.Error("no Jenkins version read")
	}
	if gojenkins.Info != nil || gojenkins.Warning != nil || gojenkins.Error != nil {
		t.Error("New set gojenkins' package loggers")
	}
}
