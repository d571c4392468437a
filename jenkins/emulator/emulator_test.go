package emulator

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

var admin = User{Name: "admin", Token: "admin-token-0123456789", Admin: true}

// runScript posts a script to /scriptText with the admin's API token and
// decodes the line it prints after "STUB ".
func runScript(t *testing.T, srv *Server, script string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/scriptText", strings.NewReader(url.Values{"script": {script}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(admin.Name, admin.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, "STUB "); ok {
			var m map[string]any
			if err := json.Unmarshal([]byte(rest), &m); err != nil {
				t.Fatalf("%v: %s", err, rest)
			}
			return m
		}
	}
	t.Fatalf("no STUB line in:\n%s", body)
	return nil
}

// The stubs must do what the Kubernetes plugin's setters do (see the
// comments in testdata/jenkins/stubs for the source lines): a stub that is
// kinder than the plugin hides bugs such as a name that Jenkins trims.
func TestStubs_FollowThePluginSetters(t *testing.T) {
	srv := newServer(t, Options{Users: []User{admin}})
	got := runScript(t, srv, `
import org.csanchez.jenkins.plugins.kubernetes.*
def r = [:]
def t = new PodTemplate('some-id')
t.name = '  py '; r.name = t.name
t.name = '   '; r.blankName = t.name
t.label = ' python '; r.label = t.label
t.namespace = ''; r.emptyNamespace = t.namespace
t.namespace = ' ci '; r.namespace = t.namespace
t.serviceAccount = ''; r.emptyServiceAccount = t.serviceAccount
t.serviceAccount = ' sa '; r.serviceAccount = t.serviceAccount
t.instanceCap = -5; r.negativeCap = t.instanceCap
r.blankIdReplaced = new PodTemplate('').id != ''
r.noArgIdReplaced = new PodTemplate().id != null
try { new PodTemplate(null); r.nullId = 'accepted' } catch (e) { r.nullId = e.message }
t.name = 'py'
def copy = new PodTemplate(t)
copy.name = 'other'
r.copy = [id: copy.id, name: copy.name, original: t.name]
def c = new ContainerTemplate('jnlp', 'img')
r.workingDirDefault = c.workingDir
c.workingDir = ''; r.emptyWorkingDir = c.workingDir
r.commandDefault = c.command
try { new ContainerTemplate('Not_A_DNS_Name', 'img'); r.badContainerName = 'accepted' } catch (e) { r.badContainerName = e.class.name }
try { new ContainerTemplate('jnlp', 'a b'); r.badImage = 'accepted' } catch (e) { r.badImage = e.class.name }
def live = t.containers
t.containers = [c]
r.containersSetInPlace = live.size()
r.annotationEqualsByKey = new PodAnnotation('k', 'a') == new PodAnnotation('k', 'b')
r.privilegedDefault = c.privileged
c.privileged = true; r.privileged = c.privileged
def v = new org.csanchez.jenkins.plugins.kubernetes.volumes.EmptyDirVolume('/data', null)
r.emptyDir = [mountPath: v.mountPath, memory: v.memory, medium: v.medium]
def liveVolumes = t.volumes
t.volumes = [v]
r.volumesSetInPlace = liveVolumes.size()
r.volumesCopied = new PodTemplate(t).volumes*.mountPath
// Environment variables: a container's setter appends, a template's replaces.
def kv = new org.csanchez.jenkins.plugins.kubernetes.model.KeyValueEnvVar('A', '1')
c.envVars = [kv]; c.envVars = [new org.csanchez.jenkins.plugins.kubernetes.model.KeyValueEnvVar('B', '2')]
r.containerEnvAppends = c.envVars*.key
t.envVars = [kv]; t.envVars = [new org.csanchez.jenkins.plugins.kubernetes.model.KeyValueEnvVar('B', '2')]
r.templateEnvReplaces = t.envVars*.key
c.livenessProbe = new ContainerLivenessProbe('true', 1, 2, 3, 4, 5)
c.runAsUser = ' 1000 '
def cc = new ContainerTemplate(c)
r.containerCopy = [env: cc.envVars*.key, probe: cc.livenessProbe?.periodSeconds, runAsUser: cc.runAsUser, image: cc.image]
t.imagePullSecrets = [new PodImagePullSecret('a')]; t.imagePullSecrets = [new PodImagePullSecret('b')]
r.pullSecrets = t.imagePullSecrets*.name
t.nodeSelector = ' kubernetes.io/arch=arm64 '; r.nodeSelector = t.nodeSelector
t.nodeSelector = ''; r.emptyNodeSelector = t.nodeSelector
t.runAsUser = ' 1000 '; r.runAsUser = t.runAsUser
t.runAsUser = 'x1000'; r.badRunAsUser = t.runAsUser
t.runAsGroup = '99999999999'; r.runAsGroup = t.runAsGroup
t.inheritFrom = ' base '; r.inheritFrom = t.inheritFrom
t.yaml = ''; r.emptyYaml = t.yaml
t.yaml = ' spec: {}\n'; r.yaml = t.yaml
r.yamlMergeDefault = t.yamlMergeStrategy
t.yamlMergeStrategy = new org.csanchez.jenkins.plugins.kubernetes.pod.yaml.Merge(); r.yamlMerge = t.yamlMergeStrategy.toString()
r.defaultStrategy = org.csanchez.jenkins.plugins.kubernetes.pod.yaml.YamlMergeStrategy.defaultStrategy().toString()
println 'STUB ' + groovy.json.JsonOutput.toJson(r)
`)
	want := map[string]any{
		"name": "py", "blankName": nil, "label": "python", "emptyNamespace": nil, "namespace": "ci",
		"emptyServiceAccount": nil, "serviceAccount": " sa ", "negativeCap": float64(2147483647),
		"blankIdReplaced": true, "noArgIdReplaced": true,
		"copy":              map[string]any{"id": "some-id", "name": "other", "original": "py"},
		"workingDirDefault": nil, "emptyWorkingDir": nil, "commandDefault": "",
		"badContainerName": "accepted", "badImage": "java.lang.IllegalArgumentException",
		"containersSetInPlace": float64(1), "annotationEqualsByKey": true,
		"privilegedDefault": false, "privileged": true,
		"emptyDir":          map[string]any{"mountPath": "/data", "memory": false, "medium": ""},
		"volumesSetInPlace": float64(1), "volumesCopied": []any{"/data"},
		"containerEnvAppends": []any{"A", "B"}, "templateEnvReplaces": []any{"B"},
		"containerCopy": map[string]any{"env": []any{"A", "B"}, "probe": float64(4), "runAsUser": "1000", "image": "img"},
		"pullSecrets":   []any{"b"}, "nodeSelector": "kubernetes.io/arch=arm64", "emptyNodeSelector": nil,
		"runAsUser": "1000", "badRunAsUser": nil, "runAsGroup": "99999999999", "inheritFrom": "base",
		"emptyYaml": nil, "yaml": " spec: {}\n", "yamlMergeDefault": nil, "yamlMerge": "Merge", "defaultStrategy": "Override",
	}
	for k, w := range want {
		if g, _ := json.Marshal(got[k]); string(g) != mustJSON(w) {
			t.Errorf("%s: got %s, want %s", k, g, mustJSON(w))
		}
	}
	if s, _ := got["nullId"].(string); !strings.Contains(s, "Ambiguous") {
		t.Errorf("new PodTemplate(null) should be ambiguous (String id or PodTemplate from), got %v", got["nullId"])
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// newServer starts an emulator for a test (jenkinstest.New, which imports
// this package, cannot be used here).
func newServer(t *testing.T, opts Options) *Server {
	t.Helper()
	if testing.Short() {
		t.Skip("runs Groovy: not in the short tier (make test runs it)")
	}
	s, err := Start(opts, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// RunConcurrently runs the scripts on threads of one JVM, sharing the one
// Jenkins instance as concurrent /scriptText requests do, and gives each
// one's output, in order, as /scriptText would: what it printed, "Result:"
// for a value, a stack trace for a throw.
func TestRunConcurrently(t *testing.T) {
	s := newServer(t, Options{})
	outs, err := s.RunConcurrently([]string{
		"println('first ' + System.identityHashCode(Jenkins.get()))",
		"throw new IllegalStateException('boom')",
		"'the same ' + System.identityHashCode(Jenkins.get())",
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != 3 {
		t.Fatalf("%d outputs: %q", len(outs), outs)
	}
	first, ok1 := strings.CutPrefix(strings.TrimSpace(outs[0]), "first ")
	same, ok3 := strings.CutPrefix(strings.TrimSpace(outs[2]), "Result: the same ")
	if !ok1 || !ok3 || first != same {
		t.Errorf("outputs %q, %q: want one Jenkins instance, printed and returned", outs[0], outs[2])
	}
	if !strings.Contains(outs[1], "java.lang.IllegalStateException: boom") {
		t.Errorf("a throw gives %q", outs[1])
	}
}

// A script that does not compile answers with its stack trace, as
// /scriptText does (the compile error is a Throwable of evaluate), and the
// others run.
func TestRunConcurrently_CompileError(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Groovy: not in the short tier (make test runs it)")
	}
	s := newServer(t, Options{})
	outs, err := s.RunConcurrently([]string{"def x = (", "'fine'"})
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != 2 || !strings.Contains(outs[0], "MultipleCompilationErrorsException") || strings.TrimSpace(outs[1]) != "Result: fine" {
		t.Errorf("outputs %q", outs)
	}
}
