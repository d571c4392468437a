package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/builder/buildertest"
	"github.com/agentforge/agentforge/builder/oci/ocitest"
	"github.com/agentforge/agentforge/publisher/registrytest"
	"github.com/containers/buildah"
)

// The CLI tests run the real command in-process: builds need root, cgo and
// Debian's busybox-static (installed by .ci/run).

func TestMain(m *testing.M) {
	if buildah.InitReexec() {
		return
	}
	os.Exit(m.Run())
}

// cli runs agentforge with args and returns its exit code, stdout and stderr.
func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func storeFlags(t *testing.T) []string {
	return []string{"--storage-root", filepath.Join(t.TempDir(), "storage"), "--storage-driver", "vfs"}
}

func TestCLI_BuildVerifyJSONAndExitCodes(t *testing.T) {
	buildertest.Builds(t)
	sf := storeFlags(t)
	cache := buildertest.SourceCache(t)
	code, stdout, stderr := cli(t, append([]string{"build", "../../testdata/busybox", "-o", "json", "--cache-dir", cache}, sf...)...)
	if code != 0 {
		t.Fatalf("build exit %d\n%s", code, stderr)
	}
	var build struct {
		ID     string   `json:"id"`
		Digest string   `json:"digest"`
		Tags   []string `json:"tags"`
		Base   struct {
			Ref    *string `json:"ref"`
			Digest *string `json:"digest"`
		} `json:"base"`
		Layers []struct {
			Digest, DiffID, MediaType string
			Size                      int64
		} `json:"layers"`
	}
	if err := json.Unmarshal([]byte(stdout), &build); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, stdout)
	}
	if build.ID == "" || !strings.HasPrefix(build.Digest, "sha256:") || len(build.Tags) != 2 || build.Base.Ref == nil || build.Base.Digest == nil || len(build.Layers) != 3 {
		t.Fatalf("build JSON misses keys: %s", stdout)
	}
	if !strings.Contains(stderr, "STEP 4/7: RUN") {
		t.Errorf("build steps should be shown on stderr:\n%s", stderr)
	}

	code, stdout, stderr = cli(t, append([]string{"verify", "busybox-demo:1.0.0", "-o", "json"}, sf...)...)
	if code != 0 {
		t.Fatalf("verify exit %d\n%s", code, stderr)
	}
	var ver struct {
		Ref    string `json:"ref"`
		Digest string `json:"digest"`
		OK     bool   `json:"ok"`
		Layers []struct {
			Digest, DiffID string
			Size           int64
			OK             bool
		} `json:"layers"`
	}
	if err := json.Unmarshal([]byte(stdout), &ver); err != nil {
		t.Fatalf("verify JSON: %v\n%s", err, stdout)
	}
	if !ver.OK || ver.Digest != build.Digest || len(ver.Layers) != 3 || ver.Layers[2].Digest != build.Layers[2].Digest {
		t.Fatalf("verify JSON: %s", stdout)
	}

	// Alter a layer on disk: exit 3, the failing layer named.
	matches, _ := filepath.Glob(filepath.Join(sf[1], "vfs", "dir", "*", "etc", "motd"))
	if len(matches) != 1 {
		t.Fatalf("motd in %d layers", len(matches))
	}
	if err := os.WriteFile(matches[0], []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = cli(t, append([]string{"verify", "busybox-demo:1.0.0", "-o", "json"}, sf...)...)
	if code != 3 || !strings.Contains(stderr, "layer 2 "+build.Layers[2].Digest) || !strings.Contains(stdout, `"ok": false`) {
		t.Fatalf("tampered: exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
}

func TestCLI_BadInput(t *testing.T) {
	badDef := t.TempDir()
	os.WriteFile(filepath.Join(badDef, "image.yaml"), []byte("name: x\nversion: 1\nbase:\n  image: scratch\n  colour: red\n"), 0o644)
	os.WriteFile(filepath.Join(badDef, "Containerfile"), []byte("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n"), 0o644)
	sf := storeFlags(t)
	layout := filepath.Join(t.TempDir(), "layout")
	ocitest.Layout(t, mkdir(t, layout), "1", ocitest.Options{Layers: 1, Size: 1024})
	badAuth := filepath.Join(t.TempDir(), "auth.json")
	os.WriteFile(badAuth, []byte("{not json"), 0o600)
	// What c/image cannot decode, it fails every request on, as if the
	// registry were at fault; the entry's text stays out of the error.
	badEntry := filepath.Join(t.TempDir(), "auth.json")
	os.WriteFile(badEntry, []byte(`{"auths": {"127.0.0.1:5000": {"auth": "alice:S3cr3t-not-base64"}}}`), 0o600)
	badAuths := filepath.Join(t.TempDir(), "auth.json")
	os.WriteFile(badAuths, []byte(`{"auths": ["127.0.0.1:5000"]}`), 0o600)
	reg := registrytest.New(t, registrytest.Options{})
	if code, _, stderr := cli(t, "publish", "oci:"+layout+":1", "--to", reg.Host+"/team/app:1", "--insecure-registry", reg.Host); code != 0 {
		t.Fatalf("set-up publish: exit %d\n%s", code, stderr)
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"build", "--frobnicate"}, "unknown flag: --frobnicate"},
		{"bad output format", []string{"version", "-o", "yaml"}, `--output "yaml"`},
		{"definition error with line", append([]string{"build", badDef}, sf...), "image.yaml:5: unknown key \"colour\""},
		{"no such definition", append([]string{"build", "no/such/dir"}, sf...), "no image.yaml there"},
		{"bad --set", append([]string{"build", "../../testdata/busybox", "--set", "greting=x"}, sf...), "set greting: no such variable"},
		{"unknown image", append([]string{"verify", "nothing-here:1"}, sf...), `image "nothing-here:1" not found`},
		{"bad storage driver", []string{"verify", "x", "--storage-driver", "zfs", "--storage-root", t.TempDir()}, `storage driver "zfs"`},
		{"too many args", []string{"verify", "a", "b"}, "accepts 1 arg"},
		{"no such layout", []string{"verify", "oci:/nonexistent/layout:1"}, `reference "oci:/nonexistent/layout:1"`},
		{"undeclared platform", append([]string{"build", "../../testdata/busybox", "--platform", "linux/s390x"}, sf...), "declares linux/amd64, linux/arm64, not linux/s390x"},
		{"a folder that is not a layout", []string{"verify", "oci:" + t.TempDir() + ":1"}, "no OCI layout there"},
		{"empty oci reference", []string{"verify", "oci:"}, `reference "oci:"`},
		{"port out of range", []string{"verify", "docker://127.0.0.1:99999/a/b:1"}, `port "99999"`},
		{"tag with a space", []string{"verify", "docker://127.0.0.1:5000/a/b:t g"}, `reference "docker://127.0.0.1:5000/a/b:t g"`},
		{"destination host prefix is not a host", []string{"publish", "oci:" + layout, "--to", "localhostfoo/team/app"}, "a bare name would mean Docker Hub"},
		{"destination port out of range", []string{"publish", "oci:" + layout, "--to", "127.0.0.1:70000/team/app:1"}, `port "70000"`},
		{"missing auth file", []string{"publish", "oci:" + layout, "--to", "127.0.0.1:5000/team/app:1", "--authfile", "/nonexistent/auth.json"}, "auth file"},
		{"malformed auth file", []string{"publish", "oci:" + layout, "--to", "127.0.0.1:5000/team/app:1", "--authfile", badAuth}, "not a JSON object"},
		{"auth entry not base64", []string{"publish", "oci:" + layout, "--to", "127.0.0.1:5000/team/app:1", "--authfile", badEntry}, `"auth" of 127.0.0.1:5000 is not base64`},
		{"auths not an object", []string{"publish", "oci:" + layout, "--to", "127.0.0.1:5000/team/app:1", "--authfile", badAuths}, `auths is a JSON array`},
		{"tag not on the registry", []string{"verify", "docker://" + reg.Host + "/team/app:2", "--insecure-registry", reg.Host}, "manifest unknown"},
		{"repository not on the registry", []string{"verify", "docker://" + reg.Host + "/team/nothing:1", "--insecure-registry", reg.Host}, "team/nothing:1"},
		{"mirror of a local image", []string{"mirror", "localhost/python-agent:1", "--to", "127.0.0.1:5000/team/app"}, "publish pushes one"},
		{"htpasswd missing", []string{"registry", "serve", "--root", t.TempDir(), "--htpasswd", "/nonexistent/htpasswd"}, "want an existing bcrypt htpasswd file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := cli(t, tc.args...)
			if code != 2 || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, want 2 with %q in:\n%s", code, tc.want, stderr)
			}
			if strings.Contains(stderr, "S3cr3t") {
				t.Errorf("the error shows the auth file's password:\n%s", stderr)
			}
		})
	}
}

