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
	"gopkg.in/yaml.v3"
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
	if out.Status != "created" || out.JenkinsVersion != "2.555.1" || out.Template.Image != image || out.Template.ID == "" || out.Template.Label != "python" {
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

// A Jenkins URL carrying credentials is refused without showing them, also
// when it does not parse (a bad escape in the password).
func TestCLI_RegisterURLWithCredentialsIsNotShown(t *testing.T) {
	image := "registry.example/agents/python@sha256:" + strings.Repeat("ab", 32)
	t.Setenv("JENKINS_API_TOKEN", testToken)
	for _, u := range []string{"https://ci-bot:s3cretT0ken@ci.example", "https://ci-bot:s3cret%zzT0ken@ci.example", "ftp://ci-bot:s3cretT0ken@ci.example"} {
		code, stdout, stderr := cli(t, "register", "--jenkins-url", u, "--jenkins-user", "ci-bot", "--image", image, "-o", "json")
		if code != 2 || strings.Contains(stdout+stderr, "s3cret") {
			t.Errorf("%s: exit %d (want 2)\nstdout: %s\nstderr: %s", u, code, stdout, stderr)
		}
	}
}

// Where configuration-as-code's YAML declares jenkins.clouds, a template
// added by script would be gone at the next reload: register refuses
// (exit 4) and names the JCasC route; --script-console goes ahead, warning.
func TestCLI_RegisterRefusedWhereCascManagesClouds(t *testing.T) {
	casc := filepath.Join(t.TempDir(), "jenkins.yaml")
	os.WriteFile(casc, []byte("jenkins:\n  clouds:\n    - kubernetes:\n        name: kubernetes\n"), 0o644)
	srv := jenkinstest.New(t, jenkinstest.Options{
		Users:    []jenkinstest.User{{Name: "ci-bot", Token: testToken, Admin: true}},
		State:    jenkinstest.State{Clouds: []jenkinstest.Cloud{{Kind: "kubernetes", Name: "kubernetes"}}},
		CascFile: casc,
	})
	t.Setenv("JENKINS_API_TOKEN", testToken)
	image := "registry.example/agents/python@sha256:" + strings.Repeat("cd", 32)
	code, _, stderr := cli(t, "register", "--jenkins-url", srv.URL, "--jenkins-user", "ci-bot", "--image", image)
	if code != 4 || !strings.Contains(stderr, "casc-managed") || !strings.Contains(stderr, casc) || !strings.Contains(stderr, "--casc-file FILE --casc-reload") || !strings.Contains(stderr, "--script-console") {
		t.Fatalf("exit %d, want 4 naming the JCasC route:\n%s", code, stderr)
	}
	if srv.State().Saves != 0 {
		t.Fatal("a refused registration saved")
	}
	code, stdout, stderr := cli(t, "register", "--jenkins-url", srv.URL, "--jenkins-user", "ci-bot", "--image", image, "--script-console")
	if code != 0 || !strings.Contains(stdout, "created") || !strings.Contains(stdout, "warning: configuration-as-code manages the clouds") {
		t.Fatalf("--script-console: exit %d\n%s%s", code, stdout, stderr)
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

// A --timeout of zero or less leaves no time for Jenkins at all: it is
// bad input (exit 2, the flag named), not "Jenkins did not answer" (exit 1).
func TestCLI_RegisterTimeoutNotPositive(t *testing.T) {
	t.Setenv("JENKINS_API_TOKEN", testToken)
	image := "registry.example/agents/python@sha256:" + strings.Repeat("ab", 32)
	for _, d := range []string{"0s", "-5s"} {
		code, _, stderr := cli(t, "register", "--jenkins-url", "http://127.0.0.1:1", "--jenkins-user", "ci-bot", "--image", image, "--timeout", d)
		if code != 2 || !strings.Contains(stderr, "--timeout") || strings.Contains(stderr, "did not answer") {
			t.Errorf("--timeout %s: exit %d (want 2, naming --timeout)\n%s", d, code, stderr)
		}
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
		{"--podman", "rootless"},
		{"--podman=rootless"},
	} {
		code, _, stderr := cli(t, append([]string{"register", "--casc", "--image", image}, args...)...)
		if code != 2 {
			t.Errorf("%v: exit %d (want 2)\n%s", args, code, stderr)
		}
	}
}

const testImage = "registry.example/agents/python@sha256:abababababababababababababababababababababababababababababababab"

// Every new flag, on the emulator: what Jenkins stores (through the
// plugin's setters) and what register reports, then unchanged on a rerun.
func TestCLI_RegisterNewFlags(t *testing.T) {
	srv := jenkinsEmulator(t)
	t.Setenv("JENKINS_API_TOKEN", testToken)
	podYAML := filepath.Join(t.TempDir(), "pod.yaml")
	os.WriteFile(podYAML, []byte("spec:\n  priorityClassName: ci-batch\n"), 0o644)
	args := []string{"register", "--jenkins-url", srv.URL, "--jenkins-user", "ci-bot", "--image", testImage, "-o", "json",
		"--image-pull-secret", "upstream-pull", "--image-pull-secret", "mirror-pull",
		"--node-selector", "kubernetes.io/arch=arm64", "--node-selector", "pool=ci",
		"--env", "PIP_INDEX_URL=https://pypi.mirror.example/simple", "--env", "EMPTY=",
		"--yaml-file", podYAML, "--yaml-merge", "merge", "--inherit-from", "base",
		"--run-as-user", "1000", "--run-as-group", "1000", "--fs-group", "1000",
		"--podman", "unprivileged", "--user-namespace"}
	for _, want := range []string{"created", "unchanged"} {
		code, stdout, stderr := cli(t, args...)
		var out struct {
			Status   string
			Template struct {
				ImagePullSecrets  []string
				NodeSelector, Env map[string]string
				YAML              string
				YAMLMergeStrategy string
				InheritFrom       string
				RunAsUser         int64
				Privileged        bool
				EmptyDirs         []string
			}
		}
		if code != 0 || json.Unmarshal([]byte(stdout), &out) != nil || out.Status != want {
			t.Fatalf("want %s: exit %d\n%s%s", want, code, stdout, stderr)
		}
		tm := out.Template
		if strings.Join(tm.ImagePullSecrets, ",") != "mirror-pull,upstream-pull" || tm.NodeSelector["pool"] != "ci" || tm.Env["PIP_INDEX_URL"] == "" ||
			tm.YAMLMergeStrategy != "merge" || tm.InheritFrom != "base" || tm.RunAsUser != 1000 || tm.Privileged || len(tm.EmptyDirs) != 1 {
			t.Errorf("%s: template %+v", want, tm)
		}
		for _, y := range []string{"priorityClassName: ci-batch", "fsGroup: 1000", "hostUsers: false", "type: Unconfined", "- SETUID"} {
			if !strings.Contains(tm.YAML, y) {
				t.Errorf("the pod YAML lacks %s:\n%s", y, tm.YAML)
			}
		}
	}
	st := srv.State().Clouds[0].Templates[0]
	if st["nodeSelector"] != "kubernetes.io/arch=arm64,pool=ci" || st["runAsGroup"] != "1000" || st["yamlMergeStrategy"] != "merge" {
		t.Errorf("stored: %v", st)
	}
	// --arch: the per-architecture template next to the plain one.
	code, stdout, stderr := cli(t, "register", "--jenkins-url", srv.URL, "--jenkins-user", "ci-bot", "--image", testImage, "--arch", "arm64", "-o", "json")
	var arm struct {
		Status   string
		Template struct {
			Name, Label  string
			NodeSelector map[string]string
		}
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &arm) != nil || arm.Status != "created" || arm.Template.Name != "python-agent-arm64" ||
		arm.Template.Label != "python-arm64" || arm.Template.NodeSelector["kubernetes.io/arch"] != "arm64" {
		t.Fatalf("--arch: exit %d\n%s%s", code, stdout, stderr)
	}
}

// Bad values of the new flags exit 2 naming the flag, before Jenkins is
// asked (no server, no token needed).
func TestCLI_RegisterNewFlagsBadInput(t *testing.T) {
	t.Setenv("JENKINS_API_TOKEN", "")
	file := filepath.Join(t.TempDir(), "jenkins.yaml")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--casc", "--node-selector", "kubernetes.io/arch"}, "--node-selector"},
		{[]string{"--casc", "--node-selector", "a=b", "--node-selector", "a=c"}, "given twice"},
		{[]string{"--casc", "--node-selector", "arch=arm 64"}, "--node-selector"},
		{[]string{"--casc", "--env", "=x"}, "--env"},
		{[]string{"--casc", "--env", "1X=y"}, "--env"},
		{[]string{"--casc", "--image-pull-secret", "Bad_Name"}, "--image-pull-secret"},
		{[]string{"--casc", "--yaml-file", "/nonexistent/pod.yaml"}, "--yaml-file"},
		{[]string{"--casc", "--yaml-merge", "replace"}, "--yaml-merge"},
		{[]string{"--casc", "--run-as-user", "abc"}, "run-as-user"},
		{[]string{"--casc", "--run-as-user", "-1"}, "--run-as-user"},
		{[]string{"--casc", "--fs-group", "3000000000"}, "--fs-group"},
		{[]string{"--casc", "--podman", "--user-namespace"}, "--user-namespace"},
		{[]string{"--casc", "--arch", "ARM/64"}, "--arch"},
		{[]string{"--casc", "--helm-values"}, "pick one"},
		{[]string{"--casc-reload"}, "--casc-reload goes with --casc-file"},
		{[]string{"--casc-file", file, "--script-console"}, "--script-console"},
		{[]string{"--casc-file", file, "--remove"}, "--remove"},
		{[]string{"--node", "python-1", "--env", "A=b"}, "--env"},
		{[]string{"--casc", "unprivileged"}, "unknown command"},
	} {
		code, stdout, stderr := cli(t, append([]string{"register", "--image", testImage}, tc.args...)...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d (want 2 naming %s)\n%s%s", tc.args, code, tc.want, stdout, stderr)
		}
	}
	if _, err := os.Stat(file); err == nil {
		t.Error("a refused run wrote the JCasC file")
	}
}

// --casc prints every field as configuration-as-code YAML, with the
// plugin's symbols (envVar, emptyDirVolume, merge).
func TestCLI_RegisterCascCarriesEveryField(t *testing.T) {
	code, stdout, stderr := cli(t, "register", "--casc", "--image", testImage, "--namespace", "ci", "--service-account", "agents",
		"--idle-minutes", "5", "--instance-cap", "10", "--cpu-request", "500m", "--memory-request", "1Gi", "--cpu-limit", "2", "--memory-limit", "2Gi",
		"--node-usage-mode", "NORMAL", "--image-pull-secret", "pull", "--node-selector", "pool=ci", "--env", "A=b", "--yaml-merge", "merge",
		"--inherit-from", "base", "--run-as-user", "1000", "--run-as-group", "1001", "--fs-group", "1002", "--podman=unprivileged", "--user-namespace")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	var doc struct {
		Jenkins struct {
			Clouds []struct {
				Kubernetes struct {
					Name      string
					Templates []map[string]any
				}
			}
		}
	}
	if err := yaml.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	tm := doc.Jenkins.Clouds[0].Kubernetes.Templates[0]
	for _, k := range []string{"id", "name", "label", "namespace", "serviceAccount", "idleMinutes", "instanceCap", "nodeUsageMode", "imagePullSecrets",
		"nodeSelector", "yaml", "yamlMergeStrategy", "inheritFrom", "runAsUser", "runAsGroup", "volumes", "containers", "annotations"} {
		if _, ok := tm[k]; !ok {
			t.Errorf("no %s in:\n%s", k, stdout)
		}
	}
	jnlp := tm["containers"].([]any)[0].(map[string]any)
	for _, k := range []string{"image", "workingDir", "resourceRequestCpu", "resourceRequestMemory", "resourceLimitCpu", "resourceLimitMemory", "envVars"} {
		if _, ok := jnlp[k]; !ok {
			t.Errorf("no jnlp %s in:\n%s", k, stdout)
		}
	}
	for _, want := range []string{"- envVar:", "- emptyDirVolume:", `yamlMergeStrategy: "merge"`, "fsGroup: 1002", "hostUsers: false", "nodeUsageMode: NORMAL"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("no %s in:\n%s", want, stdout)
		}
	}
}

// The configuration-as-code route from the command line: a file that does
// not declare the cloud refused (exit 2, the file as it was); the file
// that does merged (no Jenkins needed), then merged and reloaded with a
// read-back; a rerun leaves the file byte for byte. The Helm form prints
// and merges.
func TestCLI_RegisterCascFile(t *testing.T) {
	dir := t.TempDir()
	casc := filepath.Join(dir, "jenkins.yaml")
	noCloud := "jenkins:\n  systemMessage: \"hi\"\n"
	os.WriteFile(casc, []byte(noCloud), 0o644)
	t.Setenv("JENKINS_API_TOKEN", "")
	code, stdout, stderr := cli(t, "register", "--casc-file", casc, "--image", testImage)
	if data, _ := os.ReadFile(casc); code != 2 || !strings.Contains(stderr, casc) || !strings.Contains(stderr, "declares that cloud") || !strings.Contains(stderr, "--cloud") || string(data) != noCloud {
		t.Fatalf("a file without the cloud: exit %d, want 2\n%s%s\n%s", code, stdout, stderr, data)
	}
	os.WriteFile(casc, []byte(noCloud+"  clouds:\n    - kubernetes:\n        name: \"kubernetes\"\n"), 0o644)
	code, stdout, stderr = cli(t, "register", "--casc-file", casc, "--image", testImage, "--env", "A=b", "-o", "json")
	var fileOnly struct{ Status, File string }
	if code != 0 || json.Unmarshal([]byte(stdout), &fileOnly) != nil || fileOnly.Status != "created" || fileOnly.File != casc {
		t.Fatalf("file only: exit %d\n%s%s", code, stdout, stderr)
	}
	srv := jenkinstest.New(t, jenkinstest.Options{
		Users:    []jenkinstest.User{{Name: "ci-bot", Token: testToken, Admin: true}},
		CascFile: casc,
	})
	t.Setenv("JENKINS_API_TOKEN", testToken)
	base := []string{"register", "--casc-file", casc, "--casc-reload", "--jenkins-url", srv.URL, "--jenkins-user", "ci-bot", "--image", testImage, "--env", "A=b", "--podman"}
	code, stdout, stderr = cli(t, append(base, "-o", "json")...)
	var out struct {
		Status   string
		Reloaded bool
		Template struct {
			ID         string
			Privileged bool
			Env        map[string]string
		}
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &out) != nil || out.Status != "updated" || !out.Reloaded || !out.Template.Privileged || out.Template.Env["A"] != "b" || out.Template.ID == "" {
		t.Fatalf("reload: exit %d\n%s%s", code, stdout, stderr)
	}
	first, _ := os.ReadFile(casc)
	code, stdout, stderr = cli(t, base...)
	// A rerun changes nothing: not the file, and no reload (Jenkins holds
	// the template as asked).
	if second, _ := os.ReadFile(casc); code != 0 || !strings.Contains(stdout, "unchanged") || strings.Contains(stdout, "reloaded") || string(second) != string(first) {
		t.Fatalf("rerun: exit %d\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(string(first), `systemMessage: "hi"`) || srv.CascReloads != 1 {
		t.Errorf("reloads %d, file:\n%s", srv.CascReloads, first)
	}
	for _, s := range []string{stdout, stderr} {
		if strings.Contains(s, testToken) {
			t.Fatal("the token reached the output")
		}
	}

	code, stdout, _ = cli(t, "register", "--helm-values", "--image", testImage, "-o", "json")
	var helm struct{ HelmValues string }
	if code != 0 || json.Unmarshal([]byte(stdout), &helm) != nil || !strings.Contains(helm.HelmValues, "podTemplates:\n    python-agent: |") {
		t.Fatalf("--helm-values: exit %d\n%s", code, stdout)
	}
	values := filepath.Join(dir, "values.yaml")
	code, stdout, stderr = cli(t, "register", "--helm-values-file", values, "--image", testImage)
	if data, _ := os.ReadFile(values); code != 0 || !strings.Contains(stdout, "created") || !strings.Contains(string(data), "podTemplates:") {
		t.Fatalf("--helm-values-file: exit %d\n%s%s\n%s", code, stdout, stderr, data)
	}
}
