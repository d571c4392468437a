package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// The builder's own pod template: the stock inbound agent as jnlp and the
// agentforge container from images/agentforge/pod.yaml (privileged, root,
// containers-storage on an emptyDir) in the template's raw YAML, stored as
// given by the plugin's setters (Groovy against the stubs), and unchanged on
// a second run.
func TestCLI_RegisterBuilderTemplate(t *testing.T) {
	srv := jenkinsEmulator(t)
	t.Setenv("JENKINS_API_TOKEN", testToken)
	inbound := "docker.io/jenkins/inbound-agent@sha256:" + strings.Repeat("cd", 32)
	args := []string{"register", "--jenkins-url", srv.URL, "--jenkins-user", "ci-bot", "-o", "json",
		"--template", "agentforge-builder", "--label", "agentforge", "--image", inbound,
		"--yaml-file", "../../images/agentforge/pod.yaml"}
	for _, want := range []string{"created", "unchanged"} {
		code, stdout, stderr := cli(t, args...)
		var out struct {
			Status   string
			Template struct{ Name, Label, Image, YAML string }
		}
		if code != 0 || json.Unmarshal([]byte(stdout), &out) != nil || out.Status != want {
			t.Fatalf("want %s: exit %d\n%s%s", want, code, stdout, stderr)
		}
		if out.Template.Image != inbound || out.Template.Label != "agentforge" {
			t.Errorf("template %+v", out.Template)
		}
		for _, y := range []string{"name: agentforge", "@sha256:", "privileged: true", "runAsUser: 0", "mountPath: /var/lib/containers", "emptyDir: {}"} {
			if !strings.Contains(out.Template.YAML, y) {
				t.Errorf("%s: the template's YAML lacks %q:\n%s", want, y, out.Template.YAML)
			}
		}
	}
	st := srv.State().Clouds[0].Templates[0]
	if st["name"] != "agentforge-builder" || !strings.Contains(fmt.Sprint(st["yaml"]), "mountPath: /var/lib/containers") {
		t.Errorf("stored: %v", st)
	}
}
