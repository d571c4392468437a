package jenkins

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"text/template"

	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/jenkins/jenkinstest"
	"gopkg.in/yaml.v3"
)

// adminCasc is a controller's configuration as an admin wrote it: other
// settings, a comment, the kubernetes cloud with its connection and a
// template of their own.
const adminCasc = `# managed by the platform team
jenkins:
  systemMessage: "CI"
  clouds:
    - kubernetes:
        name: "kubernetes"
        serverUrl: "https://kubernetes.default"
        namespace: "ci"
        jenkinsUrl: "http://jenkins:8080"
        templates:
          - name: "maven"
            label: "maven"
            id: "maven-id"
            containers:
              - name: "jnlp"
                image: "jenkins/inbound-agent:latest"
unclassified:
  location:
    url: "https://ci.example/"
`

// kubernetesCloud is the smallest file that declares the kubernetes cloud.
const kubernetesCloud = "jenkins:\n  clouds:\n    - kubernetes:\n        name: \"kubernetes\"\n"

// cascServer is an emulator whose configuration-as-code source is file.
func cascServer(t *testing.T, file string, env map[string]string) *jenkinstest.Server {
	t.Helper()
	return jenkinstest.New(t, jenkinstest.Options{Users: []jenkinstest.User{admin}, CascFile: file, CascEnv: env,
		State: jenkinstest.State{Clouds: []jenkinstest.Cloud{{Kind: "kubernetes", Name: "kubernetes"}}}})
}

// The JCasC route, end to end: the template merged into the YAML (the rest
// kept), a second run leaving the file byte for byte as it was, a reload
// that builds the template through the plugin's setters and reads back as
// asked; the template survives further reloads, while one added by script
// does not.
func TestCascFile_RoundTripAndReload(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "jenkins.yaml")
	os.WriteFile(file, []byte(adminCasc), 0o640)
	srv := cascServer(t, file, map[string]string{"JENKINS_HOME": "/var/jenkins_home"})
	c := connect(t, srv, "admin", token)
	ctx := context.Background()
	tmpl := everyField(digestA)

	out, err := UpdateCascFile(file, tmpl, Options{})
	if err != nil || out.Status != "created" || out.File != file {
		t.Fatalf("merge: %+v %v", out, err)
	}
	first, _ := os.ReadFile(file)
	if st, _ := os.Stat(file); st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640 kept", st.Mode().Perm())
	}
	var doc, orig map[string]any
	yaml.Unmarshal(first, &doc)
	yaml.Unmarshal([]byte(adminCasc), &orig)
	if mustJSON(doc["unclassified"]) != mustJSON(orig["unclassified"]) || doc["jenkins"].(map[string]any)["systemMessage"] != "CI" || !bytes.HasPrefix(first, []byte("# managed by the platform team\n")) {
		t.Errorf("the rest of the file changed:\n%s", first)
	}
	clouds := doc["jenkins"].(map[string]any)["clouds"].([]any)
	cloud := clouds[0].(map[string]any)["kubernetes"].(map[string]any)
	if len(clouds) != 1 || cloud["serverUrl"] != "https://kubernetes.default" || len(cloud["templates"].([]any)) != 2 {
		t.Fatalf("clouds: %s", mustJSON(clouds))
	}
	for _, want := range []string{`value: "^${JENKINS_HOME} ' \" \\ $(x)"`, `yamlMergeStrategy: "merge"`, "- envVar:", "- emptyDirVolume:", `nodeSelector: "kubernetes.io/arch=arm64"`, `runAsUser: "1000"`, "yaml: |"} {
		if !strings.Contains(string(first), want) {
			t.Errorf("the YAML lacks %s:\n%s", want, first)
		}
	}

	again, err := UpdateCascFile(file, tmpl, Options{})
	if err != nil || again.Status != "unchanged" {
		t.Fatalf("rerun: %+v %v", again, err)
	}
	if second, _ := os.ReadFile(file); !bytes.Equal(first, second) {
		t.Fatalf("the second run changed the file:\n%s", second)
	}

	if err := c.ReloadCasc(ctx); err != nil {
		t.Fatal(err)
	}
	back, err := c.Read(ctx, "kubernetes", "python-agent")
	if err != nil || back == nil {
		t.Fatalf("read back: %+v %v", back, err)
	}
	want := tmpl.State()
	want.ID = out.Template.ID
	if d := diff(&want, &back.State); len(d) > 0 || back.State.ID != out.Template.ID {
		t.Fatalf("after the reload Jenkins holds something else: %v (id %s, file %s)", d, back.State.ID, out.Template.ID)
	}
	if back.State.Env["LITERAL"] != "${JENKINS_HOME} ' \" \\ $(x)" {
		t.Errorf("the escaped value was resolved by the reload: %q", back.State.Env["LITERAL"])
	}
	if got := storedTemplate(t, srv, "maven")["id"]; got != "maven-id" {
		t.Errorf("the admin's template: %v", got)
	}

	// A template added by script on this controller is gone at the next
	// reload; agentforge's, kept in the YAML, stays with its id.
	other := pythonTemplate(digestB)
	other.Name, other.Label = "scripted", "scripted"
	if _, err := c.Register(ctx, other, Options{ScriptConsole: true}); err != nil {
		t.Fatal(err)
	}
	if err := c.ReloadCasc(ctx); err != nil {
		t.Fatal(err)
	}
	if gone, err := c.Read(ctx, "kubernetes", "scripted"); err != nil || gone != nil {
		t.Errorf("the emulator's reload did not replace the clouds: %+v %v", gone, err)
	}
	if kept, err := c.Read(ctx, "kubernetes", "python-agent"); err != nil || kept == nil || kept.State.ID != out.Template.ID {
		t.Errorf("after a second reload: %+v %v", kept, err)
	}
	if srv.CascReloads != 2 {
		t.Errorf("%d reloads applied", srv.CascReloads)
	}
}

