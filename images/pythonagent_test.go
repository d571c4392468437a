package images_test

import (
	"errors"
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/images"
	"github.com/agentforge/agentforge/images/errs"
)

func loadPythonAgent(t *testing.T, overrides map[string]string) (*images.Definition, error) {
	t.Helper()
	fsys, name, err := images.Open("python-agent")
	if err != nil {
		t.Fatal(err)
	}
	return images.Load(fsys, name, overrides)
}

// The agent runs Java 21 unless java.version says otherwise; another JDK
// adds a -jdkN suffix to every tag, as the official agent images name
// their variants (jenkinsci/docker-agent docker-bake.hcl: the default JDK
// gets the short tags, the others "-jdkNN"), so a JDK 17 build can never
// take the default build's tag. A JDK the definition does not know is
// refused before anything is built.
func TestPythonAgent_JavaVersion(t *testing.T) {
	tests := []struct {
		set     map[string]string
		pkg     string
		tags    []string
		refused string
	}{
		{set: nil, pkg: "openjdk-21-jre-headless", tags: []string{"0.6.0-rc0", "0.6.0-rc0-python3.11.9"}},
		{set: map[string]string{"java.version": "17"}, pkg: "openjdk-17-jre-headless", tags: []string{"0.6.0-rc0-jdk17", "0.6.0-rc0-python3.11.9-jdk17"}},
		{set: map[string]string{"java.version": "25"}, pkg: "openjdk-25-jre-headless", tags: []string{"0.6.0-rc0-jdk25", "0.6.0-rc0-python3.11.9-jdk25"}},
		{set: map[string]string{"java.version": "21", "python.version": "3.11.15"}, pkg: "openjdk-21-jre-headless", tags: []string{"0.6.0-rc0", "0.6.0-rc0-python3.11.15"}},
		{set: map[string]string{"java.version": "11"}, refused: `unknown variable "java.tagSuffix.11"`},
		{set: map[string]string{"java.version": "latest"}, refused: `unknown variable "java.tagSuffix.latest"`},
	}
	for _, tt := range tests {
		t.Run(tt.set["java.version"], func(t *testing.T) {
			def, err := loadPythonAgent(t, tt.set)
			if tt.refused != "" {
				if err == nil || !strings.Contains(err.Error(), tt.refused) || !errors.Is(err, errs.ErrInput) {
					t.Fatalf("want bad input %q, got %v", tt.refused, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := def.Args["JAVA_PACKAGE"]; got != tt.pkg {
				t.Errorf("JAVA_PACKAGE %q, want %q", got, tt.pkg)
			}
			want := tt.set["java.version"]
			if want == "" {
				want = "21"
			}
			if def.Args["JAVA_VERSION"] != want || def.Labels["io.agentforge.java.version"] != want {
				t.Errorf("JAVA_VERSION %q, label %q, want %s", def.Args["JAVA_VERSION"], def.Labels["io.agentforge.java.version"], want)
			}
			if !slices.Equal(def.Tags, tt.tags) {
				t.Errorf("tags %q, want %q", def.Tags, tt.tags)
			}
		})
	}
}

// pip, setuptools, wheel and packaging are sources like CPython: each from
// PyPI's file host, pinned by sha256, placed where the Containerfile's
// bind mount finds it, with its version and sha256 passed to the build
// (which checks them again, names the file as pip expects, and makes them
// part of the step's cache key).
func TestPythonAgent_PythonTools(t *testing.T) {
	def, err := loadPythonAgent(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"pip": "26.2.1", "setuptools": "84.0.0", "wheel": "0.48.0", "packaging": "26.3"}
	pypi := regexp.MustCompile(`^https://files\.pythonhosted\.org/packages/[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{60}/([a-z]+)-([0-9.]+)-py3-none-any\.whl$`)
	found := map[string]bool{}
	for _, s := range def.Sources {
		version, ok := want[s.Name]
		if !ok {
			continue
		}
		found[s.Name] = true
		file := s.Name + "-" + version + "-py3-none-any.whl"
		m := pypi.FindStringSubmatch(s.URL)
		if m == nil || m[1] != s.Name || m[2] != version {
			t.Errorf("%s: url %s is not PyPI's %s", s.Name, s.URL, file)
		}
		if len(s.SHA256) != 64 || s.Checksum != nil {
			t.Errorf("%s: not pinned by sha256: %+v", s.Name, s)
		}
		if s.Dest != "sources/wheels/"+s.Name+".whl" {
			t.Errorf("%s: dest %s", s.Name, s.Dest)
		}
		arg := strings.ToUpper(s.Name)
		if def.Args[arg+"_VERSION"] != version || def.Args[arg+"_SHA256"] != s.SHA256 {
			t.Errorf("%s: build args %s_VERSION=%q %s_SHA256=%q", s.Name, arg, def.Args[arg+"_VERSION"], arg, def.Args[arg+"_SHA256"])
		}
	}
	if len(found) != len(want) {
		t.Errorf("sources %v, want all of %v", found, want)
	}
	if def.Sources[0].Name != "python" {
		t.Errorf("the first source is %s, not CPython", def.Sources[0].Name)
	}
}

// The Containerfile names the same package in every distribution and
// leaves the JDK to the build argument; the init the entrypoint execs is
// installed, and the entrypoint is jenkins-agent, as in the official image.
func TestPythonAgent_Containerfile(t *testing.T) {
	def, err := loadPythonAgent(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	data, err := fs.ReadFile(def.FS, def.Containerfile)
	if err != nil {
		t.Fatal(err)
	}
	cf := string(data)
	for _, want := range []string{
		`ENTRYPOINT ["/usr/local/bin/jenkins-agent"]`,
		` catatonit `,
		`"${JAVA_PACKAGE}"`,
		`--with-wheel-pkg-dir=`,
		`--mount=type=bind,source=sources/wheels,target=/usr/src/wheels`,
	} {
		if !strings.Contains(cf, want) {
			t.Errorf("Containerfile lacks %q", want)
		}
	}
	// Nothing branches on the distribution but through build arguments.
	for _, bad := range []string{"os-release", "lsb_release", "ID=ubuntu", "ID=debian", "openjdk-17", "bookworm", "noble"} {
		for _, line := range strings.Split(cf, "\n") {
			if !strings.HasPrefix(strings.TrimSpace(line), "#") && strings.Contains(line, bad) {
				t.Errorf("Containerfile branches on the distribution (%q): %s", bad, line)
			}
		}
	}
	script, err := fs.ReadFile(def.FS, "jenkins-agent")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(script), "init=/usr/bin/catatonit") {
		t.Error("jenkins-agent does not start catatonit")
	}
}
