package jenkins

import (
	"errors"
	"strings"
	"testing"
)

// instanceCap and idleMinutes are Java ints in the plugin: a larger value
// would wrap on the way (3000000000 becomes -1294967296, which the plugin
// reads as "unlimited"). Out-of-range values are refused, the flag named.
func TestTemplate_ValidateBoundsJavaInts(t *testing.T) {
	for _, tc := range []struct {
		set  func(*Template)
		flag string
	}{
		{func(t *Template) { t.InstanceCap = 3000000000 }, "instance-cap"},
		{func(t *Template) { t.InstanceCap = 2147483648 }, "instance-cap"},
		{func(t *Template) { t.InstanceCap = -2147483649 }, "instance-cap"},
		{func(t *Template) { t.IdleMinutes = 3000000000 }, "idle-minutes"},
		{func(t *Template) { t.IdleMinutes = 2147483648 }, "idle-minutes"},
		{func(t *Template) { t.IdleMinutes = -1 }, "idle-minutes"},
	} {
		tmpl := pythonTemplate(digestA)
		tc.set(&tmpl)
		err := tmpl.Validate()
		var ie *InputError
		if !errors.As(err, &ie) || !strings.Contains(err.Error(), tc.flag) {
			t.Errorf("%+v: want an input error naming %s, got %v", tmpl, tc.flag, err)
		}
		if _, err := CascFragment(tmpl); !errors.As(err, &ie) {
			t.Errorf("CascFragment: want an input error, got %v", err)
		}
	}
	for _, ok := range []func(*Template){
		func(t *Template) { t.InstanceCap = 2147483647 },
		func(t *Template) { t.InstanceCap = -1 },
		func(t *Template) { t.IdleMinutes = 2147483647 },
	} {
		tmpl := pythonTemplate(digestA)
		ok(&tmpl)
		if err := tmpl.Validate(); err != nil {
			t.Errorf("%+v: %v", tmpl, err)
		}
	}
}

func TestTemplate_ValidateEmptyDirs(t *testing.T) {
	for _, p := range []string{"relative/path", "/a/../b", "/a/", "/", "/x y", "/x'+evil()+'", "/${HOME}/x", "/a:b", AgentWorkingDir, ""} {
		tmpl := pythonTemplate(digestA)
		tmpl.EmptyDirs = []string{p}
		var ie *InputError
		if err := tmpl.Validate(); !errors.As(err, &ie) || !strings.Contains(err.Error(), "emptyDir mount path") {
			t.Errorf("%q: want an input error, got %v", p, err)
		}
	}
	tmpl := pythonTemplate(digestA)
	tmpl.EmptyDirs = []string{PodmanStorage, "/tmp/cache", PodmanStorage}
	if err := tmpl.Validate(); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("duplicate: %v", err)
	}
	tmpl.EmptyDirs = tmpl.EmptyDirs[:2]
	if err := tmpl.Validate(); err != nil {
		t.Error(err)
	}
}

// Jenkins is told only a reference Kubernetes can pull: the distribution
// reference grammar ([host[:port]/]path[:tag][@sha256:hex], lower-case
// path), never a transport (docker://, oci:, containers-storage:, an URL)
// or anything else Kubernetes would answer InvalidImageName for.
func TestTemplate_ValidateImageIsPullable(t *testing.T) {
	hex := strings.Repeat("ab", 32)
	for _, image := range []string{
		"registry.example/agents/python@sha256:" + hex,
		"registry.example:5000/agents/python@sha256:" + hex,
		"127.0.0.1:5000/agents/python@sha256:" + hex,
		"localhost/python@sha256:" + hex,
		"[::1]:5000/agents/python@sha256:" + hex,
		"registry.example/agents/python:0.6.0-rc0@sha256:" + hex,
		"python@sha256:" + hex,
		"docker.io/library/python@sha256:" + hex,
		"Registry.Example/a__b/c-d.e@sha256:" + hex,
	} {
		tmpl := pythonTemplate(image)
		if err := tmpl.Validate(); err != nil {
			t.Errorf("%s: %v", image, err)
		}
	}
	for _, image := range []string{
		"docker://registry.example/agents/python@sha256:" + hex,
		"oci:/tmp/layout@sha256:" + hex,
		"oci-archive:/tmp/a.tar@sha256:" + hex,
		"https://registry.example/agents/python@sha256:" + hex,
		"registry.example/Agents/Python@sha256:" + hex,
		"registry.example//python@sha256:" + hex,
		"registry.example/python/@sha256:" + hex,
		"registry.example/python@sha256:" + hex + "\n",
		"registry.example/py thon@sha256:" + hex,
		"registry.example/python@sha256:" + strings.ToUpper(hex),
		"registry.example/python@sha512:" + hex + hex,
		"registry.example/python:-bad@sha256:" + hex,
		"-registry.example/python@sha256:" + hex,
	} {
		tmpl := pythonTemplate(image)
		var ie *InputError
		if err := tmpl.Validate(); !errors.As(err, &ie) || !strings.Contains(err.Error(), "image") {
			t.Errorf("%q: want an input error naming the image, got %v", image, err)
		}
	}
}

// A label or inherit-from with a character Jenkins' trim drops (\v, which
// Go's \s does not match; other controls) is refused before anything is
// written: Jenkins would store another label, and every run after would
// report it changed.
func TestTemplate_ValidateLabelsAsJenkinsStoresThem(t *testing.T) {
	for _, tc := range []struct {
		label, inherit string
		flag           string
	}{
		{label: "python\v", flag: "label"},
		{label: "python\x00", flag: "label"},
		{label: "py\x7fthon", flag: "label"},
		{label: "python \u0085", flag: "label"},
		{label: "python  big", flag: "label"},
		{label: "python", inherit: "base\v", flag: "inherit-from"},
		{label: "python", inherit: "\x1fbase", flag: "inherit-from"},
	} {
		tmpl := pythonTemplate(digestA)
		tmpl.Label, tmpl.InheritFrom = tc.label, tc.inherit
		var ie *InputError
		if err := tmpl.Validate(); !errors.As(err, &ie) || !strings.Contains(err.Error(), tc.flag) {
			t.Errorf("label %q, inherit-from %q: want an input error naming %s, got %v", tc.label, tc.inherit, tc.flag, err)
		}
	}
	tmpl := pythonTemplate(digestA)
	tmpl.Label, tmpl.InheritFrom = "python linux-amd64 ünïcode", "base other"
	if err := tmpl.Validate(); err != nil {
		t.Errorf("%v", err)
	}
}
