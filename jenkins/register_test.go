package jenkins

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agentforge/agentforge/jenkins/jenkinstest"
	"github.com/sirupsen/logrus"
	"gopkg.in/yaml.v3"
)

// These tests run every script agentforge sends through Groovy 2.4 against
// the stubs in testdata/jenkins/stubs (Debian's groovy + default-jre-headless,
// installed by .ci/run).

const (
	digestA = "registry.example/agents/python@sha256:1111111111111111111111111111111111111111111111111111111111111111"
	digestB = "registry.example/agents/python@sha256:2222222222222222222222222222222222222222222222222222222222222222"
	token   = "11a9b3c4d5e6f708192a3b4c5d6e7f8091"
)

var admin = jenkinstest.User{Name: "admin", Token: token, Password: "hunter2-password", Admin: true}

// withOtherTemplate is a cloud holding a template agentforge did not create.
func withOtherTemplate() jenkinstest.State {
	return jenkinstest.State{Clouds: []jenkinstest.Cloud{
		{Kind: "docker", Name: "docker"},
		{Kind: "kubernetes", Name: "kubernetes", Templates: []map[string]any{{
			"id": "other-id", "name": "maven", "label": "maven", "idleMinutes": 5, "instanceCap": 3,
			"containers": []map[string]any{{"name": "jnlp", "image": "jenkins/inbound-agent:latest", "workingDir": "/home/jenkins/agent"}},
		}}},
	}}
}