func TestCLI_SourceChecksumMismatchIsExit3(t *testing.T) {
	buildertest.Builds(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("not what was pinned"))
	}))
	defer srv.Close()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "image.yaml"), []byte(`name: pinned
version: "1"
base: {image: scratch}
sources:
  - name: tool
    url: `+srv.URL+`/tool.tgz
    sha256: `+strings.Repeat("ab", 32)+`
    dest: tool.tgz
`), 0o644)
	os.WriteFile(filepath.Join(dir, "Containerfile"), []byte("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY tool.tgz /\n"), 0o644)
	code, stdout, stderr := cli(t, append([]string{"build", dir, "-o", "json", "--cache-dir", t.TempDir()}, storeFlags(t)...)...)
	if code != 3 {
		t.Fatalf("exit %d, want 3\n%s", code, stderr)
	}
	for _, want := range []string{`source \"tool\" (` + srv.URL + `/tool.tgz)`, "expected " + strings.Repeat("ab", 32), `"exitCode": 3`} {
		if !strings.Contains(stdout, want) {
			t.Errorf("JSON error should contain %q:\n%s", want, stdout)
		}
	}
}

// With -o json, even a command line that does not parse gives one JSON
// object on stdout.
func TestCLI_JSONErrorForUnparsableCommandLine(t *testing.T) {
	for _, args := range [][]string{{"frobnicate", "-o", "json"}, {"build", "--frobnicate", "--output=json"}, {"-ojson", "verify"}} {
		code, stdout, _ := cli(t, args...)
		var v struct {
			Error    string `json:"error"`
			ExitCode int    `json:"exitCode"`
		}
		if err := json.Unmarshal([]byte(stdout), &v); err != nil || code != 2 || v.ExitCode != 2 || v.Error == "" {
			t.Errorf("%v: exit %d, stdout %q (%v)", args, code, stdout, err)
		}
	}
}

func mkdir(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A helper program missing at run time is agentforge's own error naming the
// Debian package to install, exit 1 (a runtime failure, not bad input).
func TestCLI_MissingHelperNamesThePackage(t *testing.T) {
	buildertest.Builds(t)
	t.Setenv("PATH", t.TempDir())
	code, stdout, stderr := cli(t, append([]string{"demo", "-o", "json", "--cache-dir", t.TempDir()}, storeFlags(t)...)...)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, stderr)
	}
	for _, want := range []string{`helper program \"debootstrap\" is not installed`, "apt-get install debootstrap", `"exitCode": 1`} {
		if !strings.Contains(stdout, want) {
			t.Errorf("JSON error should contain %q:\n%s", want, stdout)
		}
	}
}