// An update through the file changes only agentforge's fields: what an
// admin added to the template in the YAML stays.
func TestCascFile_UpdateKeepsAdminEdits(t *testing.T) {
	file := filepath.Join(t.TempDir(), "jenkins.yaml")
	os.WriteFile(file, []byte(kubernetesCloud), 0o644)
	tmpl := pythonTemplate(digestA)
	tmpl.Env = map[string]string{"PIP_INDEX_URL": "https://pypi.mirror.example/simple"}
	if _, err := UpdateCascFile(file, tmpl, Options{}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(file)
	// The admin adds a variable from a Secret, a probe and a sidecar (with
	// a tool that rewrites the file its own way).
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	kube := doc["jenkins"].(map[string]any)["clouds"].([]any)[0].(map[string]any)["kubernetes"].(map[string]any)
	tm := kube["templates"].([]any)[0].(map[string]any)
	jnlp := tm["containers"].([]any)[0].(map[string]any)
	jnlp["livenessProbe"] = map[string]any{"execArgs": "true", "periodSeconds": 30}
	jnlp["envVars"] = append([]any{map[string]any{"secretEnvVar": map[string]any{"key": "NPM_TOKEN", "secretName": "npm", "secretKey": "token"}}}, jnlp["envVars"].([]any)...)
	tm["containers"] = append(tm["containers"].([]any), map[string]any{"name": "docker", "image": "docker:dind"})
	edited, _ := yaml.Marshal(doc)
	os.WriteFile(file, edited, 0o644)
	tmpl.Image = digestB
	out, err := UpdateCascFile(file, tmpl, Options{})
	if err != nil || out.Status != "updated" || len(out.Diff) != 1 || out.Diff[0].Field != "image" {
		t.Fatalf("update: %+v %v", out, err)
	}
	data, _ = os.ReadFile(file)
	for _, want := range []string{"key: NPM_TOKEN", `execArgs: "true"`, "image: docker:dind", `key: "PIP_INDEX_URL"`, digestB} {
		if !strings.Contains(string(data), want) {
			t.Errorf("lost %s:\n%s", want, data)
		}
	}
	// Dropping the variable removes agentforge's, not the admin's.
	tmpl.Env = nil
	if _, err := UpdateCascFile(file, tmpl, Options{}); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(file)
	if strings.Contains(string(data), "PIP_INDEX_URL") || !strings.Contains(string(data), "NPM_TOKEN") || strings.Contains(string(data), ownsKey) {
		t.Errorf("after dropping the variable:\n%s", data)
	}
}

// The template goes into the cloud entry the file declares: a second
// template joins the first in it; a cloud of that name from another
// plugin, or a template agentforge did not create, is refused (the file
// untouched).
func TestCascFile_CloudEntryAndRefusals(t *testing.T) {
	dir := t.TempDir()
	declared := filepath.Join(dir, "clouds.yaml")
	os.WriteFile(declared, []byte(kubernetesCloud), 0o644)
	if out, err := UpdateCascFile(declared, pythonTemplate(digestA), Options{}); err != nil || out.Status != "created" {
		t.Fatalf("declared cloud: %+v %v", out, err)
	}
	var doc struct {
		Jenkins struct {
			Clouds []map[string]struct {
				Name      string
				Templates []map[string]any
			}
		}
	}
	other := pythonTemplate(digestA)
	other.Name = "second"
	if _, err := UpdateCascFile(declared, other, Options{}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(declared)
	if err := yaml.Unmarshal(data, &doc); err != nil || len(doc.Jenkins.Clouds) != 1 || doc.Jenkins.Clouds[0]["kubernetes"].Name != "kubernetes" || len(doc.Jenkins.Clouds[0]["kubernetes"].Templates) != 2 {
		t.Fatalf("a second template made a second cloud:\n%s", data)
	}

	for _, tc := range []struct {
		name, yaml, reason string
	}{
		{"docker cloud of that name", "jenkins:\n  clouds:\n    - docker:\n        name: kubernetes\n", "not-kubernetes"},
		{"template by hand", "jenkins:\n  clouds:\n    - kubernetes:\n        name: kubernetes\n        templates:\n          - name: python-agent\n            label: python\n", "not-managed"},
	} {
		f := filepath.Join(dir, tc.name+".yaml")
		os.WriteFile(f, []byte(tc.yaml), 0o644)
		_, err := UpdateCascFile(f, pythonTemplate(digestA), Options{})
		var je *Error
		if !errors.As(err, &je) || je.Reason != tc.reason {
			t.Errorf("%s: want %s, got %v", tc.name, tc.reason, err)
		}
		if data, _ := os.ReadFile(f); string(data) != tc.yaml {
			t.Errorf("%s: the file changed", tc.name)
		}
	}
	for _, bad := range []string{"- a list", "jenkins: [1]", "jenkins:\n  clouds: {a: 1}\n", "a: 1\n---\nb: 2\n", "jenkins: {"} {
		f := filepath.Join(dir, "bad.yaml")
		os.WriteFile(f, []byte(bad), 0o644)
		var ie *InputError
		if _, err := UpdateCascFile(f, pythonTemplate(digestA), Options{}); !errors.As(err, &ie) {
			t.Errorf("%q: want an input error, got %v", bad, err)
		}
	}
	// Dry run: the file is not written.
	f := filepath.Join(dir, "dry.yaml")
	os.WriteFile(f, []byte(adminCasc), 0o644)
	if out, err := UpdateCascFile(f, pythonTemplate(digestA), Options{DryRun: true}); err != nil || out.Status != "would-create" {
		t.Fatalf("dry run: %+v %v", out, err)
	}
	if data, _ := os.ReadFile(f); string(data) != adminCasc {
		t.Error("a dry run wrote the file")
	}
}

// JCasC joins the jenkins.clouds lists of its source files end to end:
// YamlUtils.merge folds each source into the first with the merge
// strategy, and both strategies append a sequence to the one before
// (ErrorOnConflictMergeStrategy.merge, the default "errorOnConflict", and
// OverrideMergeStrategy.merge: seq.getValue().addAll(seq2.getValue());
// configuration-as-code-plugin plugin/src/main/java/io/jenkins/plugins/casc/yaml,
// at 58646eb6). A cloud entry added to a file that does not declare the
// cloud would be a second cloud of that name, so such a file is refused
// as bad input, naming the file, and left as it was (or not created).
func TestCascFile_RefusesFileWithoutTheCloud(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
		exists           bool
		opts             Options
	}{
		{name: "missing file", want: "declares no jenkins.clouds"},
		{name: "missing file, dry run", want: "declares no jenkins.clouds", opts: Options{DryRun: true}},
		{name: "no clouds", yaml: "jenkins:\n  systemMessage: \"hi\"\n", exists: true, want: "declares no jenkins.clouds"},
		{name: "empty document", yaml: "", exists: true, want: "declares no jenkins.clouds"},
		{name: "empty clouds", yaml: "jenkins:\n  clouds: []\n", exists: true, want: "jenkins.clouds at line 2 has none"},
		{name: "another cloud", yaml: "jenkins:\n  clouds:\n    - kubernetes:\n        name: \"k8s-prod\"\n", exists: true, want: `it has kubernetes "k8s-prod"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "agents.yaml")
			if tc.exists {
				os.WriteFile(file, []byte(tc.yaml), 0o644)
			}
			_, err := UpdateCascFile(file, pythonTemplate(digestA), tc.opts)
			var ie *InputError
			if !errors.As(err, &ie) || !errors.Is(err, errs.ErrInput) || !slices.Equal(ie.Fields, []string{"cloud"}) {
				t.Fatalf("want an input error on the cloud, got %#v", err)
			}
			for _, want := range []string{file + ":", `no kubernetes cloud named "kubernetes"`, tc.want, "the JCasC file that declares that cloud", `a second cloud "kubernetes"`} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the error lacks %q: %v", want, err)
				}
			}
			data, rerr := os.ReadFile(file)
			switch {
			case !tc.exists && !errors.Is(rerr, fs.ErrNotExist):
				t.Errorf("the refused run created the file:\n%s", data)
			case tc.exists && string(data) != tc.yaml:
				t.Errorf("the refused run changed the file:\n%s", data)
			}
		})
	}
}

// The case that reached Jenkins: a JCasC folder whose chart-made file
// declares the cloud, and an agents.yaml next to it. RegisterCasc refuses
// before any reload, and Jenkins keeps its one kubernetes cloud with its
// settings and templates.
func TestRegisterCasc_SecondFileInAFolder(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "jcasc-default-config.yaml"), []byte(adminCasc), 0o644)
	agents := filepath.Join(dir, "agents.yaml")
	srv := cascServer(t, dir, nil)
	c := connect(t, srv, "admin", token)
	ctx := context.Background()
	if err := c.ReloadCasc(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := c.RegisterCasc(ctx, agents, pythonTemplate(digestA), Options{})
	var ie *InputError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), agents) {
		t.Fatalf("want an input error naming %s, got %v", agents, err)
	}
	if _, err := os.Stat(agents); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the refused run wrote %s", agents)
	}
	if err := c.ReloadCasc(ctx); err != nil {
		t.Fatal(err)
	}
	clouds := srv.State().Clouds
	if len(clouds) != 1 || clouds[0].Name != "kubernetes" || clouds[0].Settings["serverUrl"] != "https://kubernetes.default" || len(clouds[0].Templates) != 1 {
		t.Fatalf("Jenkins' clouds after the refusal: %s", mustJSON(clouds))
	}
}

// Where configuration-as-code's sources declare jenkins.clouds, script
// registration is refused (Jenkins would drop the template at the next
// reload), naming the source; ScriptConsole goes ahead with a warning.
// Sources that do not declare clouds leave the script route open.
func TestRegister_RefusedWhereCascManagesClouds(t *testing.T) {
	dir := t.TempDir()
	managed := filepath.Join(dir, "casc")
	os.MkdirAll(managed, 0o755)
	os.WriteFile(filepath.Join(managed, "01-system.yaml"), []byte("jenkins:\n  systemMessage: hi\n"), 0o644)
	os.WriteFile(filepath.Join(managed, "02-clouds.yml"), []byte(adminCasc), 0o644)
	srv := cascServer(t, managed, nil)
	c := connect(t, srv, "admin", token)
	_, err := c.Register(context.Background(), pythonTemplate(digestA), Options{})
	var je *Error
	if !errors.As(err, &je) || je.Reason != "casc-managed" || !strings.Contains(je.Hint, "02-clouds.yml") || strings.Contains(je.Hint, "01-system.yaml") {
		t.Fatalf("want casc-managed naming 02-clouds.yml, got %v", err)
	}
	if srv.State().Saves != 0 {
		t.Fatal("a refused registration saved")
	}
	out, err := c.Register(context.Background(), pythonTemplate(digestA), Options{ScriptConsole: true})
	if err != nil || out.Status != "created" || len(out.Warnings) != 1 || !strings.Contains(out.Warnings[0], "next reload") {
		t.Fatalf("with ScriptConsole: %+v %v", out, err)
	}

	unmanaged := filepath.Join(dir, "system.yaml")
	os.WriteFile(unmanaged, []byte("jenkins:\n  systemMessage: hi\n  # clouds are set up by hand\n"), 0o644)
	srv = cascServer(t, unmanaged, nil)
	c = connect(t, srv, "admin", token)
	if out, err := c.Register(context.Background(), pythonTemplate(digestA), Options{}); err != nil || out.Status != "created" {
		t.Fatalf("sources without clouds: %+v %v", out, err)
	}
}

// A failing reload (an attribute the plugin has no setter for) is a
// refusal quoting Jenkins' message; a user without Overall/Manage is
// refused with 403.
func TestReloadCasc_Errors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "jenkins.yaml")
	os.WriteFile(file, []byte("jenkins:\n  clouds:\n    - kubernetes:\n        name: kubernetes\n        noSuchSetting: 1\n"), 0o644)
	viewer := jenkinstest.User{Name: "viewer", Token: "viewer-token-123"}
	srv := jenkinstest.New(t, jenkinstest.Options{Users: []jenkinstest.User{admin, viewer}, CascFile: file})
	c := connect(t, srv, "admin", token)
	err := c.ReloadCasc(context.Background())
	var je *Error
	if !errors.As(err, &je) || je.Reason != "casc-reload" || !strings.Contains(je.Hint, "noSuchSetting") {
		t.Fatalf("want casc-reload naming the attribute, got %v", err)
	}
	err = connect(t, srv, "viewer", viewer.Token).ReloadCasc(context.Background())
	if !errors.As(err, &je) || je.Status != 403 || je.Hint != "the user lacks hudson.model.Hudson.Manage" {
		t.Fatalf("viewer: %v", err)
	}
	// A proxy that drops X-Required-Permission: the hint says what the
	// reload needs.
	u, _ := url.Parse(srv.URL)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(r *http.Response) error { r.Header.Del("X-Required-Permission"); return nil }
	proxy := httptest.NewServer(rp)
	defer proxy.Close()
	viaProxy, err := New(context.Background(), Config{URL: proxy.URL, User: viewer.Name, Token: viewer.Token})
	if err != nil {
		t.Fatal(err)
	}
	if err := viaProxy.ReloadCasc(context.Background()); !errors.As(err, &je) || je.Hint != "reloading configuration as code needs Overall/Manage" {
		t.Fatalf("viewer through a proxy: %#v", err)
	}
	noCasc := jenkinstest.New(t, jenkinstest.Options{Users: []jenkinstest.User{admin}})
	if err := connect(t, noCasc, "admin", token).ReloadCasc(context.Background()); !errors.As(err, &je) || je.Reason != "casc-missing" {
		t.Fatalf("no plugin: %v", err)
	}
}

// The Helm form: agent.podTemplates.<name> holds the template list as
// text. After Helm's tpl (text/template, as the chart runs it) the text is
// the JCasC templates list, "{{" and "${" in values stay literal, and the
// emulator builds the template from it as asked.
func TestHelmValues_ThroughTplAndJCasC(t *testing.T) {
	tmpl := everyField(digestA)
	tmpl.Env["GREETING"] = "{{ .Release.Name }} ${X}"
	values := filepath.Join(t.TempDir(), "values.yaml")
	os.WriteFile(values, []byte("controller:\n  JCasC:\n    defaultConfig: true\nagent:\n  enabled: true\n"), 0o644)
	out, err := UpdateHelmValues(values, tmpl, Options{})
	if err != nil || out.Status != "created" {
		t.Fatalf("%+v %v", out, err)
	}
	data, _ := os.ReadFile(values)
	var v struct {
		Controller map[string]any
		Agent      struct {
			Enabled      bool
			PodTemplates map[string]string `yaml:"podTemplates"`
		}
	}
	if err := yaml.Unmarshal(data, &v); err != nil || !v.Agent.Enabled || v.Controller == nil {
		t.Fatalf("%v\n%s", err, data)
	}
	text, ok := v.Agent.PodTemplates["python-agent"]
	if !ok {
		t.Fatalf("no agent.podTemplates.python-agent:\n%s", data)
	}
	// What the chart does: tpl $val $, then under the cloud's templates.
	tp, err := template.New("tpl").Parse(text)
	if err != nil {
		t.Fatalf("tpl: %v\n%s", err, text)
	}
	var rendered bytes.Buffer
	if err := tp.Execute(&rendered, map[string]any{"Release": map[string]any{"Name": "prod"}}); err != nil {
		t.Fatal(err)
	}
	casc := "jenkins:\n  clouds:\n    - kubernetes:\n        name: \"kubernetes\"\n        templates:\n" + indent(rendered.String(), "          ")
	file := filepath.Join(t.TempDir(), "jcasc.yaml")
	os.WriteFile(file, []byte(casc), 0o644)
	srv := cascServer(t, file, map[string]string{"X": "resolved"})
	c := connect(t, srv, "admin", token)
	if err := c.ReloadCasc(context.Background()); err != nil {
		t.Fatalf("%v\n%s", err, casc)
	}
	back, err := c.Read(context.Background(), "kubernetes", "python-agent")
	if err != nil || back == nil {
		t.Fatalf("%+v %v", back, err)
	}
	want := tmpl.State()
	want.ID = back.State.ID
	if d := diff(&want, &back.State); len(d) > 0 {
		t.Fatalf("through Helm and JCasC: %v", d)
	}
	if again, err := UpdateHelmValues(values, tmpl, Options{}); err != nil || again.Status != "unchanged" {
		t.Fatalf("rerun: %+v %v", again, err)
	}
	if after, _ := os.ReadFile(values); !bytes.Equal(after, data) {
		t.Error("the second run changed the values file")
	}
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n") + "\n"
}

// An anchor, an alias or a << merge key on the way to the template is
// refused, naming the file and the line, and the file is left as it was:
// agentforge edits the parse tree in place, so a change to a shared node
// would show wherever it is used, and a key written next to a merge key
// would hide the one it brings in (the admin's templates gone, success
// reported). Both routes share the check: the JCasC file, and a Helm
// values file with the templates in its text.
func TestMerge_RefusesSharedNodesOnThePath(t *testing.T) {
	const mavenViaMerge = `x-k8s: &k8s
  serverUrl: "https://kubernetes.default"
  templates:
    - name: "maven"
      label: "maven"
jenkins:
  clouds:
    - kubernetes:
        name: "kubernetes"
        <<: *k8s
`
	const anchoredTemplate = `jenkins:
  clouds:
    - kubernetes:
        name: "kubernetes"
        templates:
          - &py
            name: "python-agent"
            label: "python"
            containers:
              - name: "jnlp"
                image: "old:1"
          - <<: *py
            name: "python-big"
            label: "python-big"
`
	for _, tc := range []struct {
		name, yaml, template string
		helm                 bool
		want                 []string
	}{
		{name: "templates through a merge key", yaml: mavenViaMerge,
			want: []string{"line 10:", `the kubernetes cloud "kubernetes" takes keys through a << merge key`}},
		{name: "cloud entry an alias", yaml: "x-k8s: &k8s\n  name: \"kubernetes\"\n  serverUrl: \"https://kubernetes.default\"\njenkins:\n  clouds:\n    - kubernetes: *k8s\n",
			want: []string{"line 6:", `the kubernetes cloud "kubernetes" is an alias (*k8s) of the node anchored at line 1`}},
		{name: "cloud entry anchored and used again", yaml: "jenkins:\n  clouds:\n    - kubernetes: &k8s\n        name: \"kubernetes\"\n    - kubernetes:\n        <<: *k8s\n        name: \"other\"\n",
			want: []string{"line 3:", "is the node anchored &k8s, used again at line 6"}},
		{name: "anchored template with a copy", yaml: anchoredTemplate, template: "python-agent",
			want: []string{"line 6:", `the template "python-agent" is the node anchored &py, used again at line 12`}},
		{name: "template through a merge key", yaml: anchoredTemplate, template: "python-big",
			want: []string{"line 12:", `the template "python-big" takes keys through a << merge key`}},
		{name: "container shared with another template", template: "python-agent", yaml: `jenkins:
  clouds:
    - kubernetes:
        name: "kubernetes"
        templates:
          - name: "python-agent"
            containers: &jnlp
              - name: "jnlp"
                image: "old:1"
          - name: "maven"
            containers: *jnlp
`, want: []string{"line 7:", `the template "python-agent" holds a node anchored &jnlp, used again at line 11`}},
		{name: "templates list shared by two clouds", yaml: `jenkins:
  clouds:
    - kubernetes:
        name: "kubernetes"
        templates: &t
          - name: "maven"
    - kubernetes:
        name: "k8s-prod"
        templates: *t
`, want: []string{"line 5:", `the templates of cloud "kubernetes" is the node anchored &t, used again at line 9`}},
		{name: "clouds through a merge key", yaml: "x-base: &base\n  clouds:\n    - kubernetes:\n        name: \"kubernetes\"\njenkins:\n  <<: *base\n  systemMessage: \"hi\"\n",
			want: []string{"line 6:", "jenkins takes keys through a << merge key"}},
		{name: "clouds an alias", yaml: "x-clouds: &clouds\n  - kubernetes:\n      name: \"kubernetes\"\njenkins:\n  clouds: *clouds\n",
			want: []string{"line 5:", "jenkins.clouds is an alias (*clouds)"}},
		{name: "Helm agent through a merge key", helm: true, yaml: "x-agent: &agent\n  podTemplates:\n    maven: |\n      - name: maven\njenkins: {}\nagent:\n  <<: *agent\n",
			want: []string{"Helm values, line 7:", "agent takes keys through a << merge key"}},
		{name: "Helm template text with an anchor", helm: true, template: "python-agent", yaml: "agent:\n  podTemplates:\n    python-agent: |\n      - &py\n        name: python-agent\n        label: python\n      - <<: *py\n        name: python-big\n",
			want: []string{"agent.podTemplates.python-agent (line 3), in its text, line 1:", "anchored &py, used again at line 4"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "jenkins.yaml")
			os.WriteFile(file, []byte(tc.yaml), 0o644)
			tmpl := pythonTemplate(digestA)
			if tc.template != "" {
				tmpl.Name = tc.template
			}
			update := UpdateCascFile
			if tc.helm {
				update = UpdateHelmValues
			}
			_, err := update(file, tmpl, Options{Adopt: true})
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("want an input error, got %v", err)
			}
			for _, want := range append(tc.want, file+":", "out in full, without anchors (&), aliases (*) or << merge keys") {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the error lacks %q: %v", want, err)
				}
			}
			if data, _ := os.ReadFile(file); string(data) != tc.yaml {
				t.Errorf("the refused run changed the file:\n%s", data)
			}
		})
	}
}

// Anchors, aliases and merge keys off the path stay as they were: a new
// template joins a list whose other templates share nodes, and the
// admin's << keys are written back as they were read (not "!!merge <<").
func TestCascFile_SharedNodesElsewhereKept(t *testing.T) {
	const doc = `x-jnlp: &jnlp
  name: "jnlp"
  image: "jenkins/inbound-agent:latest"
jenkins:
  clouds:
    - kubernetes:
        name: "kubernetes"
        templates:
          - &maven
            name: "maven"
            containers:
              - *jnlp
          - <<: *maven
            name: "maven-big"
`
	file := filepath.Join(t.TempDir(), "jenkins.yaml")
	os.WriteFile(file, []byte(doc), 0o644)
	if out, err := UpdateCascFile(file, pythonTemplate(digestA), Options{}); err != nil || out.Status != "created" || out.Position != 2 {
		t.Fatalf("%+v %v", out, err)
	}
	data, _ := os.ReadFile(file)
	if !strings.HasPrefix(string(data), doc) {
		t.Errorf("the shared part changed:\n%s", data)
	}
	var got struct {
		Jenkins struct {
			Clouds []map[string]struct {
				Templates []struct {
					Name       string
					Containers []map[string]string
				}
			}
		}
	}
	if err := yaml.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tm := range got.Jenkins.Clouds[0]["kubernetes"].Templates {
		names = append(names, tm.Name+":"+tm.Containers[0]["image"])
	}
	if want := []string{"maven:jenkins/inbound-agent:latest", "maven-big:jenkins/inbound-agent:latest", "python-agent:" + digestA}; !slices.Equal(names, want) {
		t.Errorf("templates as read: %v, want %v", names, want)
	}
}

// The case that reached Jenkins: the admin's templates come into the
// cloud through a merge key (JCasC's README suggests x- anchors). The
// refusal leaves them there after a reload.
func TestRegisterCasc_MergeKeyKeepsTheAdminsTemplates(t *testing.T) {
	file := filepath.Join(t.TempDir(), "jenkins.yaml")
	os.WriteFile(file, []byte(`x-k8s: &k8s
  serverUrl: "https://kubernetes.default"
  templates:
    - name: "maven"
      label: "maven"
      id: "maven-id"
      containers:
        - name: "jnlp"
          image: "maven:3"
jenkins:
  clouds:
    - kubernetes:
        name: "kubernetes"
        <<: *k8s
`), 0o644)
	srv := cascServer(t, file, nil)
	c := connect(t, srv, "admin", token)
	ctx := context.Background()
	_, err := c.RegisterCasc(ctx, file, pythonTemplate(digestA), Options{})
	var ie *InputError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "line 14") {
		t.Fatalf("want an input error at line 14, got %v", err)
	}
	if srv.CascReloads != 0 {
		t.Error("a refused run reloaded")
	}
	if err := c.ReloadCasc(ctx); err != nil {
		t.Fatal(err)
	}
	if maven, err := c.Read(ctx, "kubernetes", "maven"); err != nil || maven == nil || maven.State.ID != "maven-id" {
		t.Errorf("the admin's template after a reload: %+v %v", maven, err)
	}
}

// Registrations into one configuration-as-code file at once (the amd64
// and arm64 templates of a release, run in parallel) each read what the
// one before wrote: none is lost.
func TestCascFile_ConcurrentRegistrations(t *testing.T) {
	file := filepath.Join(t.TempDir(), "jenkins.yaml")
	if err := os.WriteFile(file, []byte(adminCasc), 0o644); err != nil {
		t.Fatal(err)
	}
	names := []string{"python-agent", "python-agent-amd64", "python-agent-arm64", "python-agent-big"}
	var wg sync.WaitGroup
	for _, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tmpl := pythonTemplate(digestA)
			tmpl.Name, tmpl.Label = name, name
			if _, err := UpdateCascFile(file, tmpl, Options{}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	data, _ := os.ReadFile(file)
	for _, name := range names {
		if !strings.Contains(string(data), `name: "`+name+`"`) {
			t.Errorf("template %s lost:\n%s", name, data)
		}
	}
}

// A template of the same name that an admin keeps under another
// agent.podTemplates key is the one updated (the chart adds every key's
// templates, so a second one under agentforge's own key would make two):
// refused unless adopted, then updated where it is.
func TestHelmValues_TemplateUnderAnotherKey(t *testing.T) {
	values := "agent:\n  podTemplates:\n    python: |\n      - name: python-agent\n        label: python\n        containers:\n          - name: jnlp\n            image: old/python:1\n"
	tmpl := pythonTemplate(digestA)
	var je *Error
	if _, _, err := MergeHelmValues([]byte(values), tmpl, Options{}); !errors.As(err, &je) || je.Reason != "not-managed" {
		t.Fatalf("an admin's template: %v, want not-managed", err)
	}
	out, res, err := MergeHelmValues([]byte(values), tmpl, Options{Adopt: true})
	if err != nil || res.Status != "updated" {
		t.Fatalf("adopted: %+v %v", res, err)
	}
	var doc struct {
		Agent struct {
			PodTemplates map[string]string `yaml:"podTemplates"`
		}
	}
	if err := yaml.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Agent.PodTemplates) != 1 || !strings.Contains(doc.Agent.PodTemplates["python"], digestA) {
		t.Errorf("podTemplates %v: want the template updated under python, and no other key", doc.Agent.PodTemplates)
	}
	// Text with the chart's tpl actions is not YAML before Helm renders
	// it: the template is still found there, and a hand edit asked for,
	// rather than a second python-agent added under another key.
	templated := "agent:\n  podTemplates:\n    python: |\n      - name: \"python-agent\"\n        label: python\n        containers:\n          - name: jnlp\n            image: {{ .Values.agent.image.repository }}:{{ .Values.agent.image.tag }}\n"
	var ie *InputError
	if _, _, err := MergeHelmValues([]byte(templated), tmpl, Options{Adopt: true}); !errors.As(err, &ie) || !strings.Contains(err.Error(), "agent.podTemplates.python is not plain YAML") {
		t.Errorf("templated text: %v, want a hand edit of agent.podTemplates.python asked for", err)
	}
}

// A run that changes nothing reloads nothing: a reload re-applies the
// whole configuration, reverting the controller's UI edits. Unchanged
// means the file and what Jenkins holds: a file written without a reload
// (UpdateCascFile alone) is reloaded by the next RegisterCasc.
func TestRegisterCasc_ReloadsOnlyWhatChanged(t *testing.T) {
	file := filepath.Join(t.TempDir(), "jenkins.yaml")
	os.WriteFile(file, []byte(kubernetesCloud), 0o644)
	srv := cascServer(t, file, nil)
	c := connect(t, srv, "admin", token)
	if out, err := UpdateCascFile(file, pythonTemplate(digestA), Options{}); err != nil || out.Status != "created" {
		t.Fatalf("file only: %+v %v", out, err)
	}
	for i, want := range []struct {
		reloaded bool
		reloads  int
	}{{true, 1}, {false, 1}} {
		out, err := c.RegisterCasc(context.Background(), file, pythonTemplate(digestA), Options{})
		if err != nil || out.Status != "unchanged" || out.Reloaded != want.reloaded || out.Template == nil || srv.CascReloads != want.reloads {
			t.Fatalf("run %d: %+v %v (reloads %d), want reloaded %t, %d reloads", i+1, out, err, srv.CascReloads, want.reloaded, want.reloads)
		}
	}
}

// A template added to an empty "templates: []" is written as a block, as
// an admin would write it, not as one line of flow mapping.
func TestMergeCasc_EmptyFlowListBecomesABlock(t *testing.T) {
	doc := "jenkins:\n  clouds:\n    - kubernetes:\n        name: kubernetes\n        templates: []\n"
	out, res, err := MergeCasc([]byte(doc), pythonTemplate(digestA), Options{})
	if err != nil || res.Status != "created" {
		t.Fatalf("%+v %v", res, err)
	}
	if !strings.Contains(string(out), "        templates:\n          - ") || strings.Contains(string(out), "[{") {
		t.Errorf("not a block list:\n%s", out)
	}
}

// An admin's configuration-as-code file keeps its blank lines: yaml.v3
// drops them, and a file squeezed into one block on every run is a diff on
// every line of the admin's configuration repository. Where the file is
// not in the encoder's own style, it is written in that style, as before.
func TestMergeCasc_KeepsBlankLines(t *testing.T) {
	const file = `# Managed in git.
jenkins:
  systemMessage: "CI"

  clouds:
    - kubernetes:
        name: "kubernetes"
        namespace: "ci"

        templates:
          - name: "maven"
            label: "maven"

unclassified:
  location:
    url: "https://ci.example/"

  # Pod YAML with a blank line in it.
  note: |
    first

    third
`
	// An update of the image changes its line and nothing else.
	created := createThenUpdate(t, MergeCasc, file)
	got := string(created)
	// Every line of the file is still there, in order, blank ones too; the
	// template comes right after its sibling, before the gap.
	if !isSubsequence(strings.Split(file, "\n"), strings.Split(got, "\n")) {
		t.Fatalf("the file's lines are not all kept:\n%s", got)
	}
	if !strings.Contains(got, "            label: \"maven\"\n          - ") || !strings.Contains(got, "\n\nunclassified:") {
		t.Errorf("the template is not next to its sibling, before the gap:\n%s", got)
	}
	if lines := strings.Count(got, "\n\n"); lines != 5 {
		t.Errorf("%d blank lines, want the file's 5:\n%s", lines, got)
	}
	var doc struct{ Unclassified struct{ Note string } }
	if err := yaml.Unmarshal(created, &doc); err != nil || doc.Unclassified.Note != "first\n\nthird\n" {
		t.Errorf("note %q, %v", doc.Unclassified.Note, err)
	}
	// Another style (a list not indented under its key): written in the
	// encoder's, which reads the same.
	other := strings.ReplaceAll(file, "    - kubernetes:", "  - kubernetes:")
	out, _, err := MergeCasc([]byte(other), pythonTemplate(digestA), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	if yaml.Unmarshal(out, &a) != nil || yaml.Unmarshal(created, &b) != nil || !reflect.DeepEqual(a, b) {
		t.Errorf("another style reads otherwise:\n%s", out)
	}
}

// isSubsequence reports whether every line of sub is in lines, in order.
func isSubsequence(sub, lines []string) bool {
	i := 0
	for _, l := range lines {
		if i < len(sub) && l == sub[i] {
			i++
		}
	}
	return i == len(sub)
}

// The blank lines are kept in a file with CRLF line endings (a checkout on
// Windows, core.autocrlf), one without a newline at its end, and one that
// starts with "---": each is written with its own line endings and marker,
// and an update changes the image's line alone.
func TestMergeCasc_KeepsBlankLinesWhateverTheFileEnds(t *testing.T) {
	const file = `# Managed in git.
jenkins:
  systemMessage: "CI"

  clouds:
    - kubernetes:
        name: "kubernetes"

        templates:
          - name: "maven"
            label: "maven"

unclassified:
  location:
    url: "https://ci.example/"
`
	for _, tc := range []struct {
		name string
		file string
	}{
		{"CRLF", strings.ReplaceAll(file, "\n", "\r\n")},
		{"no newline at the end", strings.TrimSuffix(file, "\n")},
		{"document start", "---\n" + file},
		{"document start, CRLF", strings.ReplaceAll("---\n"+file, "\n", "\r\n")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := string(createThenUpdate(t, MergeCasc, tc.file))
			crlf := strings.Contains(tc.file, "\r\n")
			if crlf != (strings.Count(got, "\r\n") == strings.Count(got, "\n")) {
				t.Errorf("line endings not kept (CRLF %v):\n%q", crlf, got)
			}
			lf := strings.ReplaceAll(got, "\r\n", "\n")
			if n := strings.Count(lf, "\n\n"); n != 3 {
				t.Errorf("%d blank lines, want the file's 3:\n%s", n, lf)
			}
			if strings.HasPrefix(tc.file, "---") != strings.HasPrefix(got, "---\n") && strings.HasPrefix(tc.file, "---") != strings.HasPrefix(got, "---\r\n") {
				t.Errorf("the document start marker is not kept:\n%s", lf)
			}
			if !isSubsequence(strings.Split(strings.TrimSuffix(strings.ReplaceAll(tc.file, "\r\n", "\n"), "\n"), "\n"), strings.Split(lf, "\n")) {
				t.Errorf("the file's lines are not all kept:\n%s", lf)
			}
		})
	}
}

// The Helm route on a values file shaped as the chart's own values.yaml
// (jenkinsci/helm-charts charts/jenkins/values.yaml at 22055414: comments,
// blank lines, "resources:" over "  {}", "podTemplates: {}"), which the
// encoder would write otherwise in places: the lines around the change
// are the file's own, the template is a literal block in a block mapping,
// and an update changes one line.
func TestMergeHelmValues_ChartShapedFileKeepsItsLines(t *testing.T) {
	const file = `# Default values for jenkins.

controller:
  # -- Resource requests and limits
  resources:
    {}
    # requests:
    #   cpu: 50m

  # -- List of additional secrets to create and mount
  additionalSecrets: []

agent:
  # -- Disable the default Jenkins Agent configuration
  disableDefaultAgent: false

  # -- Configures extra pod templates for the default kubernetes cloud
  podTemplates: {}

networkPolicy:
  internalAgents:
    except:
      []
`
	got := string(createThenUpdate(t, MergeHelmValues, file))
	kept := strings.Replace(file, "  podTemplates: {}\n", "", 1)
	if !isSubsequence(strings.Split(kept, "\n"), strings.Split(got, "\n")) {
		t.Fatalf("the file's own lines are not all kept:\n%s", got)
	}
	if !strings.Contains(got, "  podTemplates:\n    python-agent: |\n      - ") {
		t.Errorf("the template is not a literal block in a block mapping:\n%s", got)
	}
}

// Blank lines inside the template that changes stay with the lines they
// stood before, as an admin spaced out a template agentforge adopts
// (the configuration-as-code plugin's demos/kubernetes example does).
func TestMergeCasc_KeepsBlankLinesInTheChangedTemplate(t *testing.T) {
	const file = `jenkins:
  clouds:
    - kubernetes:
        name: "kubernetes"
        templates:
          - name: "python-agent"
            namespace: "ci"

            label: "old"
            nodeUsageMode: EXCLUSIVE

            containers:
              - name: "jnlp"
                image: "registry.example/agents/python:old"

                workingDir: "/home/jenkins/agent"
`
	out, res, err := MergeCasc([]byte(file), pythonTemplate(digestA), Options{Adopt: true})
	if err != nil || res.Status != "updated" {
		t.Fatalf("%+v %v", res, err)
	}
	got := string(out)
	for _, want := range []string{"\n\n            label: \"python\"\n", "\n\n            containers:\n", "\n\n                workingDir: "} {
		if !strings.Contains(got, want) {
			t.Errorf("lost the blank line of %q:\n%s", strings.TrimSpace(want), got)
		}
	}
}

// createThenUpdate merges the python template into file (created), then
// the same template with another image into the result (updated), which
// must change one line, and returns the created document.
func createThenUpdate(t *testing.T, merge func([]byte, Template, Options) ([]byte, *Outcome, error), file string) []byte {
	t.Helper()
	created, res, err := merge([]byte(file), pythonTemplate(digestA), Options{})
	if err != nil || res.Status != "created" {
		t.Fatalf("%+v %v", res, err)
	}
	updated, res, err := merge(created, pythonTemplate(digestB), Options{})
	if err != nil || res.Status != "updated" {
		t.Fatalf("%+v %v", res, err)
	}
	oneLineChanged(t, string(created), string(updated), digestB)
	return created
}

// oneLineChanged fails t unless after is before with one line changed, to
// one holding want.
func oneLineChanged(t *testing.T, before, after, want string) {
	t.Helper()
	b, a := strings.Split(before, "\n"), strings.Split(after, "\n")
	var changed []string
	for i := range min(len(b), len(a)) {
		if b[i] != a[i] {
			changed = append(changed, a[i])
		}
	}
	if len(b) != len(a) || len(changed) != 1 || !strings.Contains(changed[0], want) {
		t.Errorf("the update changed %q (%d lines to %d):\n%s", changed, len(b), len(a), after)
	}
}

// The lines kept around a change are found by their text alone: a comment
// the encoder indents otherwise ("# ---" at column 0 inside the template,
// written at the template's indentation, the same text as the line two
// above it) made the splice take that earlier line for the one before the
// change, and drop the admin's comments between. The data reads the same,
// so readsAs alone let it through. Every comment must stay.
func TestMergeCasc_KeepsCommentsNextToTheChange(t *testing.T) {
	created, _, err := MergeCasc([]byte("jenkins:\n  clouds:\n    - kubernetes:\n        name: \"kubernetes\"\n\n        templates: []\n"), pythonTemplate(digestA), Options{})
	if err != nil {
		t.Fatal(err)
	}
	const rule = "# ------------------------------------------"
	file := strings.Replace(string(created), "            label: \"python\"\n",
		"            "+rule+"\n            # label: \"gpu\" until the March move, see INC-4711\n"+rule+"\n            label: \"old\"\n", 1)
	out, res, err := MergeCasc([]byte(file), pythonTemplate(digestA), Options{})
	if err != nil || res.Status != "updated" {
		t.Fatalf("%+v %v", res, err)
	}
	got := string(out)
	if !strings.Contains(got, "label: \"python\"") || !strings.Contains(got, "see INC-4711") || strings.Count(got, rule) != 2 {
		t.Errorf("comments lost or doubled:\n%s", got)
	}
}

// Two templates alike over more lines than the anchors compare (maxAnchor)
// left the splice no line that stands once after the change, and the
// whole file was written as encoded, its blank lines gone; a file whose
// lines are the encoder's, as agentforge writes it, has its places known
// without anchors, as before the anchors were.
func TestMergeCasc_KeepsBlankLinesAroundLongAlikeTemplates(t *testing.T) {
	created, _, err := MergeCasc([]byte("jenkins:\n  clouds:\n    - kubernetes:\n        name: \"kubernetes\"\n        templates: []\n"), pythonTemplate(digestA), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var env strings.Builder
	env.WriteString("            envVars:\n")
	for i := range 120 {
		fmt.Fprintf(&env, "              - envVar:\n                  key: \"K%d\"\n                  value: \"v\"\n", i)
	}
	file := strings.Replace(string(created), "            id: ", env.String()+"            id: ", 1)
	file = strings.Replace(file, "        templates:\n", "\n        templates:\n", 1)
	tm := file[strings.Index(file, "          - annotations:"):]
	file += strings.Replace(strings.Replace(tm, "python-agent", "python-agent-2", 1), "8b053955", "99999999", 1)
	out, res, err := MergeCasc([]byte(file), pythonTemplate(digestB), Options{})
	if err != nil || res.Status != "updated" {
		t.Fatalf("%+v %v", res, err)
	}
	if want := strings.Replace(file, digestA, digestB, 1); string(out) != want {
		t.Errorf("not the file with its one image line changed:\n%s", out)
	}
}
