package builder

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agentforge/agentforge/builder/oci"
)

// keyCase is a Containerfile and what it is built with.
type keyCase struct {
	containerfile string
	files         map[string]string
	modes         map[string]os.FileMode
	mtimes        map[string]time.Time
	args          map[string]string
	labels        []string
	platform      oci.Platform
	epoch         time.Time
}

var keyEpoch = time.Unix(1700000000, 0).UTC()

func (c keyCase) plan(t *testing.T) []cacheStep {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Containerfile"), []byte(c.containerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, data := range c.files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if m, ok := c.modes[name]; ok {
			mode = m
		}
		if err := os.WriteFile(p, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		mt := time.Now()
		if m, ok := c.mtimes[name]; ok {
			mt = m
		}
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	if c.platform == (oci.Platform{}) {
		c.platform = oci.Platform{OS: "linux", Arch: "amd64"}
	}
	if c.epoch.IsZero() {
		c.epoch = keyEpoch
	}
	steps, _, err := keyPlan(context.Background(), keyInput{
		Containerfile: filepath.Join(dir, "Containerfile"), ContextDir: dir, Args: c.args, Labels: c.labels,
		Platform: c.platform, Epoch: c.epoch,
	})
	if err != nil {
		t.Fatal(err)
	}
	return steps
}

// changed lists the steps whose keys differ between a and b.
func changed(t *testing.T, a, b []cacheStep) []int {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%d steps, then %d", len(a), len(b))
	}
	var out []int
	for i := range a {
		if a[i].Key == "" || b[i].Key == "" {
			t.Fatalf("step %d (%s) has no key: %s%s", i, a[i].Instruction, a[i].Why, b[i].Why)
		}
		if a[i].Key != b[i].Key {
			out = append(out, i)
		}
	}
	return out
}

func from(i, n int) []int {
	var out []int
	for ; i < n; i++ {
		out = append(out, i)
	}
	return out
}

// Each input of a step changes the key of that step and of every step
// after it, and of no step before it; what is not an input changes
// nothing.
func TestKeyPlan_Inputs(t *testing.T) {
	old := keyEpoch.Add(-time.Hour)
	base := keyCase{
		containerfile: `FROM scratch
COPY app /app
ARG EARLY
ENV GREETING=${EARLY}
RUN --mount=type=bind,source=src.tar,target=/src.tar ["/bin/true"]
ARG LATE
WORKDIR /work/${LATE}
COPY conf/ /etc/conf/
`,
		files:  map[string]string{"app": "app 1", "src.tar": "tarball 1", "conf/a": "a", "conf/b": "b"},
		mtimes: map[string]time.Time{"app": old},
		args:   map[string]string{"EARLY": "e1", "LATE": "l1", "UNUSED": "u1"},
		labels: []string{"org.example.version=1"},
	}
	// Steps: 0 COPY app, 1 ARG EARLY, 2 ENV, 3 RUN, 4 ARG LATE, 5 WORKDIR,
	// 6 COPY conf, 7 LABEL.
	const n = 8
	with := func(edit func(c *keyCase)) keyCase {
		c := base
		c.files = map[string]string{}
		for k, v := range base.files {
			c.files[k] = v
		}
		c.args = map[string]string{}
		for k, v := range base.args {
			c.args[k] = v
		}
		c.modes, c.mtimes = map[string]os.FileMode{}, map[string]time.Time{"app": old}
		edit(&c)
		return c
	}
	for _, tc := range []struct {
		name string
		edit func(c *keyCase)
		want []int
	}{
		{"nothing", func(c *keyCase) {}, nil},
		{"COPY source content", func(c *keyCase) { c.files["app"] = "app 2" }, from(0, n)},
		{"COPY source mode", func(c *keyCase) { c.modes["app"] = 0o755 }, from(0, n)},
		{"COPY source time before the epoch", func(c *keyCase) { c.mtimes["app"] = old.Add(-time.Hour) }, from(0, n)},
		// Later than the epoch, a time is clamped to it in the layer.
		{"COPY source times after the epoch", func(c *keyCase) { c.mtimes["conf/a"] = time.Now().Add(time.Hour) }, nil},
		{"a file in a copied folder", func(c *keyCase) { c.files["conf/c"] = "c" }, from(6, n)},
		// ENV GREETING=${EARLY}: buildah's own key misses this one
		// (containers/buildah#5575).
		{"build argument used by ENV", func(c *keyCase) { c.args["EARLY"] = "e2" }, from(1, n)},
		{"bind-mounted tarball content", func(c *keyCase) { c.files["src.tar"] = "tarball 2" }, from(3, n)},
		{"bind-mounted tarball time (not in any layer)", func(c *keyCase) { c.mtimes["src.tar"] = old }, nil},
		{"build argument declared late", func(c *keyCase) { c.args["LATE"] = "l2" }, from(4, n)},
		{"build argument never declared", func(c *keyCase) { c.args["UNUSED"] = "u2" }, nil},
		{"labels", func(c *keyCase) { c.labels = []string{"org.example.version=2"} }, []int{7}},
		{"platform", func(c *keyCase) { c.platform = oci.Platform{OS: "linux", Arch: "arm64"} }, from(0, n)},
		{"timestamp", func(c *keyCase) { c.epoch = keyEpoch.Add(time.Second) }, from(0, n)},
		{"ignore file", func(c *keyCase) { c.files[".containerignore"] = "conf/b\n" }, from(0, n)},
		{"a step's text", func(c *keyCase) {
			c.containerfile = strings.Replace(c.containerfile, `["/bin/true"]`, `["/bin/false"]`, 1)
		}, from(3, n)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := base.plan(t), with(tc.edit).plan(t)
			if len(a) != n {
				t.Fatalf("%d steps, want %d", len(a), n)
			}
			if got := changed(t, a, b); !slices.Equal(got, tc.want) {
				t.Errorf("changed steps %v, want %v", got, tc.want)
			}
		})
	}
}

