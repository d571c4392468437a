package jenkins

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/jenkins/jenkinstest"
	"gopkg.in/yaml.v3"
)

func i64(v int64) *int64 { return &v }

// everyField is python-agent with every optional field agentforge sets.
func everyField(image string) Template {
	t := pythonTemplate(image)
	t.ImagePullSecrets = []string{"regcred", "mirror-cred"}
	t.NodeSelector = map[string]string{ArchLabel: "arm64"}
	t.Env = map[string]string{"PIP_INDEX_URL": "https://pypi.mirror.example/simple", "LITERAL": "${JENKINS_HOME} ' \" \\ $(x)"}
	t.YAML = "apiVersion: v1\nkind: Pod\nspec:\n  tolerations:\n  - key: arch\n    value: arm64\n    effect: NoSchedule\n"
	t.YAMLMergeStrategy = "merge"
	t.InheritFrom = "base"
	t.RunAsUser, t.RunAsGroup, t.FSGroup = i64(1000), i64(1000), i64(1000)
	t.Podman, t.UserNamespace = PodmanUnprivileged, true
	return t
}

// Every new field goes through the plugin's own setters (the stubs follow
// them), is read back equal, and a second run changes nothing. Dropping
// them all removes exactly what agentforge set: the admin's pull secret,
// node selector and environment variable stay.
func TestRegister_NewFieldsOwnedKeyByKey(t *testing.T) {
	srv := jenkinstest.New(t, jenkinstest.Options{Users: []jenkinstest.User{admin}, State: adminEdited(digestA)})
	c := connect(t, srv, "admin", token)
	ctx := context.Background()

	out, err := c.Register(ctx, everyField(digestA), Options{})
	if err != nil || out.Status != "updated" {
		t.Fatalf("register: %+v %v", out, err)
	}
	st := storedTemplate(t, srv, "python-agent")
	checks := map[string]string{
		"imagePullSecrets":  `["corp-registry","mirror-cred","regcred"]`,
		"nodeSelector":      `"disktype=ssd,kubernetes.io/arch=arm64"`,
		"yamlMergeStrategy": `"merge"`,
		"inheritFrom":       `"base"`,
		"runAsUser":         `"1000"`,
		"runAsGroup":        `"1000"`,
		"envVars":           `[{"key":"TZ","kind":"envVar","value":"UTC"}]`,
	}
	for k, want := range checks {
		if got := mustJSON(st[k]); got != want {
			t.Errorf("stored %s = %s, want %s", k, got, want)
		}
	}
	jnlp := st["containers"].([]any)[1].(map[string]any)
	if got := mustJSON(withoutNulls(jnlp["envVars"])); got != `[{"key":"HTTP_PROXY","kind":"envVar","value":"http://proxy.example:3128"},{"key":"NPM_TOKEN","kind":"secretEnvVar","secretKey":"token","secretName":"npm"},{"key":"LITERAL","kind":"envVar","value":"${JENKINS_HOME} ' \" \\ $(x)"},{"key":"PIP_INDEX_URL","kind":"envVar","value":"https://pypi.mirror.example/simple"}]` {
		t.Errorf("jnlp envVars: %s", got)
	}
	if jnlp["privileged"] == true {
		t.Error("unprivileged podman made the container privileged")
	}
	var pod struct {
		APIVersion string `yaml:"apiVersion"`
		Spec       struct {
			HostUsers       *bool `yaml:"hostUsers"`
			SecurityContext struct {
				FSGroup *int64 `yaml:"fsGroup"`
			} `yaml:"securityContext"`
			Tolerations []map[string]string
			Containers  []podContainer
		}
	}
	if err := yaml.Unmarshal([]byte(st["yaml"].(string)), &pod); err != nil {
		t.Fatal(err)
	}
	if pod.APIVersion != "v1" || pod.Spec.HostUsers == nil || *pod.Spec.HostUsers || pod.Spec.SecurityContext.FSGroup == nil || *pod.Spec.SecurityContext.FSGroup != 1000 || len(pod.Spec.Tolerations) != 1 {
		t.Errorf("pod yaml:\n%s", st["yaml"])
	}
	checkUnprivileged(t, pod.Spec.Containers, st["yaml"].(string))
	if ann := mustJSON(st["annotations"]); !strings.Contains(ann, `"agentforge.io/owns"`) || !strings.Contains(ann, `"team"`) {
		t.Errorf("annotations: %s", ann)
	}
	if got := mustJSON(out.Template.ImagePullSecrets); got != `["mirror-cred","regcred"]` {
		t.Errorf("the outcome reports %s: only what agentforge owns", got)
	}

	saves := srv.State().Saves
	again, err := c.Register(ctx, everyField(digestA), Options{})
	if err != nil || again.Status != "unchanged" || srv.State().Saves != saves {
		t.Fatalf("rerun: %+v %v (saves %d -> %d)", again, err, saves, srv.State().Saves)
	}

	// Without them: agentforge's go, the admin's stay.
	plain, err := c.Register(ctx, pythonTemplate(digestA), Options{})
	if err != nil || plain.Status != "updated" {
		t.Fatalf("plain: %+v %v", plain, err)
	}
	st = storedTemplate(t, srv, "python-agent")
	for k, want := range map[string]string{
		"imagePullSecrets": `["corp-registry"]`, "nodeSelector": `"disktype=ssd"`, "yaml": "null", "yamlMergeStrategy": "null",
		"inheritFrom": "null", "runAsUser": "null", "runAsGroup": "null",
	} {
		if got := mustJSON(st[k]); got != want {
			t.Errorf("after dropping: %s = %s, want %s", k, got, want)
		}
	}
	jnlp = st["containers"].([]any)[1].(map[string]any)
	if got := mustJSON(withoutNulls(jnlp["envVars"])); got != `[{"key":"HTTP_PROXY","kind":"envVar","value":"http://proxy.example:3128"},{"key":"NPM_TOKEN","kind":"secretEnvVar","secretKey":"token","secretName":"npm"}]` {
		t.Errorf("after dropping, jnlp envVars: %s", got)
	}
	if strings.Contains(mustJSON(st["annotations"]), "agentforge.io/owns") {
		t.Errorf("the owns annotation stayed: %s", mustJSON(st["annotations"]))
	}
}

