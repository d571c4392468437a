package release

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/jenkins"
)

// Everything a release file can get wrong is found when it is loaded,
// before anything is built, as bad input naming FILE:LINE (a typo used to
// surface only at the publish stage, and an empty smoke command made the
// chroot helper panic after the build).
func TestParseFile_BadInputNamesTheLine(t *testing.T) {
	const ok = "destinations:\n  - registry.example/agents/x\n"
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"unknown key", ok + "verfy: full\n", "release.yaml:3: "},
		{"verify typo", ok + "verify: ful\n", `release.yaml:3: verify "ful"`},
		{"empty smoke command", ok + "smoke:\n  - [python3, --version]\n  - []\n", "release.yaml:5: smoke[1]: an empty command"},
		{"smoke command with an empty program", ok + "smoke:\n  - ['', x]\n", "release.yaml:4: smoke[0]"},
		{"no destinations", "verify: full\n", "release.yaml:1: destinations"},
		{"bad destination", "destinations:\n  - registry.example/agents/x\n  - 'Not A/Repo'\n", "release.yaml:3: destinations[1]"},
		{"bare destination", "destinations:\n  - agents/x\n", "release.yaml:2: destinations[0]"},
		{"bad platform", ok + "platforms: [linux/amd64, linux]\n", "release.yaml:3: "},
		{"bad source mirror", ok + "sourceMirrors: [https://a.example/]\n", "release.yaml:3: "},
		{"jenkins destination out of range", ok + "jenkins:\n  destination: 1\n", "release.yaml:4: jenkins.destination 1"},
		{"jenkins template with spaces", ok + "jenkins:\n  template: ' agent '\n", "release.yaml:4: jenkins:"},
		{"jenkins instance cap over a Java int", ok + "jenkins:\n  instanceCap: 3000000000\n", "release.yaml:4: jenkins:"},
		{"podman storage without podman", ok + "jenkins:\n  podmanStorage: /x\n", "release.yaml:4: jenkins: pod template: podman-storage goes with podman"},
		{"unknown jenkins key", ok + "jenkins:\n  label: x\n  nodeSelectors: {a: b}\n", "release.yaml:5: field nodeSelectors"},
		{"not YAML", "destinations: [\n", "release.yaml:"},
		{"empty", "", "release.yaml: empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseFile("release.yaml", []byte(tc.yaml))
			if !errors.Is(err, errs.ErrInput) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want bad input containing %q", err, tc.want)
			}
		})
	}
	f, err := ParseFile("release.yaml", []byte(ok+"smoke: [[python3, --version]]\nsourceMirrors: [https://a.example/=https://b.example/]\n"))
	if err != nil || f.Definition != DefaultDefinition || len(f.SourceMirrors) != 1 || f.SourceMirrors[0].To != "https://b.example/" {
		t.Fatalf("a good file: %+v, %v", f, err)
	}
}

// The release file's jenkins section is register's template (the same
// keys), with its defaults: instanceCap unlimited when left out, podman
// true meaning privileged; a single-architecture release gets the
// kubernetes.io/arch selector, an index none. Unknown keys are refused.
func TestReleaseFile_JenkinsIsTheTemplate(t *testing.T) {
	dir := t.TempDir()
	write := func(jenkins string) string {
		f := filepath.Join(dir, "release.yaml")
		os.WriteFile(f, []byte("destinations: [registry.example/agents/python-agent]\n"+jenkins), 0o644)
		return f
	}
	cfg, err := LoadFile(write(`jenkins:
  url: https://ci.example
  template: python-agent
  label: python
  podman: true
  imagePullSecrets: [registry-pull]
  nodeSelector: {pool: ci}
  env: {PIP_INDEX_URL: "https://pypi.mirror.example/simple"}
  runAsUser: 1000
`))
	if err != nil {
		t.Fatal(err)
	}
	j := cfg.Jenkins
	if j == nil || j.URL != "https://ci.example" || j.Name != "python-agent" || j.InstanceCap != -1 || j.Podman != jenkins.PodmanPrivileged ||
		strings.Join(j.ImagePullSecrets, ",") != "registry-pull" || j.Env["PIP_INDEX_URL"] == "" || j.RunAsUser == nil || *j.RunAsUser != 1000 {
		t.Fatalf("%+v", j)
	}
	one := j.template("python-agent", []string{"linux/arm64"})
	if one.NodeSelector["kubernetes.io/arch"] != "arm64" || one.NodeSelector["pool"] != "ci" || j.NodeSelector["kubernetes.io/arch"] != "" {
		t.Errorf("one platform: %v (file's %v)", one.NodeSelector, j.NodeSelector)
	}
	if index := j.template("python-agent", []string{"linux/amd64", "linux/arm64"}); index.NodeSelector["kubernetes.io/arch"] != "" {
		t.Errorf("an index got %v", index.NodeSelector)
	}
	cfg, err = LoadFile(write("jenkins:\n  podman: unprivileged\n  instanceCap: 0\n"))
	if err != nil || cfg.Jenkins.Podman != jenkins.PodmanUnprivileged || cfg.Jenkins.InstanceCap != 0 {
		t.Fatalf("%+v %v", cfg.Jenkins, err)
	}
	if cfg, err = LoadFile(write("")); err != nil || cfg.Jenkins != nil {
		t.Fatalf("no jenkins section: %+v %v", cfg, err)
	}
	for _, bad := range []string{"jenkins:\n  image: x@sha256:00\n", "jenkins:\n  podman: rootless\n", "jenkins:\n  nodeSelectors: {a: b}\n"} {
		if _, err := LoadFile(write(bad)); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
}