// A stage copied from carries its key into the step that copies: a change
// in the first stage changes the second stage from that step on.
func TestKeyPlan_Stages(t *testing.T) {
	c := keyCase{
		containerfile: `FROM scratch AS build
COPY src /src
FROM scratch
COPY other /other
COPY --from=build /src /src
RUN --mount=type=bind,from=build,source=/src,target=/mnt ["/bin/true"]
`,
		files: map[string]string{"src": "1", "other": "o"},
	}
	a := c.plan(t)
	c.files = map[string]string{"src": "2", "other": "o"}
	b := c.plan(t)
	if got := changed(t, a, b); !slices.Equal(got, []int{0, 2, 3}) {
		t.Errorf("changed steps %v, want [0 2 3]", got)
	}
	if a[1].StageName != "1" || a[0].StageName != "build" {
		t.Errorf("stages %q %q", a[0].StageName, a[1].StageName)
	}
}

// What cannot be known before the build cannot be cached: the step and
// every later one in its stage get no key, with a reason.
func TestKeyPlan_Uncacheable(t *testing.T) {
	for _, tc := range []struct {
		step, why string
		cacheable bool
	}{
		{"ADD https://example.org/a.tar.gz /a", "without --checksum", false},
		{"ADD --checksum=sha256:2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849 https://example.org/a.tar.gz /a", "", true},
		{"COPY --from=example.org/tool:1 /bin/tool /bin/tool", "not pinned by digest", false},
		{"COPY --from=example.org/tool@sha256:2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849 /bin/tool /bin/tool", "", true},
		{"RUN --mount=type=bind,from=example.org/tool:1,target=/t true", "not pinned by digest", false},
		{"RUN --mount=type=cache,target=/root/.cache true", "", true},
	} {
		t.Run(tc.step, func(t *testing.T) {
			steps := keyCase{containerfile: "FROM scratch\nCOPY a /a\n" + tc.step + "\nCOPY a /b\n", files: map[string]string{"a": "a"}}.plan(t)
			if steps[0].Key == "" {
				t.Fatalf("the step before: %+v", steps[0])
			}
			for _, s := range steps[1:] {
				if (s.Key != "") != tc.cacheable || !strings.Contains(s.Why, tc.why) {
					t.Errorf("step %d: key %q, why %q", s.Index, s.Key, s.Why)
				}
			}
		})
	}
}

