package main

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentforge/agentforge/jenkins/jenkinstest"
)

const testToken = "0123456789abcdef-secret-token"

func jenkinsEmulator(t *testing.T) *jenkinstest.Server {
	return jenkinstest.New(t, jenkinstest.Options{
		Users: []jenkinstest.User{{Name: "ci-bot", Token: testToken, Admin: true}, {Name: "viewer", Token: "viewer-" + testToken}},
		State: jenkinstest.State{Clouds: []jenkinstest.Cloud{{Kind: "kubernetes", Name: "kubernetes"}}},
	})
}

func TestCLI_Register(t *testing.T) {
	srv := jenkinsEmulator(t)
	image := "registry.example/agents/python@sha256:" + strings.Repeat("ab", 32)
	base := []string{"register", "--jenkins-url", srv.URL, "--jenkins-user", "ci-bot", "--image", image, "--log-level", "debug"}
	t.Setenv("JENKINS_API_TOKEN", testToken)

	code, stdout, stderr := cli(t, append(base, "-o", "json")...)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	var out struct {
		Status         string `json:"status"`
		JenkinsVersion string `json:"jenkinsVersion"`
		Template       struct {
			ID, Name, Label, Image string
		} `json:"template"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	if out.Status != "created" || out.JenkinsVersion != "2.479.3" || out.Template.Image != image || out.Template.ID == "" || out.Template.Label != "python" {
		t.Fatalf("%s", stdout)
	}
	code, stdout2, stderr2 := cli(t, base...)
	if code != 0 || !strings.Contains(stdout2, "unchanged") {
		t.Fatalf("rerun: exit %d\n%s%s", code, stdout2, stderr2)
	}
	for _, s := range []string{stdout, stderr, stdout2, stderr2} {
		if strings.Contains(s, testToken) {
			t.Fatal("the token reached the output")
		}
	}
}

func TestCLI_RegisterExitCodes(t *testing.T) {
	srv := jenkinsEmulator(t)
	image := "registry.example/agents/python@sha256:" + strings.Repeat("ab", 32)
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte("wrong-"+testToken+"\n"), 0o600)
	viewerFile := filepath.Join(t.TempDir(), "viewer")
	os.WriteFile(viewerFile, []byte("viewer-"+testToken), 0o600)
	goodFile := filepath.Join(t.TempDir(), "good")
	os.WriteFile(goodFile, []byte(testToken), 0o600)
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"wrong token", []string{"--jenkins-user", "ci-bot", "--jenkins-token-file", tokenFile}, 4, "unauthorized (HTTP 401)"},
		{"no permission", []string{"--jenkins-user", "viewer", "--jenkins-token-file", viewerFile}, 4, "forbidden (HTTP 403)"},
		{"no such cloud", []string{"--jenkins-user", "ci-bot", "--jenkins-token-file", goodFile, "--cloud", "prod"}, 4, "no-such-cloud"},
		{"no token", []string{"--jenkins-user", "ci-bot"}, 2, "JENKINS_API_TOKEN"},
		{"tag only", []string{"--jenkins-user", "ci-bot", "--jenkins-token-file", goodFile, "--image", "registry.example/agents/python:1"}, 2, "not pinned by digest"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("JENKINS_API_TOKEN", "")
			args := append([]string{"register", "--jenkins-url", srv.URL, "--image", image, "--log-level", "debug", "-o", "json"}, tc.args...)
			code, stdout, stderr := cli(t, args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d (want %d), stderr:\n%s", code, tc.code, stderr)
			}
			if strings.Contains(stdout+stderr, testToken) {
				t.Fatal("the token reached the output")
			}
		})
	}
}

func TestCLI_RegisterWarnsUnderCasc(t *testing.T) {
	srv := jenkinstest.New(t, jenkinstest.Options{
		Users: []jenkinstest.User{{Name: "ci-bot", Token: testToken, Admin: true}},
		State: jenkinstest.State{Clouds: []jenkinstest.Cloud{{Kind: "kubernetes", Name: "kubernetes"}}},
		Casc:  true,
	})
	t.Setenv("JENKINS_API_TOKEN", testToken)
	image := "registry.example/agents/python@sha256:" + strings.Repeat("cd", 32)
	code, _, stderr := cli(t, "register", "--jenkins-url", srv.URL, "--jenkins-user", "ci-bot", "--image", image)
	if code != 0 || !strings.Contains(stderr, "configuration-as-code plugin") || !strings.Contains(stderr, "--casc") {
		t.Fatalf("exit %d, want a JCasC warning:\n%s", code, stderr)
	}
}

func TestCLI_RegisterTimeout(t *testing.T) {
	srv := jenkinstest.New(t, jenkinstest.Options{
		Users:       []jenkinstest.User{{Name: "ci-bot", Token: testToken, Admin: true}},
		State:       jenkinstest.State{Clouds: []jenkinstest.Cloud{{Kind: "kubernetes", Name: "kubernetes"}}},
		ScriptDelay: 5 * time.Second,
	})
	t.Setenv("JENKINS_API_TOKEN", testToken)
	image := "registry.example/agents/python@sha256:" + strings.Repeat("ab", 32)
	start := time.Now()
	code, _, stderr := cli(t, "register", "--jenkins-url", srv.URL, "--jenkins-user", "ci-bot", "--image", image, "--timeout", "1s")
	if code != 1 || !strings.Contains(stderr, "did not answer within --timeout 1s") {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("--timeout 1s took %s", d)
	}
	if srv.State().Saves != 0 {
		t.Error("a timed-out registration saved")
	}
}

// 3000000000 does not fit a Java int: refused (exit 2, the flag named)
// before Jenkins is asked, and in --casc output too.
func TestCLI_RegisterIntFlagsBounded(t *testing.T) {
	srv := jenkinsEmulator(t)
	t.Setenv("JENKINS_API_TOKEN", testToken)
	image := "registry.example/agents/python@sha256:" + strings.Repeat("ab", 32)
	for _, flag := range []string{"--instance-cap", "--idle-minutes"} {
		for _, mode := range [][]string{{"--jenkins-url", srv.URL, "--jenkins-user", "ci-bot"}, {"--casc"}} {
			args := append([]string{"register", "--image", image, flag, "3000000000"}, mode...)
			code, _, stderr := cli(t, args...)
			if code != 2 || !strings.Contains(stderr, strings.TrimPrefix(flag, "--")+" 3000000000") || !strings.Contains(stderr, "check "+flag) {
				t.Errorf("%v: exit %d (want 2), stderr:\n%s", args, code, stderr)
			}
		}
	}
	if n := len(srv.Scripts); n != 0 {
		t.Errorf("%d scripts reached Jenkins", n)
	}
}

func TestCLI_RegisterKubernetesPluginTooOld(t *testing.T) {
	srv := jenkinstest.New(t, jenkinstest.Options{
		Users:                   []jenkinstest.User{{Name: "ci-bot", Token: testToken, Admin: true}},
		State:                   jenkinstest.State{Clouds: []jenkinstest.Cloud{{Kind: "kubernetes", Name: "kubernetes"}}},
		KubernetesPluginVersion: "1.26.4",
	})
	t.Setenv("JENKINS_API_TOKEN", testToken)
	image := "registry.example/agents/python@sha256:" + strings.Repeat("ab", 32)
	code, _, stderr := cli(t, "register", "--jenkins-url", srv.URL, "--jenkins-user", "ci-bot", "--image", image)
	if code != 4 || !strings.Contains(stderr, "plugin-too-old") || !strings.Contains(stderr, "1.27.2") {
		t.Fatalf("exit %d (want 4)\n%s", code, stderr)
	}
}

// An answer that echoes the request (a proxy, a verbose error page) must
// not bring the credentials to stdout or stderr in any encoding.
func TestCLI_RegisterScrubsEchoedCredentials(t *testing.T) {
	srv := jenkinstest.New(t, jenkinstest.Options{
		Users:       []jenkinstest.User{{Name: "ci-bot", Token: testToken, Admin: true}},
		State:       jenkinstest.State{Clouds: []jenkinstest.Cloud{{Kind: "kubernetes", Name: "kubernetes"}}},
		EchoHeaders: 200,
	})
	t.Setenv("JENKINS_API_TOKEN", testToken)
	image := "registry.example/agents/python@sha256:" + strings.Repeat("ab", 32)
	for _, output := range []string{"text", "json"} {
		code, stdout, stderr := cli(t, "register", "--jenkins-url", srv.URL, "--jenkins-user", "ci-bot", "--image", image, "-o", output, "--log-level", "debug")
		if code != 1 || !strings.Contains(stderr, "Authorization: *****") {
			t.Fatalf("exit %d (want 1), the echoed answer should be quoted scrubbed:\n%s", code, stderr)
		}
		secrets := append([]string{testToken, base64.StdEncoding.EncodeToString([]byte("ci-bot:" + testToken))}, srv.Issued()...)
		for _, s := range secrets {
			if strings.Contains(stdout, s) || strings.Contains(stderr, s) {
				t.Errorf("-o %s: %q leaked:\nstdout: %s\nstderr: %s", output, s, stdout, stderr)
			}
		}
	}
}

func TestCLI_RegisterPodman(t *testing.T) {
	srv := jenkinsEmulator(t)
	t.Setenv("JENKINS_API_TOKEN", testToken)
	image := "registry.example/agents/python@sha256:" + strings.Repeat("ab", 32)
	base := []string{"register", "--jenkins-url", srv.URL, "--jenkins-user", "ci-bot", "--image", image, "--podman", "-o", "json"}
	for _, want := range []string{"created", "unchanged"} {
		code, stdout, stderr := cli(t, base...)
		var out struct {
			Status   string
			Template struct {
				Privileged bool
				EmptyDirs  []string
			}
		}
		if code != 0 || json.Unmarshal([]byte(stdout), &out) != nil || out.Status != want || !out.Template.Privileged ||
			strings.Join(out.Template.EmptyDirs, ",") != "/home/jenkins/.local/share/containers" {
			t.Fatalf("want %s: exit %d\n%s%s", want, code, stdout, stderr)
		}
	}
	code, stdout, stderr := cli(t, "register", "--casc", "--image", image, "--podman", "--podman-storage", "/var/lib/agent-containers")
	if code != 0 || !strings.Contains(stdout, `mountPath: "/var/lib/agent-containers"`) || !strings.Contains(stdout, "privileged: true") {
		t.Fatalf("casc: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, args := range [][]string{
		{"--podman-storage", "/x"},
		{"--podman", "--podman-storage", "relative/containers"},
		{"--podman", "--node", "python-1"},
	} {
		code, _, stderr := cli(t, append([]string{"register", "--casc", "--image", image}, args...)...)
		if code != 2 {
			t.Errorf("%v: exit %d (want 2)\n%s", args, code, stderr)
		}
	}
}
