package jenkins

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// step is one Pipeline step the repository's Jenkinsfile calls, as
// testdata/jenkins/pipeline.groovy records it.
type step struct {
	Path string `json:"path"`
	Step string `json:"step"`
	Args []any  `json:"args"`
}

func (s step) arg0() string {
	if len(s.Args) == 0 {
		return ""
	}
	str, _ := s.Args[0].(string)
	return str
}

// The Jenkinsfile compiles with Groovy 2.4 (the version Jenkins bundles)
// and, run against a recording stand-in of the Pipeline DSL, does what the
// README says: a parallel build per architecture on agents labelled for
// it, publishing by digest; an index of both on the upstream and the
// mirror, verified on both; the pod template registered at the index
// digest; a nightly trigger, on the primary branch only, that bumps
// whatever is outdated (not only CPython) and commits it to the branch or to
// one named for the change; reports archived by every stage even when it
// fails; every registry, Jenkins and git credential only through
// withCredentials, never on a command line.
func TestJenkinsfile(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Groovy: not in the short tier (make test runs it)")
	}
	steps := runJenkinsfile(t, "main", false)
	find := func(pathPart, name, contains string) []step {
		var found []step
		for _, s := range steps {
			if strings.Contains(s.Path, pathPart) && s.Step == name && strings.Contains(s.arg0(), contains) {
				found = append(found, s)
			}
		}
		return found
	}
	must := func(what, pathPart, name, contains string) step {
		t.Helper()
		f := find(pathPart, name, contains)
		if len(f) == 0 {
			t.Fatalf("%s: no %s(%q…) under %q", what, name, contains, pathPart)
		}
		return f[0]
	}

	// The nightly trigger fires on the primary branch only; releases do
	// not run concurrently (they would race for the rolling tags); old
	// builds are discarded.
	if c := must("nightly trigger", "pipeline/triggers", "cron", ""); c.arg0() != "H 3 * * *" {
		t.Errorf("cron on main: %q", c.arg0())
	}
	other := runJenkinsfile(t, "feature/x", false)
	for _, s := range other {
		if s.Step == "cron" && s.arg0() != "" {
			t.Errorf("a feature branch schedules a nightly run: %q", s.arg0())
		}
	}
	must("no concurrent builds", "pipeline/options", "disableConcurrentBuilds", "")
	must("build discarder", "pipeline/options", "buildDiscarder", "")
	// The nightly: outdated (everything pinned, not only CPython), then
	// bump and a commit pushed to this branch, or with BUMP_BRANCH to a
	// branch named for the change.
	must("outdated", "stage:Current?/steps", "sh", `$AF outdated images/python-agent --image "docker://$UPSTREAM:$v"`)
	must("bump", "stage:Current?/steps", "sh", `$AF bump images/python-agent --image "docker://$UPSTREAM:$v"`)
	push := must("bump committed", "stage:Current?", "sh", "push origin")
	if !strings.Contains(push.Path, "withCredentials") || !strings.Contains(push.arg0(), `"HEAD:refs/heads/$BUMP_TARGET"`) {
		t.Errorf("git push: %s %q", push.Path, push.arg0())
	}
	for bumpBranch, want := range map[bool]string{false: "main", true: "agentforge/bump-cpython-3.11.10-os-3-with-updates"} {
		var env map[string]any
		for _, s := range runJenkinsfile(t, "main", bumpBranch) {
			if s.Step == "env" {
				env, _ = s.Args[0].(map[string]any)
			}
		}
		if env["BUMP_TARGET"] != want || env["BUMP_MESSAGE"] != "python-agent: cpython 3.11.10, os 3 with updates" {
			t.Errorf("BUMP_BRANCH=%t: pushes to %v with %q, want %s", bumpBranch, env["BUMP_TARGET"], env["BUMP_MESSAGE"], want)
		}
	}
	// Every stage with an agent keeps its JSON reports, also when it fails.
	for _, stage := range []string{"stage:Current?", "stage:amd64", "stage:arm64", "stage:Index", "stage:Register"} {
		if a := must(stage+" keeps its reports", stage+"/post/always", "archiveArtifacts", ""); a.Args == nil {
			t.Errorf("%s: archiveArtifacts without arguments", stage)
		}
	}
	for _, arch := range []string{"amd64", "arm64"} {
		branch := "stage:Build per architecture/parallel/stage:" + arch
		if l := must(arch+" agent", branch+"/agent", "label", ""); l.arg0() != "agentforge && "+arch {
			t.Errorf("%s runs on %q", arch, l.arg0())
		}
		b := must(arch+" build", branch+"/steps", "sh", "build images/python-agent --platform linux/"+arch)
		// The registry layer cache: steps from and to $CACHE, signed
		// entries only.
		if !strings.Contains(b.Path, "withCredentials") || !strings.Contains(b.arg0(), `--cache-from "$CACHE"`) || !strings.Contains(b.arg0(), `--cache-to "$CACHE"`) ||
			!strings.Contains(b.arg0(), `--sign-key "$COSIGN_KEY"`) || !strings.Contains(b.arg0(), `--cache-verify-key "$COSIGN_PUB"`) {
			t.Errorf("%s build (layer cache, signed entries): %s %q", arch, b.Path, b.arg0())
		}
		pub := must(arch+" publish", branch+"/steps", "sh", "publish localhost/python-agent")
		// Published under its immutable build tag (the image's ID is in
		// it), with the architecture: the two never race for one tag.
		if !strings.Contains(pub.Path, "withCredentials") || !strings.Contains(pub.arg0(), "--tag 0.6.0-rc0-python3.11.9-0123456789ab-"+arch) ||
			!strings.Contains(pub.arg0(), `--sign-key "$COSIGN_KEY"`) || !strings.Contains(pub.arg0(), "--sbom sbom-"+arch+".spdx.json") {
			t.Errorf("%s publish (signed, SBOM attested): %s %q", arch, pub.Path, pub.arg0())
		}
	}
	idx := must("index", "stage:Index", "sh", "$AF index")
	// The index: an immutable build tag and the definition's rolling tags,
	// which move on purpose.
	if !strings.Contains(idx.Path, "withCredentials") || !strings.Contains(idx.arg0(), `--to "$UPSTREAM" --to "$MIRROR"`) ||
		!strings.Contains(idx.arg0(), `--tag "$BUILD_TAG" $ROLLING`) {
		t.Errorf("index: %s %q", idx.Path, idx.arg0())
	}
	if !strings.Contains(idx.arg0(), `--sign-key "$COSIGN_KEY"`) {
		t.Errorf("index not signed: %q", idx.arg0())
	}
	must("verify upstream", "stage:Index", "sh", `verify "docker://$UPSTREAM@$INDEX_DIGEST" --key "$COSIGN_PUB"`)
	must("verify mirror", "stage:Index", "sh", `verify "docker://$MIRROR@$INDEX_DIGEST" --key "$COSIGN_PUB"`)
	reg := must("register", "stage:Register", "sh", "$AF register")
	if !strings.Contains(reg.Path, "withCredentials") || !strings.Contains(reg.arg0(), `--image "$UPSTREAM@$INDEX_DIGEST"`) || !strings.Contains(reg.arg0(), `--require-signature "$COSIGN_PUB"`) ||
		!strings.Contains(reg.arg0(), "--image-pull-secret registry-pull") || strings.Contains(reg.arg0(), "--arch") {
		t.Errorf("register (the index's template, pulled with the registry secret): %s %q", reg.Path, reg.arg0())
	}
	// One template per architecture of the index, each on its nodes.
	perArch := must("register per architecture", "stage:Register", "sh", "for arch in amd64 arm64; do")
	if !strings.Contains(perArch.Path, "withCredentials") || !strings.Contains(perArch.arg0(), `--arch "$arch"`) || !strings.Contains(perArch.arg0(), `--image "$UPSTREAM@$INDEX_DIGEST"`) ||
		!strings.Contains(perArch.arg0(), "--image-pull-secret registry-pull") || !strings.Contains(perArch.arg0(), `--require-signature "$COSIGN_PUB"`) {
		t.Errorf("register per architecture: %s %q", perArch.Path, perArch.arg0())
	}
	// No secret on a command line: the token variables appear only in the
	// git credential helper, which reads them from the environment.
	for _, s := range find("", "sh", "") {
		for _, secret := range []string{"$JENKINS_API_TOKEN", "$GIT_TOKEN", "$REGISTRY_AUTH", "$COSIGN_PASSWORD"} {
			if strings.Contains(s.arg0(), secret) && !strings.Contains(s.arg0(), "credential.helper='!f()") {
				t.Errorf("%s on a command line: %q", secret, s.arg0())
			}
		}
	}
}

// runJenkinsfile runs the Jenkinsfile for branch against the Pipeline
// stand-in and returns the steps it called.
func runJenkinsfile(t *testing.T, branch string, bumpBranch bool) []step {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..")
	cmd := exec.Command("groovy", filepath.Join(root, "testdata", "jenkins", "pipeline.groovy"), filepath.Join(root, "Jenkinsfile"))
	cmd.Env = append(os.Environ(), "PIPELINE_BRANCH="+branch, fmt.Sprintf("PIPELINE_BUMP_BRANCH=%t", bumpBranch))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("groovy (needs Debian's groovy; make deps): %v\n%s", err, out)
	}
	var steps []step
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var s step
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			t.Fatalf("%v: %s", err, sc.Text())
		}
		steps = append(steps, s)
	}
	return steps
}
