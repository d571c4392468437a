package images

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/agentforge/agentforge/images/errs"
)

const goodYAML = `name: demo
version: 1.0.0
base:
  image: docker.io/library/debian:bookworm
variables:
  tool.version: 2.1
args:
  TOOL_VERSION: "{{tool.version}}"
labels:
  org.opencontainers.image.title: "{{name}}"
tags:
  - "{{version}}"
  - "{{version}}-tool{{tool.version}}"
sources:
  - name: tool
    url: https://example.org/tool-{{tool.version}}.tar.gz
    sha256: 2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849
    signature:
      url: "{{url}}.asc"
      fingerprint: a035 c8c1 9219 ba82 1ece a86b 64e6 28f8 d684 696d
    dest: sources/tool.tar.gz
`

const containerfile = "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN true\n"

func defFS(yaml string) fstest.MapFS {
	return fstest.MapFS{
		"image.yaml":    {Data: []byte(yaml)},
		"Containerfile": {Data: []byte(containerfile)},
	}
}

func TestLoad_RendersTemplates(t *testing.T) {
	def, err := Load(defFS(goodYAML), "testdefs/demo", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(def.Tags, ","), "1.0.0,1.0.0-tool2.1"; got != want {
		t.Errorf("tags = %s, want %s", got, want)
	}
	if def.Args["TOOL_VERSION"] != "2.1" || def.Labels["org.opencontainers.image.title"] != "demo" {
		t.Errorf("args/labels not rendered: %v %v", def.Args, def.Labels)
	}
	src := def.Sources[0]
	if src.URL != "https://example.org/tool-2.1.tar.gz" || src.Signature.URL != src.URL+".asc" {
		t.Errorf("source urls: %q %q", src.URL, src.Signature.URL)
	}
	if src.Signature.Fingerprint != "A035C8C19219BA821ECEA86B64E628F8D684696D" {
		t.Errorf("fingerprint not normalised: %q", src.Signature.Fingerprint)
	}
	if def.Platforms[0] != "linux/amd64" || def.Base.Ref() != "docker.io/library/debian:bookworm" {
		t.Errorf("defaults: %v %q", def.Platforms, def.Base.Ref())
	}
}

func TestLoad_Overrides(t *testing.T) {
	def, err := Load(defFS(goodYAML), "d", map[string]string{
		"tool.version": "3.0", "version": "2.0.0", "labels.extra": "x",
		"base.digest": "sha256:" + strings.Repeat("a", 64),
	})
	if err != nil {
		t.Fatal(err)
	}
	if def.Sources[0].URL != "https://example.org/tool-3.0.tar.gz" || def.Tags[0] != "2.0.0" || def.Labels["extra"] != "x" {
		t.Errorf("overrides not applied: %v %v %v", def.Sources[0].URL, def.Tags, def.Labels)
	}
	if !strings.HasSuffix(def.Base.Ref(), "@sha256:"+strings.Repeat("a", 64)) {
		t.Errorf("base ref %q", def.Base.Ref())
	}
}

// Each case breaks goodYAML in one way; the error must name the file and the
// line of the offending value.
func TestLoad_ErrorsNameFileAndLine(t *testing.T) {
	cases := []struct {
		name, old, new string
		overrides      map[string]string
		want           string
	}{
		{"unknown top-level key", "version: 1.0.0", "version: 1.0.0\nflavour: x", nil, `d/image.yaml:3: unknown key "flavour"`},
		{"unknown nested key", "    dest: sources/tool.tar.gz", "    dest: sources/tool.tar.gz\n    mode: 0644", nil, `d/image.yaml:22: unknown key "mode"`},
		{"bad sha256", "sha256: 2411", "sha256: zz11", nil, `d/image.yaml:17: source "tool": sha256`},
		{"unknown variable", "{{tool.version}}.tar.gz", "{{tool.versoin}}.tar.gz", nil, `d/image.yaml:16: unknown variable "tool.versoin"`},
		{"list where a value belongs", "version: 1.0.0", "version: [1, 2]", nil, "d/image.yaml:2: expected a single value, found a list"},
		{"mapping where the sources list belongs", goodYAML[strings.Index(goodYAML, "sources:"):], "sources: {name: a}\n", nil, "d/image.yaml:14: expected a list, found a mapping"},
		{"value where the sources list belongs", goodYAML[strings.Index(goodYAML, "sources:"):], "sources: a\n", nil, "d/image.yaml:14: expected a list, found a value"},
		{"list where the variables mapping belongs", "variables:\n  tool.version: 2.1\n", "variables: [a]\n", nil, "d/image.yaml:5: expected a mapping, found a list"},
		{"bad base", "debian:bookworm", "Debian:Bookworm", nil, "d/image.yaml:4: base.image"},
		{"bad fingerprint", "fingerprint: a035", "fingerprint: g035", nil, `d/image.yaml:20: source "tool": signature.fingerprint`},
		{"short fingerprint", "fingerprint: a035 c8c1 9219 ba82 1ece a86b 64e6 28f8 d684 696d", "fingerprint: D684696D", nil, `d/image.yaml:20: source "tool": signature.fingerprint`},
		{"escaping dest", "dest: sources/tool.tar.gz", "dest: ../../etc/passwd", nil, `d/image.yaml:21: source "tool": dest "../../etc/passwd" must stay inside`},
		{"unchecked download", "    sha256: 2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849\n    signature:\n      url: \"{{url}}.asc\"\n      fingerprint: a035 c8c1 9219 ba82 1ece a86b 64e6 28f8 d684 696d\n", "", nil, `d/image.yaml:15: source "tool": a downloaded file needs sha256 or checksum`},
		{"bad tag", `"{{version}}-tool{{tool.version}}"`, `"bad tag"`, nil, `d/image.yaml:13: tag "bad tag"`},
		{"bad platform", "tags:", "platforms: [amd64]\ntags:", nil, `d/image.yaml:11: platform "amd64"`},
		{"unknown --set key", "", "", map[string]string{"tool.verison": "1"}, "d/image.yaml: set tool.verison: no such variable"},
		{"not yaml", "name: demo", "name: [demo", nil, "d/image.yaml:1: did not find expected"},
		{"epoch past 9999", "tags:", "sourceDateEpoch: 253402300800\ntags:", nil, `d/image.yaml:11: sourceDateEpoch "253402300800": want seconds since 1970, before the year 10000`},
		{"newline in a label", "tags:", "  description: |\n    two words\ntags:", nil, `d/image.yaml:11: label "description": value "two words\n" contains a control character`},
		{"dollar in a label", "tags:", "  price: \"$5\"\ntags:", nil, `d/image.yaml:11: label "price": value "$5" contains "$"`},
		{"unclosed list names its line", "tags:", "platforms: [linux/amd64\ntags:", nil, "d/image.yaml:11: did not find expected"},
		{"unclosed list before a key names its line", "version: 1.0.0", "version: [1.0.0\nx: 1", nil, "d/image.yaml:2: did not find expected"},
		{"source platform not declared", "    dest: sources/tool.tar.gz", "    dest: sources/tool.tar.gz\n    platforms: [linux/arm64]", nil, `d/image.yaml:22: source "tool": platform "linux/arm64" is not one of the definition's platforms (linux/amd64)`},
		{"two sources on one dest and platform", "    dest: sources/tool.tar.gz\n", "    dest: sources/tool.tar.gz\n  - name: other\n    url: file:///bin/true\n    dest: sources/tool.tar.gz\n", nil, `d/image.yaml:24: source "other": dest "sources/tool.tar.gz" is also source "tool"'s on the same platform`},
		{"dest replaces the Containerfile", "dest: sources/tool.tar.gz", "dest: Containerfile", nil, `d/image.yaml:21: source "tool": dest "Containerfile": Containerfile is in the definition folder`},
		{"dest replaces image.yaml", "dest: sources/tool.tar.gz", "dest: ./image.yaml", nil, `d/image.yaml:21: source "tool": dest "./image.yaml": image.yaml is in the definition folder`},
		{"dest under a file", "dest: sources/tool.tar.gz", "dest: Containerfile/tool.tar.gz", nil, `d/image.yaml:21: source "tool": dest "Containerfile/tool.tar.gz": Containerfile is in the definition folder`},
		{"base image as a build argument", "  TOOL_VERSION:", "  BASE_IMAGE: docker.io/library/alpine:3\n  TOOL_VERSION:", nil, `d/image.yaml:8: build argument BASE_IMAGE is base.image's`},
		{"base image as a --set build argument", "", "", map[string]string{"args.BASE_IMAGE": "docker.io/library/alpine:3"}, `d/image.yaml: build argument BASE_IMAGE is base.image's`},
		{"file and checksum over plain http", "    url: https://example.org/tool-{{tool.version}}.tar.gz\n    sha256: 2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849\n    signature:\n      url: \"{{url}}.asc\"\n      fingerprint: a035 c8c1 9219 ba82 1ece a86b 64e6 28f8 d684 696d\n", "    url: http://example.org/tool-{{tool.version}}.tar.gz\n    checksum:\n      url: \"{{url}}.sha256\"\n      algorithm: sha256\n", nil, `d/image.yaml:18: source "tool": the file and its checksum both come over plain http`},
		{"file over plain http, checksum over HTTP in capitals", "    url: https://example.org/tool-{{tool.version}}.tar.gz\n    sha256: 2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849\n    signature:\n      url: \"{{url}}.asc\"\n      fingerprint: a035 c8c1 9219 ba82 1ece a86b 64e6 28f8 d684 696d\n", "    url: http://example.org/tool-{{tool.version}}.tar.gz\n    checksum:\n      url: HTTP://example.org/tool.sha256\n      algorithm: sha256\n", nil, `d/image.yaml:18: source "tool": the file and its checksum both come over plain http`},
		{"relative file URL", "https://example.org/tool-{{tool.version}}.tar.gz", "file://rootfs/tool.tar.gz", nil, `d/image.yaml:16: source "tool": url "file://rootfs/tool.tar.gz": a file:// URL needs an absolute path`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			y := goodYAML
			if tc.old != "" {
				if !strings.Contains(y, tc.old) {
					t.Fatalf("test bug: %q not in the fixture", tc.old)
				}
				y = strings.Replace(y, tc.old, tc.new, 1)
			}
			_, err := Load(defFS(y), "d", tc.overrides)
			var de *DefinitionError
			if !errors.As(err, &de) {
				t.Fatalf("want a *DefinitionError, got %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

func TestLoad_ReportsEveryProblem(t *testing.T) {
	y := strings.Replace(goodYAML, "name: demo", "name: Demo!", 1)
	y = strings.Replace(y, "image: docker.io/library/debian:bookworm", "image: \"\"", 1)
	_, err := Load(defFS(y), "d", nil)
	if err == nil || !strings.Contains(err.Error(), "d/image.yaml:1: name") || !strings.Contains(err.Error(), "d/image.yaml:4: base.image is required") {
		t.Fatalf("want both problems reported, got %v", err)
	}
}

func TestLoad_ContainerfileMustUseBase(t *testing.T) {
	fsys := defFS(goodYAML)
	fsys["Containerfile"] = &fstest.MapFile{Data: []byte("FROM docker.io/library/alpine\n")}
	_, err := Load(fsys, "d", nil)
	if err == nil || !strings.Contains(err.Error(), `no "FROM ${BASE_IMAGE}" line`) {
		t.Fatalf("got %v", err)
	}
}

// The final stage must build on ${BASE_IMAGE}, directly or through the
// stages it names: a FROM ${BASE_IMAGE} in a builder stage is not enough.
func TestLoad_FinalStageMustBuildOnBase(t *testing.T) {
	for _, tc := range []struct {
		name, containerfile string
		ok                  bool
	}{
		{"single stage", "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN true\n", true},
		{"through a named stage", "ARG BASE_IMAGE\nFROM ${BASE_IMAGE} AS base\nRUN true\nFROM golang AS build\nRUN true\nFROM base\nCOPY --from=build /x /x\n", true},
		{"final stage elsewhere", "ARG BASE_IMAGE\nFROM ${BASE_IMAGE} AS build\nRUN true\nFROM docker.io/library/alpine\nCOPY --from=build /x /x\n", false},
		{"a cycle of names", "FROM ${BASE_IMAGE} AS x\nFROM b AS a\nFROM a AS b\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := defFS(goodYAML)
			fsys["Containerfile"] = &fstest.MapFile{Data: []byte(tc.containerfile)}
			_, err := Load(fsys, "d", nil)
			if tc.ok != (err == nil) || !tc.ok && !strings.Contains(err.Error(), "the final stage does not build on ${BASE_IMAGE}") {
				t.Fatalf("ok=%t: %v", tc.ok, err)
			}
		})
	}
}

func TestOpen_BuiltinPythonAgent(t *testing.T) {
	for _, arg := range []string{"python-agent", "images/python-agent"} {
		fsys, name, err := Open(arg)
		if err != nil {
			t.Fatalf("Open(%q): %v", arg, err)
		}
		def, err := Load(fsys, name, nil)
		if err != nil {
			t.Fatalf("Load(%q): %v", arg, err)
		}
		if def.Version != "0.6.0-rc0" || def.Vars["python.version"] != "3.11.9" {
			t.Errorf("%s: version %s python %s", arg, def.Version, def.Vars["python.version"])
		}
		py := def.Sources[0]
		if py.URL != "https://www.python.org/ftp/python/3.11.9/Python-3.11.9.tar.xz" ||
			py.SHA256 != "9b1e896523fc510691126c864406d9360a3d1e986acbda59cda57b5abda45b87" ||
			py.Signature.Fingerprint != "A035C8C19219BA821ECEA86B64E628F8D684696D" {
			t.Errorf("python source: %+v %+v", py, py.Signature)
		}
	}
	if _, _, err := Open("no-such-image"); err == nil || !strings.Contains(err.Error(), "built-in: python-agent") {
		t.Errorf("Open(no-such-image) = %v", err)
	}
}

func TestParseOverrides(t *testing.T) {
	m, err := ParseOverrides([]string{"a=b=c", "x="})
	if err != nil || m["a"] != "b=c" || m["x"] != "" {
		t.Fatalf("%v %v", m, err)
	}
	if _, err := ParseOverrides([]string{"novalue"}); err == nil {
		t.Fatal("want an error for a pair without =")
	}
}

// A symbolic link anywhere in the definition folder (the build context) is
// refused, named by its path: a linked folder would let a source's dest or a
// COPY reach outside the context.
func TestLoad_SymlinksRefused(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "image.yaml"), []byte(goodYAML), 0o644)
	os.WriteFile(filepath.Join(dir, "Containerfile"), []byte(containerfile), 0o644)
	os.Symlink("/etc", filepath.Join(dir, "sources"))
	os.Symlink("/etc/passwd", filepath.Join(dir, "passwd"))
	_, err := Load(os.DirFS(dir), "d", nil)
	for _, want := range []string{"d/sources: is a symbolic link", "d/passwd: is a symbolic link"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
	if !errors.Is(err, errs.ErrInput) {
		t.Errorf("not bad input: %v", err)
	}
}

func TestLoad_PerPlatformSources(t *testing.T) {
	y := strings.Replace(goodYAML, "tags:", "platforms: [linux/amd64, linux/arm64]\ntags:", 1)
	y = strings.Replace(y, "    dest: sources/tool.tar.gz\n", "    dest: sources/tool.tar.gz\n    platforms: [linux/amd64]\n  - name: tool-arm64\n    url: https://example.org/tool-arm64.tar.gz\n    sha256: 2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849\n    dest: sources/tool.tar.gz\n    platforms: [linux/arm64]\n  - name: common\n    url: file:///bin/true\n    dest: tools/true\n", 1)
	def, err := Load(defFS(y), "d", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		platform string
		want     string
	}{
		{"linux/amd64", "tool common"},
		{"linux/arm64", "tool-arm64 common"},
	} {
		var got []string
		for _, s := range def.Sources {
			if s.ForPlatform(tc.platform) {
				got = append(got, s.Name)
			}
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("%s: sources %v, want %s", tc.platform, got, tc.want)
		}
	}
}

// A checksum fetched over https checks a file fetched over plain http, and
// the other way round: only both over plain http is refused (see
// TestLoad_ErrorsNameFileAndLine).
func TestLoad_ChecksumWithOneSideOverHTTPS(t *testing.T) {
	old := "    url: https://example.org/tool-{{tool.version}}.tar.gz\n    sha256: 2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849\n    signature:\n      url: \"{{url}}.asc\"\n      fingerprint: a035 c8c1 9219 ba82 1ece a86b 64e6 28f8 d684 696d\n"
	for _, urls := range [][2]string{
		{"http://example.org/tool.tar.gz", "https://example.org/tool.tar.gz.sha256"},
		{"https://example.org/tool.tar.gz", "http://example.org/tool.tar.gz.sha256"},
	} {
		y := strings.Replace(goodYAML, old, "    url: "+urls[0]+"\n    checksum:\n      url: "+urls[1]+"\n      algorithm: sha256\n", 1)
		if y == goodYAML {
			t.Fatal("test bug: fixture not changed")
		}
		if _, err := Load(defFS(y), "d", nil); err != nil {
			t.Errorf("%s with %s: %v", urls[0], urls[1], err)
		}
	}
}
