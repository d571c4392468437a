package jenkins

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// step is one Pipeline step the repository's Jenkinsfile calls, as
// testdata/jenkins/pipeline.groovy records it.
type step struct {
	Path string `json:"path"`
	Step string `json:"step"`
	Args []any  `json:"args"`
}

// arg0 is the step's first argument, or a map argument's script (as in
// sh(returnStatus: true, script: …)).
func (s step) arg0() string {
	if len(s.Args) == 0 {
		return ""
	}
	if m, ok := s.Args[0].(map[string]any); ok {
		str, _ := m["script"].(string)
		return str
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
	must("outdated", "stage:Current?/steps", "sh", `$AF outdated images/python-agent --image "docker://$UPSTREAM"`)
	must("bump", "stage:Current?/steps", "sh", `$AF bump images/python-agent --image "docker://$UPSTREAM"`)
	if b := must("nightly check skipped without a pod", "stage:Current?/when", "beforeAgent", ""); len(b.Args) != 1 || b.Args[0] != "true" {
		t.Errorf("the Current? stage's when is evaluated after its pod starts: %+v", b)
	}
	push := must("bump committed", "stage:Current?", "sh", "push $BUMP_PUSH_FLAGS origin")
	if !strings.Contains(push.Path, "withCredentials") || !strings.Contains(push.arg0(), `"HEAD:refs/heads/$BUMP_TARGET"`) {
		t.Errorf("git push: %s %q", push.Path, push.arg0())
	}
	// A bump committed to this branch is what this run builds: the build
	// stages take the bumped definition (stashed), not the one at the
	// run's revision; a bump branch's is left to that branch's build, and
	// this run releases nothing unless the released image is behind its
	// definition (a release that failed).
	for _, tc := range []struct {
		bumpBranch, behind bool
		unstashed          int
		nothingNew         string
	}{
		{bumpBranch: false, unstashed: 2, nothingNew: ""},
		{bumpBranch: true, unstashed: 0, nothingNew: "true"},
		{bumpBranch: true, behind: true, unstashed: 0, nothingNew: ""},
	} {
		unstashed, stashed := 0, false
		var env map[string]any
		for _, s := range runJenkinsfile(t, "main", tc.bumpBranch, fmt.Sprintf("PIPELINE_BEHIND=%t", tc.behind)) {
			stashed = stashed || strings.HasPrefix(s.Path, "pipeline/stages/stage:Current?") && s.Step == "stash" && len(s.Args) == 1 && fmt.Sprint(s.Args[0]) == "map[includes:images/python-agent/image.yaml name:bumped]"
			if strings.Contains(s.Path, "stage:Build per architecture") && s.Step == "unstash" && s.arg0() == "bumped" {
				unstashed++
			}
			if s.Step == "env" {
				env, _ = s.Args[0].(map[string]any)
			}
		}
		if unstashed != tc.unstashed || stashed != (tc.unstashed > 0) || fmt.Sprint(env["NOTHING_NEW"]) != tc.nothingNew {
			t.Errorf("%+v: the bumped definition stashed %t, unstashed by %d build stages; NOTHING_NEW %q", tc, stashed, unstashed, env["NOTHING_NEW"])
		}
	}
	// A nightly that finds nothing newer releases nothing: the build,
	// index and register stages, in one Release stage, are skipped
	// (before their pods start).
	must("release skipped when nothing is new", "stage:Release/when", "expression", "")
	if b := must("release decided before its pods", "stage:Release/when", "beforeAgent", ""); len(b.Args) != 1 || b.Args[0] != "true" {
		t.Errorf("Release: when evaluated after the pods start")
	}
	for _, stage := range []string{"stage:Build per architecture", "stage:Index", "stage:Register"} {
		must(stage+" in the release", "stage:Release/stages/"+stage, "agent", "")
	}
	// A bump branch is replaced by the next night's commit of the same
	// change (a plain push of it is refused as not a fast-forward); the
	// primary branch is never forced.
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
		if force := env["BUMP_PUSH_FLAGS"] == "--force"; force != bumpBranch {
			t.Errorf("BUMP_BRANCH=%t: push flags %q", bumpBranch, env["BUMP_PUSH_FLAGS"])
		}
	}
	// outdated's and bump's exit codes: 1 (an input not checked, a kind
	// not adopted; the report is written) makes the build unstable,
	// naming what, and what was adopted is still committed; anything else
	// but 0 stops the stage.
	for status, want := range map[string][]string{
		"0": nil,
		"1": {"unstable: not checked: remoting (repo.jenkins-ci.org: 503)", "unstable: not adopted: cpython (sha256 mismatch)"},
		"2": {"error: agentforge outdated failed (exit 2): see its log above"},
	} {
		var said []string
		pushed := false
		for _, s := range runJenkinsfile(t, "main", false, "PIPELINE_SH_STATUS="+status) {
			if strings.Contains(s.Path, "stage:Current?") && (s.Step == "unstable" || s.Step == "error") {
				said = append(said, s.Step+": "+s.arg0())
			}
			pushed = pushed || s.Step == "sh" && strings.Contains(s.arg0(), "push $BUMP_PUSH_FLAGS origin")
		}
		if !slices.Equal(said, want) {
			t.Errorf("exit %s: %q, want %q", status, said, want)
		}
		if pushed != (status != "2") {
			t.Errorf("exit %s: the bump committed and pushed: %t", status, pushed)
		}
	}
	// Every stage with an agent keeps its JSON reports, also when it fails.
	for _, stage := range []string{"stage:Current?", "stage:amd64", "stage:arm64", "stage:Index", "stage:Register"} {
		if a := must(stage+" keeps its reports", stage+"/post/always", "archiveArtifacts", ""); a.Args == nil {
			t.Errorf("%s: archiveArtifacts without arguments", stage)
		}
	}
	// Every stage runs in a pod of agentforge's own builder image, its
	// steps in the agentforge container; none runs on a labelled node or
	// builds agentforge first.
	for _, stage := range []string{"stage:Current?", "stage:Build per architecture/parallel/stage:amd64", "stage:Build per architecture/parallel/stage:arm64", "stage:Index", "stage:Register"} {
		if f := must(stage+" pod", stage+"/agent/kubernetes", "yamlFile", ""); f.arg0() != builderPod {
			t.Errorf("%s: yamlFile %q, want %s", stage, f.arg0(), builderPod)
		}
		if c := must(stage+" container", stage+"/agent/kubernetes", "defaultContainer", ""); c.arg0() != "agentforge" {
			t.Errorf("%s: defaultContainer %q", stage, c.arg0())
		}
	}
	if l := find("", "label", ""); len(l) > 0 {
		t.Errorf("a stage still asks for a labelled node: %+v", l)
	}
	for _, s := range find("", "sh", "") {
		if strings.Contains(s.arg0(), "make build") || strings.Contains(s.arg0(), "bin/agentforge") {
			t.Errorf("%s: %q builds or runs a checkout's agentforge instead of the builder image's", s.Path, s.arg0())
		}
	}
	if af := must("AF", "pipeline/environment", "AF", ""); !strings.HasPrefix(af.arg0(), "agentforge ") {
		t.Errorf("AF = %q: want the builder image's agentforge on PATH", af.arg0())
	}
	for _, arch := range []string{"amd64", "arm64"} {
		branch := "stage:Build per architecture/parallel/stage:" + arch
		if l := must(arch+" node selector", branch+"/agent/kubernetes", "nodeSelector", ""); l.arg0() != "kubernetes.io/arch="+arch {
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
func runJenkinsfile(t *testing.T, branch string, bumpBranch bool, env ...string) []step {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..")
	cmd := exec.Command("groovy", filepath.Join(root, "testdata", "jenkins", "pipeline.groovy"), filepath.Join(root, "Jenkinsfile"))
	cmd.Env = append(os.Environ(), "PIPELINE_BRANCH="+branch, fmt.Sprintf("PIPELINE_BUMP_BRANCH=%t", bumpBranch))
	cmd.Env = append(cmd.Env, env...)
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

// builderPod is the pod the Jenkinsfile's stages run in.
const builderPod = "images/agentforge/pod.yaml"

// The builder pod is what in-process buildah needs in Kubernetes: the
// agentforge container from an image pinned by digest, privileged, root,
// kept running for the steps, containers-storage on an emptyDir (not in
// memory), and the register command accepts it as a template's raw YAML.
func TestBuilderPodYAML(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	data, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", builderPod))
	if err != nil {
		t.Fatal(err)
	}
	if err := checkPodYAML(string(data)); err != nil {
		t.Fatalf("register would refuse %s: %v", builderPod, err)
	}
	var pod struct {
		Kind string
		Spec struct {
			Containers []struct {
				Name, Image     string
				Command, Args   []string
				SecurityContext struct {
					Privileged *bool
					RunAsUser  *int64 `yaml:"runAsUser"`
				} `yaml:"securityContext"`
				VolumeMounts []struct {
					Name      string
					MountPath string `yaml:"mountPath"`
				} `yaml:"volumeMounts"`
			}
			Volumes []struct {
				Name     string
				EmptyDir *struct {
					Medium string
				} `yaml:"emptyDir"`
			}
		}
	}
	if err := yaml.Unmarshal(data, &pod); err != nil {
		t.Fatal(err)
	}
	if pod.Kind != "Pod" || len(pod.Spec.Containers) != 1 || pod.Spec.Containers[0].Name != "agentforge" {
		t.Fatalf("want a Pod with the one container agentforge (the plugin adds jnlp): %+v", pod)
	}
	c := pod.Spec.Containers[0]
	if !regexp.MustCompile(`^[a-z0-9.-]+(:[0-9]+)?/[a-z0-9/._-]+@sha256:[0-9a-f]{64}$`).MatchString(c.Image) {
		t.Errorf("image %q is not pinned by digest", c.Image)
	}
	if sc := c.SecurityContext; sc.Privileged == nil || !*sc.Privileged || sc.RunAsUser == nil || *sc.RunAsUser != 0 {
		t.Errorf("securityContext: want privileged and runAsUser 0 (buildah mounts and makes namespaces as root)")
	}
	// An init as PID 1 that reaps what steps leave in the background (the
	// demo's builder pod check makes it adopt one), in front of a process
	// that keeps the container up for the steps (the image's entrypoint is
	// agentforge).
	if strings.Join(append(c.Command, c.Args...), " ") != "catatonit -- sleep infinity" {
		t.Errorf("command %v %v: want catatonit -- sleep infinity", c.Command, c.Args)
	}
	storage := ""
	for _, m := range c.VolumeMounts {
		if m.MountPath == "/var/lib/containers" {
			storage = m.Name
		}
	}
	ok := false
	for _, v := range pod.Spec.Volumes {
		ok = ok || v.Name == storage && v.EmptyDir != nil && v.EmptyDir.Medium == ""
	}
	if storage == "" || !ok {
		t.Errorf("no disk-backed emptyDir at /var/lib/containers (containers-storage)")
	}
}