func connect(t *testing.T, srv *jenkinstest.Server, user, secret string) *Client {
	t.Helper()
	c, err := New(context.Background(), Config{URL: srv.URL, User: user, Token: secret, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func pythonTemplate(image string) Template {
	return Template{Cloud: "kubernetes", Name: "python-agent", Label: "python", Image: image,
		Namespace: "ci", IdleMinutes: 10, InstanceCap: -1, CPURequest: "500m", MemoryRequest: "1Gi", MemoryLimit: "2Gi"}
}

func TestRegister_CreateUnchangedUpdate(t *testing.T) {
	srv := jenkinstest.New(t, jenkinstest.Options{Users: []jenkinstest.User{admin}, State: withOtherTemplate()})
	c := connect(t, srv, "admin", token)
	if c.Version != "2.555.1" {
		t.Errorf("version %q", c.Version)
	}
	ctx := context.Background()

	created, err := c.Register(ctx, pythonTemplate(digestA), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if created.Status != "created" || created.Template.Image != digestA || created.Template.ID == "" || created.Position != 1 {
		t.Fatalf("create: %+v %+v", created, created.Template)
	}
	saves := srv.State().Saves
	if saves != 1 {
		t.Fatalf("create saved %d times", saves)
	}

	again, err := c.Register(ctx, pythonTemplate(digestA), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if again.Status != "unchanged" || again.Template.ID != created.Template.ID {
		t.Fatalf("rerun: %s id %s (was %s)", again.Status, again.Template.ID, created.Template.ID)
	}
	if got := srv.State().Saves; got != saves {
		t.Fatalf("an unchanged rerun saved (%d -> %d)", saves, got)
	}

	// Move the python template first, so that "order kept" can fail.
	st := srv.State()
	k := st.Clouds[1]
	k.Templates[0], k.Templates[1] = k.Templates[1], k.Templates[0]
	srv.SetState(st)

	updated, err := c.Register(ctx, pythonTemplate(digestB), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if updated.Status != "updated" || updated.Template.ID != created.Template.ID || updated.Position != 0 || updated.Template.Image != digestB {
		t.Fatalf("update: %+v %+v", updated, updated.Template)
	}
	if len(updated.Diff) != 1 || updated.Diff[0].Field != "image" || updated.Diff[0].Before != digestA {
		t.Errorf("diff: %+v", updated.Diff)
	}

	// The template agentforge did not create is untouched.
	other := srv.State().Clouds[1].Templates[1]
	if other["id"] != "other-id" || other["label"] != "maven" || other["idleMinutes"].(float64) != 5 {
		t.Errorf("other template changed: %v", other)
	}
	if srv.State().Clouds[0].Kind != "docker" {
		t.Errorf("the docker cloud was lost: %+v", srv.State().Clouds)
	}
}

func TestRegister_DryRunChangesNothing(t *testing.T) {
	srv := jenkinstest.New(t, jenkinstest.Options{Users: []jenkinstest.User{admin}, State: withOtherTemplate()})
	c := connect(t, srv, "admin", token)
	out, err := c.Register(context.Background(), pythonTemplate(digestA), Options{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if out.Status != "would-create" || len(out.Diff) == 0 {
		t.Fatalf("dry run: %+v", out)
	}
	if st := srv.State(); st.Saves != 0 || len(st.Clouds[1].Templates) != 1 {
		t.Fatalf("dry run changed Jenkins: %+v", st)
	}
}

func TestRegister_RefusesUnmanagedUnlessAdopt(t *testing.T) {
	srv := jenkinstest.New(t, jenkinstest.Options{Users: []jenkinstest.User{admin}, State: withOtherTemplate()})
	c := connect(t, srv, "admin", token)
	tmpl := pythonTemplate(digestA)
	tmpl.Name, tmpl.Label = "maven", "maven"
	_, err := c.Register(context.Background(), tmpl, Options{})
	var je *Error
	if !errors.As(err, &je) || je.Reason != "not-managed" || !strings.Contains(err.Error(), "adopt it") {
		t.Fatalf("want not-managed, got %v", err)
	}
	out, err := c.Register(context.Background(), tmpl, Options{Adopt: true})
	if err != nil || out.Status != "updated" || out.Template.ID != "other-id" || !out.Template.Managed {
		t.Fatalf("adopt: %+v %v", out, err)
	}
	removed, err := c.Remove(context.Background(), "kubernetes", "maven", Options{})
	if err != nil || removed.Status != "removed" || len(srv.State().Clouds[1].Templates) != 0 {
		t.Fatalf("remove: %+v %v", removed, err)
	}
}

// A pod YAML up to Validate's bound registers: Groovy refuses a string
// literal of more than 65,535 characters ("String too long", which a 48 KB
// YAML reached as one base64 literal), so the payload goes in pieces. The
// emulator runs the script with Groovy 2.4, as Jenkins does.
func TestRegister_LargeYAML(t *testing.T) {
	srv := jenkinstest.New(t, jenkinstest.Options{Users: []jenkinstest.User{admin}, State: withOtherTemplate()})
	c := connect(t, srv, "admin", token)
	tmpl := pythonTemplate(digestA)
	tmpl.YAML = "metadata:\n  annotations:\n    note: \"" + strings.Repeat("x", 200_000) + "\"\n"
	if err := tmpl.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"created", "unchanged"} {
		out, err := c.Register(context.Background(), tmpl, Options{})
		if err != nil {
			t.Fatalf("%s: %.300v", want, err)
		}
		if out.Status != want || out.Template.YAML != tmpl.YAML {
			t.Fatalf("status %s (YAML %d bytes), want %s with the %d bytes", out.Status, len(out.Template.YAML), want, len(tmpl.YAML))
		}
	}
	script, err := payload("x = '@@PAYLOAD@@'", map[string]string{"yaml": tmpl.YAML})
	if err != nil {
		t.Fatal(err)
	}
	for _, lit := range strings.Split(script, "'")[1:] {
		if len(lit) > payloadChunk {
			t.Errorf("a literal of %d characters", len(lit))
		}
	}
}

// Every string field carries an injection attempt. Each must be stored
// literally (or refused by validation), and nothing may run.
func TestRegister_InjectionIsData(t *testing.T) {
	srv := jenkinstest.New(t, jenkinstest.Options{Users: []jenkinstest.User{admin}, State: withOtherTemplate()})
	c := connect(t, srv, "admin", token)
	evil := []string{
		`x' + Jenkins.get().clouds.clear() + '`,
		`x"; System.exit(1); "`,
		"${Jenkins.get().clouds.clear()}",
		"x\n}; Jenkins.get().clouds.clear(); {",
		`x\'; new File('/tmp/agentforge-pwned').text = 'pwned'; //`,
		"''' + Runtime.getRuntime().exec('touch /tmp/agentforge-pwned') + '''",
	}
	for i, s := range evil {
		tmpl := pythonTemplate(digestA)
		tmpl.Name = "t" + string(rune('a'+i)) + s
		out, err := c.Register(context.Background(), tmpl, Options{})
		if strings.Contains(s, "\n") {
			// A newline is refused in a name before anything is sent.
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("%q: want an input error, got %v", s, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if out.Template.Name != tmpl.Name {
			t.Errorf("name stored as %q, want %q", out.Template.Name, tmpl.Name)
		}
	}
	// Other fields: the label and resources are validated, the cloud name is looked up literally.
	tmpl := pythonTemplate(digestA)
	tmpl.Cloud = `kubernetes' + Jenkins.get().clouds.clear() + '`
	_, err := c.Register(context.Background(), tmpl, Options{})
	var je *Error
	if !errors.As(err, &je) || je.Reason != "no-such-cloud" {
		t.Fatalf("evil cloud name: %v", err)
	}
	for _, bad := range []func(*Template){
		func(t *Template) { t.Label = "python\n}; evil(); {" },
		func(t *Template) { t.Image = "x@sha256:" + strings.Repeat("1", 64) + "'; evil()" },
		func(t *Template) { t.CPURequest = "1'; evil()" },
		func(t *Template) { t.Namespace = "ci'; evil()" },
		func(t *Template) { t.EmptyDirs = []string{"/x'+Jenkins.get().clouds.clear()+'"} },
	} {
		tmpl := pythonTemplate(digestA)
		bad(&tmpl)
		if _, err := c.Register(context.Background(), tmpl, Options{}); err == nil {
			t.Errorf("%+v was accepted", tmpl)
		}
	}
	st := srv.State()
	if len(st.Clouds) != 2 || len(st.Clouds[1].Templates) != 1+len(evil)-1 {
		t.Fatalf("state after injection attempts: %d clouds, %+v", len(st.Clouds), st.Clouds)
	}
	for _, script := range srv.Scripts {
		for _, s := range evil {
			if strings.Contains(script, s) {
				t.Fatalf("a value reached the script text: %q", s)
			}
		}
	}
}

func TestRegister_Errors(t *testing.T) {
	viewer := jenkinstest.User{Name: "viewer", Token: "viewer-token-123", Admin: false}
	ctx := context.Background()
	cases := []struct {
		name   string
		opts   jenkinstest.Options
		user   string
		secret string
		tmpl   func(*Template)
		reason string
		status int
	}{
		{"wrong token", jenkinstest.Options{}, "admin", "wrong-token", nil, "unauthorized", 401},
		{"no permission", jenkinstest.Options{}, "viewer", viewer.Token, nil, "forbidden", 403},
		{"no such cloud", jenkinstest.Options{}, "admin", token, func(t *Template) { t.Cloud = "k8s-prod" }, "no-such-cloud", 0},
		{"not a kubernetes cloud", jenkinstest.Options{}, "admin", token, func(t *Template) { t.Cloud = "docker" }, "not-kubernetes", 0},
		{"plugin missing", jenkinstest.Options{NoKubernetesPlugin: true}, "admin", token, nil, "plugin-missing", 0},
		{"script console blocked", jenkinstest.Options{NoScriptConsole: true}, "admin", token, nil, "script-console", 404},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Users = []jenkinstest.User{admin, viewer}
			tc.opts.State = withOtherTemplate()
			srv := jenkinstest.New(t, tc.opts)
			tmpl := pythonTemplate(digestA)
			if tc.tmpl != nil {
				tc.tmpl(&tmpl)
			}
			c, err := New(ctx, Config{URL: srv.URL, User: tc.user, Token: tc.secret})
			if err == nil {
				_, err = c.Register(ctx, tmpl, Options{})
			}
			var je *Error
			if !errors.As(err, &je) || je.Reason != tc.reason || je.Status != tc.status {
				t.Fatalf("want %s (HTTP %d), got %v", tc.reason, tc.status, err)
			}
			if strings.Contains(err.Error(), tc.secret) {
				t.Fatalf("the secret is in the error: %v", err)
			}
		})
	}
}

// A Kubernetes plugin too old to keep a template's identity is said first,
// before the configuration-as-code refusal: --script-console could not get
// past it anyway.
func TestRegister_PluginTooOldBeforeCascRefusal(t *testing.T) {
	f := filepath.Join(t.TempDir(), "clouds.yaml")
	if err := os.WriteFile(f, []byte(adminCasc), 0o644); err != nil {
		t.Fatal(err)
	}
	st := withOtherTemplate()
	delete(st.Clouds[1].Templates[0], "id")
	srv := jenkinstest.New(t, jenkinstest.Options{Users: []jenkinstest.User{admin}, State: st, KubernetesPluginVersion: "1.27.1", CascFile: f})
	_, err := connect(t, srv, "admin", token).Register(context.Background(), pythonTemplate(digestA), Options{})
	var je *Error
	if !errors.As(err, &je) || je.Reason != "plugin-too-old" {
		t.Errorf("want plugin-too-old, got %v", err)
	}
}

// Read and Remove start from the same cloud lookup as Register
// (cloud.groovy): a wrong cloud is refused with the same reasons, and the
// hint names the clouds there or the other cloud's kind.
func TestReadRemove_CloudErrors(t *testing.T) {
	srv := jenkinstest.New(t, jenkinstest.Options{Users: []jenkinstest.User{admin}, State: withOtherTemplate()})
	c := connect(t, srv, "admin", token)
	ctx := context.Background()
	for _, tc := range []struct{ cloud, reason, hint string }{
		{"k8s-prod", "no-such-cloud", "clouds: docker, kubernetes"},
		{"docker", "not-kubernetes", "ForeignCloud, not a Kubernetes cloud"},
	} {
		_, rerr := c.Read(ctx, tc.cloud, "maven")
		_, merr := c.Remove(ctx, tc.cloud, "maven", Options{Adopt: true})
		for op, err := range map[string]error{"read": rerr, "remove": merr} {
			var je *Error
			if !errors.As(err, &je) || je.Reason != tc.reason || !strings.Contains(je.Hint, tc.hint) {
				t.Errorf("%s on cloud %s: want %s with a hint naming %q, got %v", op, tc.cloud, tc.reason, tc.hint, err)
			}
		}
	}
}

// With a password instead of an API token, Jenkins demands the crumb of the
// session; gojenkins' crumb handling must get through.
func TestRegister_PasswordNeedsCrumb(t *testing.T) {
	srv := jenkinstest.New(t, jenkinstest.Options{Users: []jenkinstest.User{admin}, State: withOtherTemplate()})
	c := connect(t, srv, "admin", admin.Password)
	out, err := c.Register(context.Background(), pythonTemplate(digestA), Options{})
	if err != nil || out.Status != "created" {
		t.Fatalf("%+v %v", out, err)
	}
	if srv.Requests["GET /crumbIssuer/api/json/api/json"] == 0 {
		t.Errorf("no crumb was fetched: %v", srv.Requests)
	}
}

func TestClient_CrumbTransportFailureIsAnError(t *testing.T) {
	srv := jenkinstest.New(t, jenkinstest.Options{Users: []jenkinstest.User{admin}, State: withOtherTemplate()})
	c := connect(t, srv, "admin", token)
	srv.Close() // the crumb GET now fails at the transport level: gojenkins would panic
	_, err := c.Register(context.Background(), pythonTemplate(digestA), Options{})
	if err == nil || !strings.Contains(err.Error(), "crumb") {
		t.Fatalf("want a crumb error, got %v", err)
	}
}

func TestNew_InputErrors(t *testing.T) {
	for _, cfg := range []Config{
		{URL: "ftp://jenkins", User: "a", Token: "b"},
		{URL: "https://admin:secret@jenkins.example", User: "a", Token: "b"},
		{URL: "https://jenkins.example", User: "a"},
	} {
		_, err := New(context.Background(), cfg)
		var ie *InputError
		if !errors.As(err, &ie) || strings.Contains(err.Error(), "secret") {
			t.Errorf("%+v: %v", cfg, err)
		}
	}
}

func TestRegisterNode_CreateUnchangedUpdate(t *testing.T) {
	srv := jenkinstest.New(t, jenkinstest.Options{Users: []jenkinstest.User{admin}})
	c := connect(t, srv, "admin", admin.Password)
	ctx := context.Background()
	n := Node{Name: "python-1", Label: "python linux"}
	out, err := c.RegisterNode(ctx, n, Options{})
	if err != nil || out.Status != "created" || !strings.Contains(srv.Node("python-1"), "<label>python linux</label>") {
		t.Fatalf("create: %+v %v\n%s", out, err, srv.Node("python-1"))
	}
	if out, err := c.RegisterNode(ctx, n, Options{}); err != nil || out.Status != "unchanged" {
		t.Fatalf("rerun: %+v %v", out, err)
	}
	n.Label = "python <3.12> & more"
	if out, err := c.RegisterNode(ctx, n, Options{}); err != nil || out.Status != "updated" {
		t.Fatalf("update: %+v %v", out, err)
	}
	if !strings.Contains(srv.Node("python-1"), "<label>python &lt;3.12&gt; &amp; more</label>") {
		t.Fatalf("label not escaped:\n%s", srv.Node("python-1"))
	}
	if out, err := c.RemoveNode(ctx, "python-1", Options{}); err != nil || out.Status != "removed" || srv.Node("python-1") != "" {
		t.Fatalf("remove: %+v %v", out, err)
	}
	if out, err := c.RemoveNode(ctx, "python-1", Options{}); err != nil || out.Status != "unchanged" {
		t.Fatalf("remove again: %+v %v", out, err)
	}
}

// The fragment is written as the configuration-as-code plugin's own export
// writes a template: keys in order, strings double-quoted, the enum plain.
func TestCascFragment(t *testing.T) {
	tmpl := pythonTemplate(digestA)
	tmpl.Name = `python "agent"`
	y, err := CascFragment(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"- kubernetes:\n        name: \"kubernetes\"\n", ` name: "python \"agent\""`, ` label: "python"`,
		`- image: "` + digestA + `"`, ` resourceRequestCpu: "500m"`, " nodeUsageMode: EXCLUSIVE\n",
		"templates:\n          - annotations:\n",
	} {
		if !strings.Contains(y, want) {
			t.Errorf("fragment lacks %q:\n%s", want, y)
		}
	}
	if strings.Contains(y, "instanceCap") {
		t.Errorf("unlimited instanceCap should be left out:\n%s", y)
	}
}

// PodTemplate.setName trims (Util.fixEmptyAndTrim): a name with leading or
// trailing whitespace would be stored trimmed, so every run would create a
// new template and then miss it on read-back. Such names are refused before
// anything is sent.
func TestRegister_RefusesNameJenkinsWouldTrim(t *testing.T) {
	srv := jenkinstest.New(t, jenkinstest.Options{Users: []jenkinstest.User{admin}, State: withOtherTemplate()})
	c := connect(t, srv, "admin", token)
	for _, name := range []string{"py ", " py", "py\t", "py\x00", "\u00a0"} {
		tmpl := pythonTemplate(digestA)
		tmpl.Name = name
		_, err := c.Register(context.Background(), tmpl, Options{})
		var ie *InputError
		if !errors.As(err, &ie) || !strings.Contains(err.Error(), "template ") {
			t.Errorf("%q: want an input error naming the template, got %v", name, err)
		}
	}
	if n := len(srv.Scripts); n != 0 {
		t.Errorf("%d scripts were sent", n)
	}
	if got := len(srv.State().Clouds[1].Templates); got != 1 {
		t.Errorf("%d templates, want the 1 there was", got)
	}
	// A name Jenkins keeps as it is (Java's trim leaves U+00A0 alone) is
	// registered, found again, and unchanged on a second run.
	tmpl := pythonTemplate(digestA)
	tmpl.Name = "py\u00a0agent"
	for _, want := range []string{"created", "unchanged"} {
		out, err := c.Register(context.Background(), tmpl, Options{})
		if err != nil || out.Status != want || out.Template.Name != tmpl.Name {
			t.Fatalf("want %s: %+v %v", want, out, err)
		}
	}
}

// Before 1.27.2 the plugin's PodTemplate had no id (no PodTemplate(String
// id), no getId): agentforge cannot keep a template's identity there, so it
// says which plugin to update, as a refusal (exit 4), and changes nothing.
func TestRegister_KubernetesPluginTooOld(t *testing.T) {
	st := withOtherTemplate()
	delete(st.Clouds[1].Templates[0], "id")
	srv := jenkinstest.New(t, jenkinstest.Options{Users: []jenkinstest.User{admin}, State: st, KubernetesPluginVersion: "1.27.1"})
	c := connect(t, srv, "admin", token)
	ctx := context.Background()
	check := func(what string, err error) {
		t.Helper()
		var je *Error
		if !errors.As(err, &je) || je.Reason != "plugin-too-old" || !strings.Contains(je.Hint, "1.27.2") || !strings.Contains(je.Hint, "1.27.1") {
			t.Errorf("%s: want plugin-too-old naming 1.27.2 and the installed 1.27.1, got %v", what, err)
		}
	}
	_, err := c.Register(ctx, pythonTemplate(digestA), Options{})
	check("register", err)
	_, err = c.Read(ctx, "kubernetes", "maven")
	check("read", err)
	_, err = c.Remove(ctx, "kubernetes", "maven", Options{Adopt: true})
	check("remove", err)
	if s := srv.State(); s.Saves != 0 || len(s.Clouds[1].Templates) != 1 {
		t.Errorf("Jenkins changed: %+v", s)
	}
}

// A proxy (or a verbose error page) that echoes the request puts the
// Authorization header - base64 of user:token - and the crumb and session
// cookie into the body that agentforge quotes in its error. Every encoding
// of every credential sent must be scrubbed from errors and log lines.
func TestClient_ScrubsEchoedCredentials(t *testing.T) {
	for _, tc := range []struct {
		name, secret string
		status       int
	}{
		{"token, 200 without a result", token, 200},
		{"token, 502 page", token, 502},
		{"password and crumb, 200 without a result", admin.Password, 200},
		{"password and crumb, 500 page", admin.Password, 500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := jenkinstest.New(t, jenkinstest.Options{Users: []jenkinstest.User{admin}, State: withOtherTemplate(), EchoHeaders: tc.status})
			var logs bytes.Buffer
			log := logrus.New()
			log.Out, log.Level = &logs, logrus.DebugLevel
			c, err := New(context.Background(), Config{URL: srv.URL, User: admin.Name, Token: tc.secret, Log: log})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Register(context.Background(), pythonTemplate(digestA), Options{})
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), "Authorization: *****") {
				t.Errorf("the error should quote the (scrubbed) answer:\n%v", err)
			}
			basic := base64.StdEncoding.EncodeToString([]byte(admin.Name + ":" + tc.secret))
			secrets := append([]string{tc.secret, basic, admin.Name + ":" + tc.secret}, srv.Issued()...)
			if len(srv.Issued()) == 0 {
				t.Fatal("no crumb was issued")
			}
			for _, s := range secrets {
				if strings.Contains(err.Error(), s) || strings.Contains(logs.String(), s) {
					t.Errorf("%q leaked:\nerror: %v\nlogs: %s", s, err, logs.String())
				}
			}
		})
	}
}

func podmanTemplate(image string) Template {
	t := pythonTemplate(image)
	t.Privileged, t.EmptyDirs = true, []string{PodmanStorage}
	return t
}

// storedTemplate is a template as the stubs saved it.
func storedTemplate(t *testing.T, srv *jenkinstest.Server, name string) map[string]any {
	t.Helper()
	for _, c := range srv.State().Clouds {
		for _, tm := range c.Templates {
			if tm["name"] == name {
				return tm
			}
		}
	}
	t.Fatalf("no template %q stored", name)
	return nil
}

// Rootless podman in the agent needs a privileged container and its
// storage on an emptyDir (Kubernetes does not create the image's VOLUME).
// Both go through the plugin's own model (ContainerTemplate.privileged,
// EmptyDirVolume), a second run changes nothing, volumes agentforge does not
// own survive, and leaving the settings out removes them again.
func TestRegister_PodmanPodSettings(t *testing.T) {
	srv := jenkinstest.New(t, jenkinstest.Options{Users: []jenkinstest.User{admin}, State: withOtherTemplate()})
	c := connect(t, srv, "admin", token)
	ctx := context.Background()

	out, err := c.Register(ctx, podmanTemplate(digestA), Options{})
	if err != nil || out.Status != "created" || !out.Template.Privileged || strings.Join(out.Template.EmptyDirs, ",") != PodmanStorage {
		t.Fatalf("create: %+v %v", out, err)
	}
	stored := storedTemplate(t, srv, "python-agent")
	if got := mustJSON(stored["volumes"]); got != `[{"kind":"emptyDir","memory":false,"mountPath":"`+PodmanStorage+`"}]` {
		t.Errorf("volumes stored: %s", got)
	}
	if jnlp := stored["containers"].([]any)[0].(map[string]any); jnlp["privileged"] != true || jnlp["workingDir"] != AgentWorkingDir {
		t.Errorf("jnlp container stored: %v", jnlp)
	}
	saves := srv.State().Saves
	if again, err := c.Register(ctx, podmanTemplate(digestA), Options{}); err != nil || again.Status != "unchanged" {
		t.Fatalf("rerun: %+v %v", again, err)
	}

	// Someone adds a hostPath volume and a memory-backed emptyDir in the UI:
	// agentforge does not own them.
	st := srv.State()
	for _, tm := range st.Clouds[1].Templates {
		if tm["name"] == "python-agent" {
			tm["volumes"] = append([]any{
				map[string]any{"kind": "hostPath", "hostPath": "/var/cache/pip", "mountPath": "/home/jenkins/.cache/pip", "readOnly": false},
				map[string]any{"kind": "emptyDir", "mountPath": "/dev/shm", "memory": true},
			}, tm["volumes"].([]any)...)
		}
	}
	srv.SetState(st)
	if again, err := c.Register(ctx, podmanTemplate(digestA), Options{}); err != nil || again.Status != "unchanged" {
		t.Fatalf("rerun with foreign volumes: %+v %v", again, err)
	}
	if srv.State().Saves != saves {
		t.Errorf("an unchanged run saved")
	}

	// Without the podman settings: updated, agentforge's emptyDir gone, the others kept.
	plain, err := c.Register(ctx, pythonTemplate(digestA), Options{})
	if err != nil || plain.Status != "updated" || plain.Template.Privileged || len(plain.Template.EmptyDirs) != 0 {
		t.Fatalf("update: %+v %v", plain, err)
	}
	if got := mustJSON(plain.Diff); got != `[{"field":"privileged","before":"true","after":"false"},{"field":"emptyDirs","before":"`+PodmanStorage+`","after":""}]` {
		t.Errorf("diff: %s", got)
	}
	if got := mustJSON(storedTemplate(t, srv, "python-agent")["volumes"]); got != `[{"hostPath":"/var/cache/pip","kind":"hostPath","mountPath":"/home/jenkins/.cache/pip","readOnly":false},{"kind":"emptyDir","memory":true,"mountPath":"/dev/shm"}]` {
		t.Errorf("volumes after update: %s", got)
	}

	// Another volume already at a requested path wins (the plugin mounts
	// the first): agentforge warns.
	tmpl := podmanTemplate(digestA)
	tmpl.EmptyDirs = []string{"/dev/shm"}
	warned, err := c.Register(ctx, tmpl, Options{})
	if err != nil || len(warned.Warnings) != 1 || !strings.Contains(warned.Warnings[0], "EmptyDirVolume at /dev/shm") {
		t.Fatalf("want a warning about /dev/shm: %+v %v", warned, err)
	}
}

func TestCascFragment_Podman(t *testing.T) {
	y, err := CascFragment(podmanTemplate(digestA))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Jenkins struct {
			Clouds []struct {
				Kubernetes struct {
					Name      string
					Templates []struct {
						Name    string
						Volumes []struct {
							EmptyDirVolume *struct {
								MountPath string `yaml:"mountPath"`
								Memory    *bool
							} `yaml:"emptyDirVolume"`
						}
						Containers []struct {
							Name, Image string
							Privileged  bool
						}
					}
				}
			}
		}
	}
	if err := yaml.Unmarshal([]byte(y), &doc); err != nil {
		t.Fatalf("%v\n%s", err, y)
	}
	tm := doc.Jenkins.Clouds[0].Kubernetes.Templates[0]
	if len(tm.Volumes) != 1 || tm.Volumes[0].EmptyDirVolume == nil || tm.Volumes[0].EmptyDirVolume.MountPath != PodmanStorage ||
		tm.Volumes[0].EmptyDirVolume.Memory == nil || *tm.Volumes[0].EmptyDirVolume.Memory {
		t.Errorf("volumes: %+v\n%s", tm.Volumes, y)
	}
	if len(tm.Containers) != 1 || tm.Containers[0].Name != "jnlp" || !tm.Containers[0].Privileged || tm.Containers[0].Image != digestA {
		t.Errorf("containers: %+v\n%s", tm.Containers, y)
	}
	plain, _ := CascFragment(pythonTemplate(digestA))
	if strings.Contains(plain, "privileged") || strings.Contains(plain, "volumes") {
		t.Errorf("no podman settings asked for:\n%s", plain)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// Numbers in the difference keep their exact decimal form, in the text and
// in the JSON: an instance cap of 2147483647 is not 2.147483647e+09, and a
// user id past 2^53 (a value an admin could have typed into Jenkins, read
// back as it is) is not rounded to its float64 neighbour. Collections of
// numbers print them the same way.
func TestDiff_IntegersStayIntegers(t *testing.T) {
	big := int64(1<<53 + 1)
	small := int64(1000)
	before := &TemplateState{Template: Template{Name: "t", InstanceCap: 10, IdleMinutes: 0, RunAsUser: &small}}
	after := &TemplateState{Template: Template{Name: "t", InstanceCap: 2147483647, IdleMinutes: 2147483646, RunAsUser: &big}}
	got := map[string]FieldDiff{}
	for _, d := range diff(before, after) {
		got[d.Field] = d
	}
	for field, want := range map[string][2]string{
		"instanceCap": {"10", "2147483647"},
		"idleMinutes": {"0", "2147483646"},
		"runAsUser":   {"1000", "9007199254740993"},
	} {
		if d := got[field]; d.Before != want[0] || d.After != want[1] {
			t.Errorf("%s: %q -> %q, want %q -> %q", field, d.Before, d.After, want[0], want[1])
		}
	}
	out, err := json.Marshal(Outcome{Diff: diff(before, after)})
	if err != nil {
		t.Fatal(err)
	}
	if s := string(out); strings.Contains(s, "e+") || !strings.Contains(s, `"after":"9007199254740993"`) {
		t.Errorf("JSON diff: %s", s)
	}
}

// A string that is not UTF-8 reaches Jenkins as another string (JSON puts
// U+FFFD for each bad byte): the template would be created, then fail its
// read-back on this run and every later one. Such input is refused, with
// the field named, and nothing is sent.
func TestRegister_RefusesInvalidUTF8(t *testing.T) {
	srv := jenkinstest.New(t, jenkinstest.Options{Users: []jenkinstest.User{admin}, State: withOtherTemplate()})
	c := connect(t, srv, "admin", token)
	for field, set := range map[string]func(*Template){
		"template":     func(t *Template) { t.Name = "python-agent\xff" },
		"label":        func(t *Template) { t.Label = "python\xc3" },
		"inherit-from": func(t *Template) { t.InheritFrom = "base\xfe" },
		"cloud":        func(t *Template) { t.Cloud = "kubernetes\xff" },
	} {
		tmpl := pythonTemplate(digestA)
		set(&tmpl)
		_, err := c.Register(context.Background(), tmpl, Options{})
		var ie *InputError
		if !errors.As(err, &ie) || !slices.Contains(ie.Fields, field) {
			t.Errorf("%s: want an input error naming it, got %v", field, err)
		}
	}
	if n := len(srv.Scripts); n != 0 {
		t.Errorf("%d scripts were sent", n)
	}
	if got := len(srv.State().Clouds[1].Templates); got != 1 {
		t.Errorf("%d templates, want the 1 there was", got)
	}
}

// Remove takes the names Register takes: an empty name, or one Jenkins
// would have stored trimmed, names no template agentforge could have
// registered. It is bad input (exit 2), not "unchanged" (exit 0, as if
// the template were gone), and nothing is sent.
func TestRemove_RefusesNamesRegisterRefuses(t *testing.T) {
	srv := jenkinstest.New(t, jenkinstest.Options{Users: []jenkinstest.User{admin}, State: withOtherTemplate()})
	c := connect(t, srv, "admin", token)
	for _, tc := range []struct{ cloud, name, field string }{
		{"kubernetes", "", "template"},
		{"kubernetes", "maven ", "template"},
		{"kubernetes", "mav\x00en", "template"},
		{"", "maven", "cloud"},
	} {
		_, err := c.Remove(context.Background(), tc.cloud, tc.name, Options{Adopt: true})
		var ie *InputError
		if !errors.As(err, &ie) || !slices.Contains(ie.Fields, tc.field) {
			t.Errorf("cloud %q, name %q: want an input error naming %s, got %v", tc.cloud, tc.name, tc.field, err)
		}
	}
	if n := len(srv.Scripts); n != 0 {
		t.Errorf("%d scripts were sent", n)
	}
	if got := len(srv.State().Clouds[1].Templates); got != 1 {
		t.Errorf("%d templates, want the 1 there was", got)
	}
}