type podContainer struct {
	Name            string
	Image           string
	SecurityContext *struct {
		Privileged               *bool `yaml:"privileged"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		Capabilities             struct {
			Add  []string
			Drop []string
		}
		SeccompProfile struct {
			Type string
		} `yaml:"seccompProfile"`
	} `yaml:"securityContext"`
}

// checkUnprivileged: the jnlp container carries the securityContext the
// README measured for rootless podman without privileges.
func checkUnprivileged(t *testing.T, containers []podContainer, y string) {
	t.Helper()
	for _, c := range containers {
		if c.Name != "jnlp" {
			continue
		}
		sc := c.SecurityContext
		if sc == nil || sc.Privileged != nil || sc.AllowPrivilegeEscalation == nil || !*sc.AllowPrivilegeEscalation ||
			strings.Join(sc.Capabilities.Drop, ",") != "ALL" || strings.Join(sc.Capabilities.Add, ",") != "SETUID,SETGID" || sc.SeccompProfile.Type != "Unconfined" {
			t.Errorf("jnlp securityContext is not the measured one:\n%s", y)
		}
		return
	}
	t.Errorf("no jnlp container in the pod yaml:\n%s", y)
}

// A value agentforge owns that someone changes by hand is put back; a
// variable of the same name an admin had is taken over (and the diff says
// so); the admin's raw YAML, replaced by agentforge's, is warned about.
func TestRegister_OwnedFieldsConverge(t *testing.T) {
	st := adminEdited(digestA)
	st.Clouds[0].Templates[0]["yaml"] = "spec:\n  priorityClassName: batch\n"
	srv := jenkinstest.New(t, jenkinstest.Options{Users: []jenkinstest.User{admin}, State: st})
	c := connect(t, srv, "admin", token)
	ctx := context.Background()
	tmpl := pythonTemplate(digestA)
	tmpl.Env = map[string]string{"HTTP_PROXY": "http://other-proxy:3128"}
	tmpl.Podman = PodmanUnprivileged
	out, err := c.Register(ctx, tmpl, Options{})
	if err != nil || out.Status != "updated" {
		t.Fatalf("%+v %v", out, err)
	}
	if len(out.Warnings) != 1 || !strings.Contains(out.Warnings[0], "raw YAML that agentforge did not write") {
		t.Errorf("warnings: %q", out.Warnings)
	}
	if got := mustJSON(out.Diff); !strings.Contains(got, `"field":"env","before":"","after":"HTTP_PROXY=http://other-proxy:3128"`) {
		t.Errorf("diff: %s", got)
	}
	// Someone edits agentforge's variable by hand: the next run restores it.
	state := srv.State()
	for _, ct := range state.Clouds[0].Templates[0]["containers"].([]any) {
		if ct := ct.(map[string]any); ct["name"] == "jnlp" {
			for _, e := range ct["envVars"].([]any) {
				if e := e.(map[string]any); e["key"] == "HTTP_PROXY" {
					e["value"] = "http://edited"
				}
			}
		}
	}
	srv.SetState(state)
	back, err := c.Register(ctx, tmpl, Options{})
	if err != nil || back.Status != "updated" || back.Template.Env["HTTP_PROXY"] != "http://other-proxy:3128" {
		t.Fatalf("restore: %+v %v", back, err)
	}
}

// The new fields are checked before anything is sent, the flag named.
func TestTemplate_ValidateNewFields(t *testing.T) {
	for _, tc := range []struct {
		set   func(*Template)
		field string
	}{
		{func(t *Template) { t.ImagePullSecrets = []string{"Reg_Cred"} }, "image-pull-secret"},
		{func(t *Template) { t.ImagePullSecrets = []string{"a", "a"} }, "image-pull-secret"},
		{func(t *Template) { t.NodeSelector = map[string]string{"kubernetes.io/arch": ""} }, "node-selector"},
		{func(t *Template) { t.NodeSelector = map[string]string{"a,b": "c"} }, "node-selector"},
		{func(t *Template) { t.NodeSelector = map[string]string{"arch": "arm64,b=c"} }, "node-selector"},
		{func(t *Template) { t.NodeSelector = map[string]string{"/arch": "x"} }, "node-selector"},
		{func(t *Template) { t.Env = map[string]string{"1X": "y"} }, "env"},
		{func(t *Template) { t.Env = map[string]string{"A=B": "y"} }, "env"},
		{func(t *Template) { t.Env = map[string]string{"X": "a\x00b"} }, "env"},
		{func(t *Template) { t.YAML = "- a list" }, "yaml"},
		{func(t *Template) { t.YAML = "kind: Deployment" }, "yaml"},
		{func(t *Template) { t.YAML = "spec:\n  containers:\n  - image: x\n" }, "yaml"},
		{func(t *Template) { t.YAML = "a: 1\n---\nb: 2\n" }, "yaml"},
		{func(t *Template) { t.YAML = "spec: [" }, "yaml"},
		// The plugin reads pod YAML with Jackson, which takes an alias for
		// the anchor's name and has no << merge keys.
		{func(t *Template) {
			t.YAML = "spec:\n  securityContext: &sc\n    runAsNonRoot: true\n  containers:\n  - name: jnlp\n    securityContext: *sc\n"
		}, "yaml"},
		{func(t *Template) {
			t.YAML = "spec:\n  securityContext:\n    <<: {runAsUser: 1000}\n    fsGroup: 1000\n"
		}, "yaml"},
		{func(t *Template) { t.YAMLMergeStrategy = "replace" }, "yaml-merge"},
		{func(t *Template) { t.InheritFrom = " base" }, "inherit-from"},
		{func(t *Template) { t.RunAsUser = i64(-1) }, "run-as-user"},
		{func(t *Template) { t.RunAsGroup = i64(1 << 31) }, "run-as-group"},
		{func(t *Template) { t.FSGroup = i64(-5) }, "fs-group"},
		{func(t *Template) { t.Podman = "rootless" }, "podman"},
		{func(t *Template) { s := "/x"; t.PodmanStorage = &s }, "podman-storage"},
		{func(t *Template) { t.Podman, t.UserNamespace = PodmanPrivileged, true }, "user-namespace"},
		{func(t *Template) { t.Podman, t.Privileged = PodmanUnprivileged, true }, "podman"},
	} {
		tmpl := pythonTemplate(digestA)
		tc.set(&tmpl)
		_, err := tmpl.Resolve()
		var ie *InputError
		if !errors.As(err, &ie) || !strings.Contains(strings.Join(ie.Fields, ","), tc.field) {
			t.Errorf("%+v: want an input error for %s, got %v", tmpl, tc.field, err)
		}
	}
	if _, err := everyField(digestA).Resolve(); err != nil {
		t.Error(err)
	}
}

// The raw YAML a user gives is kept as written when nothing is added to
// it, and merged (containers by name, the head comment kept) when podman or
// fsGroup add to it.
func TestResolve_MergesPodYAML(t *testing.T) {
	user := "# our sidecar\nspec:\n  containers:\n  - name: jnlp # the agent\n    resources:\n      limits:\n        ephemeral-storage: 10Gi\n  - name: cache\n    image: redis:7\n"
	tmpl := pythonTemplate(digestA)
	tmpl.YAML = user
	r, err := tmpl.Resolve()
	if err != nil || r.YAML != user {
		t.Fatalf("verbatim: %v\n%s", err, r.YAML)
	}
	tmpl.Podman = PodmanUnprivileged
	r, err = tmpl.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	var pod struct {
		Spec struct{ Containers []podContainer }
	}
	if err := yaml.Unmarshal([]byte(r.YAML), &pod); err != nil {
		t.Fatal(err)
	}
	if len(pod.Spec.Containers) != 2 || pod.Spec.Containers[1].Name != "cache" || !strings.Contains(r.YAML, "# our sidecar") || !strings.Contains(r.YAML, "ephemeral-storage: 10Gi") {
		t.Errorf("merged:\n%s", r.YAML)
	}
	checkUnprivileged(t, pod.Spec.Containers, r.YAML)
	if r.Privileged || strings.Join(r.EmptyDirs, ",") != PodmanStorage || r.Podman != "" {
		t.Errorf("resolved: %+v", r)
	}
	again, _ := tmpl.Resolve()
	if again.YAML != r.YAML {
		t.Error("resolving twice gave two YAML texts")
	}
}

// SetContainerImage changes one container's image and nothing else; an
// image string that looks like YAML stays one string, and a pod without
// the container is refused.
func TestSetContainerImage(t *testing.T) {
	const pod = "# builder\nspec:\n  containers:\n    - name: agentforge\n      image: old\n      securityContext:\n        privileged: true\n    - name: sidecar\n      image: keep\n"
	out, err := SetContainerImage(pod, "agentforge", "reg/a@sha256:00\nhostPID: true")
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		HostPID *bool `yaml:"hostPID"`
		Spec    struct {
			HostPID    *bool `yaml:"hostPID"`
			Containers []struct {
				Name, Image     string
				SecurityContext map[string]bool `yaml:"securityContext"`
			}
		}
	}
	if err := yaml.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	c := got.Spec.Containers
	if len(c) != 2 || c[0].Image != "reg/a@sha256:00\nhostPID: true" || !c[0].SecurityContext["privileged"] || c[1].Image != "keep" || got.HostPID != nil || got.Spec.HostPID != nil || !strings.HasPrefix(out, "# builder") {
		t.Errorf("got:\n%s", out)
	}
	for _, p := range []string{pod, "kind: Pod\n", "spec:\n  hostname: x\n", ""} {
		if _, err := SetContainerImage(p, "jnlp", "x"); err == nil {
			t.Errorf("%q: a pod without the container was accepted", p)
		}
	}
}