// A FROM image that is not in the store cannot be keyed; one that is
// (the definition's base, pulled before the build) is keyed by its ID.
func TestKeyPlan_FromImageNotInStore(t *testing.T) {
	steps := keyCase{containerfile: "FROM example.org/base:1\nCOPY a /a\n", files: map[string]string{"a": "a"}}.plan(t)
	if len(steps) != 1 || steps[0].Key != "" || !strings.Contains(steps[0].Why, "not in local storage") {
		t.Fatalf("%+v", steps)
	}
}

// The key is built from length-prefixed fields: moving text from one field
// to the next gives another key.
func TestKeyHash_Fields(t *testing.T) {
	sum := func(fields ...string) string {
		h := newKeyHash()
		h.add("x", fields...)
		return h.sum()
	}
	if sum("ab", "c") == sum("a", "bc") || sum("a", "") == sum("a") {
		t.Fatal("field boundaries are not in the hash")
	}
}

// images/python-agent: a CPython bump (a new version argument and tarball)
// changes the keys from the CPython step's arguments on, and neither the
// agent tools' step nor the configuration copied before it: only the
// CPython step and those after it run again. A remoting bump changes only
// the steps from the jar's.
func TestKeyPlan_PythonAgentBump(t *testing.T) {
	def, err := os.ReadFile(filepath.Join("..", "images", "python-agent", "Containerfile"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"sources/python.tar": "Python-3.11.9", "sources/agent.jar": "remoting 1"}
	for _, f := range []string{"containers.conf", "storage.conf", "podman-containers.conf", "jenkins-agent"} {
		data, err := os.ReadFile(filepath.Join("..", "images", "python-agent", f))
		if err != nil {
			t.Fatal(err)
		}
		files[f] = string(data)
	}
	args := map[string]string{"BASE_IMAGE": "scratch", "PYTHON_VERSION": "3.11.9", "PYTHON_CONFIGURE_EXTRA": "", "JAVA_PACKAGE": "openjdk-17-jre-headless", "REMOTING_VERSION": "1"}
	plan := func(edit func(files, args map[string]string)) []cacheStep {
		c := keyCase{containerfile: string(def), files: map[string]string{}, args: map[string]string{}, mtimes: map[string]time.Time{}}
		for k, v := range files {
			c.files[k] = v
			c.mtimes[k] = keyEpoch.Add(-time.Hour)
		}
		for k, v := range args {
			c.args[k] = v
		}
		edit(c.files, c.args)
		return c.plan(t)
	}
	first := func(steps []int, plan []cacheStep) string {
		if len(steps) == 0 {
			return ""
		}
		return plan[steps[0]].Instruction
	}
	base := plan(func(map[string]string, map[string]string) {})
	bump := plan(func(f, a map[string]string) {
		f["sources/python.tar"] = "Python-3.11.10"
		a["PYTHON_VERSION"] = "3.11.10"
	})
	got := changed(t, base, bump)
	if first(got, base) != "ARG PYTHON_VERSION" || !slices.Equal(got, from(got[0], len(base))) {
		t.Errorf("a CPython bump changes steps %v, from %q; want every step from ARG PYTHON_VERSION", got, first(got, base))
	}
	// The first RUN installs the agent tools; it must not run again.
	for i, s := range base {
		if strings.HasPrefix(s.Instruction, "RUN ") {
			if slices.Contains(got, i) {
				t.Errorf("a CPython bump re-runs the agent tools' step %d (%s)", i, s.Instruction)
			}
			break
		}
	}
	remoting := plan(func(f, a map[string]string) { f["sources/agent.jar"] = "remoting 2"; a["REMOTING_VERSION"] = "2" })
	if got := changed(t, base, remoting); first(got, base) != "ARG REMOTING_VERSION" {
		t.Errorf("a remoting bump changes steps from %q", first(got, base))
	}
}
