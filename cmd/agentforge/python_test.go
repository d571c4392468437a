package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/builder/oci/ocitest"
	"github.com/agentforge/agentforge/builder/source/sourcetest"
	"github.com/agentforge/agentforge/builder/update"
	"github.com/agentforge/agentforge/images"
	"github.com/agentforge/agentforge/publisher/registrytest"
)

// fakePythonOrg serves /ftp/python/ like python.org: a listing, tarballs,
// sigstore bundles and .asc signatures, and a VKS keyserver endpoint.
func fakePythonOrg(t *testing.T, files map[string][]byte) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(data)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestCLI_PythonLatestAndBump(t *testing.T) {
	key, fpr, pub := sourcetest.Key(t, "release manager")
	tarball := sourcetest.PythonTarball(t, "3.11.10")
	sig := sourcetest.Sign(t, key, tarball)
	sum := sha256.Sum256(tarball)
	bundle, _ := json.Marshal(map[string]any{"messageSignature": map[string]any{"messageDigest": map[string]string{
		"algorithm": "SHA2_256", "digest": base64.StdEncoding.EncodeToString(sum[:])}}})
	files := map[string][]byte{
		"/ftp/python/": []byte(`<a href="3.11.9/">3.11.9/</a> <a href="3.11.10/">3.11.10/</a> <a href="3.11.11/">3.11.11/</a> <a href="3.12.4/">3.12.4/</a>`),
		"/ftp/python/3.11.10/Python-3.11.10.tar.xz":          tarball,
		"/ftp/python/3.11.10/Python-3.11.10.tar.xz.asc":      sig,
		"/ftp/python/3.11.10/Python-3.11.10.tar.xz.sigstore": bundle,
		"/vks/v1/by-fingerprint/" + fpr:                      pub,
	}
	srv := fakePythonOrg(t, files)

	code, stdout, stderr := cli(t, "python", "latest", "--python-org", srv.URL, "-o", "json")
	var latest struct{ Series, Version, URL, SHA256 string }
	if code != 0 || json.Unmarshal([]byte(stdout), &latest) != nil {
		t.Fatalf("latest: exit %d %s %s", code, stdout, stderr)
	}
	// 3.11.11 has a directory but no tarball yet: 3.11.10 is the latest.
	if latest.Version != "3.11.10" || latest.SHA256 != hex.EncodeToString(sum[:]) || !strings.HasSuffix(latest.URL, "/Python-3.11.10.tar.xz") {
		t.Fatalf("latest: %+v", latest)
	}

	dir := filepath.Join(t.TempDir(), "python-agent")
	if err := os.CopyFS(dir, os.DirFS("../../images/python-agent")); err != nil {
		t.Fatal(err)
	}
	if err := images.SetVariables(dir, map[string]string{"python.signingKey": fpr}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, "image.yaml"))
	bump := func(extra ...string) (int, string, string) {
		return cli(t, append([]string{"python", "bump", dir, "--python-org", srv.URL, "--keyserver", srv.URL,
			"--source-mirror", "https://www.python.org/=" + srv.URL + "/", "--cache-dir", t.TempDir(), "-o", "json"}, extra...)...)
	}

	if code, stdout, stderr := bump("--dry-run"); code != 0 || !strings.Contains(stdout, `"would-bump"`) {
		t.Fatalf("dry run: exit %d %s %s", code, stdout, stderr)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "image.yaml")); !bytes.Equal(before, after) {
		t.Fatal("a dry run changed the definition")
	}

	// A tarball that does not match what python.org published: exit 3, nothing written.
	files["/ftp/python/3.11.10/Python-3.11.10.tar.xz"] = []byte("tampered")
	if code, _, stderr := bump(); code != 3 || !strings.Contains(stderr, "sha256 mismatch") {
		t.Fatalf("tampered tarball: exit %d\n%s", code, stderr)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "image.yaml")); !bytes.Equal(before, after) {
		t.Fatal("a failed bump changed the definition")
	}
	files["/ftp/python/3.11.10/Python-3.11.10.tar.xz"] = tarball

	// Without the OpenPGP check, the sigstore bundle's sha256 (from the
	// tarball's own server) is checked by nothing: refused, exit 2, unless
	// the user gives the sha256 they checked.
	if code, _, stderr := bump("--skip-signature", "python"); code != 2 || !strings.Contains(stderr, "OpenPGP check is skipped") {
		t.Fatalf("signature skipped: exit %d\n%s", code, stderr)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "image.yaml")); !bytes.Equal(before, after) {
		t.Fatal("a refused bump changed the definition")
	}

	code, stdout, stderr = bump()
	if code != 0 || !strings.Contains(stdout, `"bumped"`) || !strings.Contains(stdout, "openpgp "+fpr) {
		t.Fatalf("bump: exit %d %s %s", code, stdout, stderr)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "image.yaml"))
	for _, want := range []string{"python.version: 3.11.10\n", "python.sha256: " + hex.EncodeToString(sum[:]), "# sha256 of the Python-{{python.version}}.tar.xz tarball"} {
		if !strings.Contains(string(after), want) {
			t.Errorf("image.yaml lacks %q", want)
		}
	}
	if code, stdout, _ := bump(); code != 0 || !strings.Contains(stdout, `"current"`) {
		t.Fatalf("second bump: %s", stdout)
	}
}

// outdated on the repository's definition (CPython 3.11.9 by design) says
// that python.org has a newer patch, as JSON. A kind it cannot check is a
// problem in the report, which is printed all the same, and fails the
// command: 2 for the OS packages asked for by name without --image (the
// command line's fault), 1 for python.org answering 503 (so that a
// nightly that could not look does not read as "nothing newer").
func TestCLI_OutdatedRepositoryDefinition(t *testing.T) {
	srv := fakePythonOrg(t, map[string][]byte{
		"/ftp/python/": []byte(`<a href="3.11.9/">3.11.9/</a> <a href="3.11.16/">3.11.16/</a>`),
		"/ftp/python/3.11.16/Python-3.11.16.tar.xz": []byte("x"),
	})
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer down.Close()
	type report struct {
		Outdated int
		Findings []struct{ Kind, Current, Latest string }
		Problems []struct{ Kind, Error string }
	}
	for _, tc := range []struct {
		name, kinds, pythonOrg string
		code, outdated         int
		problem, says          string
	}{
		{name: "os without --image", kinds: "cpython,os", pythonOrg: srv.URL, code: 2, outdated: 1, problem: "os", says: "--image"},
		{name: "python.org down", kinds: "cpython", pythonOrg: down.URL, code: 1, problem: "cpython", says: "503"},
		{name: "all checked", kinds: "cpython", pythonOrg: srv.URL, code: 0, outdated: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := cli(t, "outdated", "../../images/python-agent", "--kind", tc.kinds, "--python-org", tc.pythonOrg, "-o", "json")
			var rep report
			if code != tc.code || json.Unmarshal([]byte(stdout), &rep) != nil {
				t.Fatalf("exit %d, want %d\n%s\n%s", code, tc.code, stdout, stderr)
			}
			if rep.Outdated != tc.outdated || rep.Outdated == 1 && (rep.Findings[0].Current != "3.11.9" || rep.Findings[0].Latest != "3.11.16") {
				t.Errorf("%s", stdout)
			}
			if tc.problem == "" {
				if len(rep.Problems) != 0 {
					t.Errorf("problems: %s", stdout)
				}
				return
			}
			if len(rep.Problems) != 1 || rep.Problems[0].Kind != tc.problem || !strings.Contains(rep.Problems[0].Error, tc.says) {
				t.Errorf("%s", stdout)
			}
			if !strings.Contains(stderr, tc.problem+" not checked: ") {
				t.Errorf("stderr does not say what was not checked:\n%s", stderr)
			}
		})
	}
	if code, _, _ := cli(t, "outdated", "--kind", "kernel"); code != 2 {
		t.Errorf("an unknown kind: exit %d, want 2", code)
	}
}

// bump adopts what it could check and fails (exit 1, listed under failed)
// for a kind it could not: the base's moved tag is pinned while the
// remoting jar's Maven repository answers 503, and the pipeline hears of
// the remoting check instead of a green bump that skipped it.
func TestCLI_BumpListsWhatItCouldNotCheck(t *testing.T) {
	reg := registrytest.New(t, registrytest.Options{})
	hosts := registrytest.Hosts(t, reg)
	old := registrytest.Push(t, hosts, reg.Host+"/library/ubuntu:24.04", ocitest.Options{Layers: 1, Size: 256, Seed: 1})
	now := registrytest.Push(t, hosts, reg.Host+"/library/ubuntu:24.04", ocitest.Options{Layers: 1, Size: 256, Seed: 2})
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer down.Close()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Containerfile"), []byte("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "image.yaml"), []byte("name: x\nversion: \"1\"\nbase:\n  image: "+reg.Host+"/library/ubuntu:24.04\n  digest: "+old.Digest().String()+"\n"+
		"variables:\n  remoting.version: 3355.v388858a_47b_33\nsources:\n  - name: remoting\n"+
		"    url: https://repo.jenkins-ci.org/public/org/jenkins-ci/main/remoting/{{remoting.version}}/remoting-{{remoting.version}}.jar\n"+
		"    checksum: {url: \"{{url}}.sha1\", algorithm: sha1}\n    dest: agent.jar\n"), 0o644)
	code, stdout, stderr := cli(t, "bump", dir, "--insecure-registry", reg.Host, "--source-mirror", "https://repo.jenkins-ci.org/="+down.URL+"/", "--cache-dir", t.TempDir(), "-o", "json")
	var rep struct {
		Status  string
		Changes []struct{ Kind string }
		Failed  []struct{ Kind, Error string }
	}
	if code != 1 || json.Unmarshal([]byte(stdout), &rep) != nil {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, stdout, stderr)
	}
	if rep.Status != "bumped" || len(rep.Changes) != 1 || rep.Changes[0].Kind != "base" || len(rep.Failed) != 1 || rep.Failed[0].Kind != "remoting" || !strings.Contains(rep.Failed[0].Error, "503") {
		t.Fatalf("%s", stdout)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "image.yaml")); !strings.Contains(string(data), now.Digest().String()) {
		t.Errorf("the base was not pinned:\n%s", data)
	}
}

// outdated --set checks the definition as a build with the same overrides
// renders it (a release file's set:), so a repository alone names the
// rolling tag that build wrote (java.version=17 gives -jdk17); an
// override the definition cannot take is bad input.
func TestCLI_OutdatedSetRendersTheRollingTag(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  string
		code int
		says string
	}{
		{name: "as the definition says", set: "version=1.0.0", code: 1, says: "127.0.0.1:1/agents/x:1.0.0"},
		{name: "overridden", set: "version=2.0.0", code: 1, says: "127.0.0.1:1/agents/x:2.0.0"},
		{name: "no such variable", set: "nosuch=1", code: 2, says: "set nosuch: no such variable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := cli(t, "outdated", "../../testdata/nightly", "--kind", "release", "--image", "docker://127.0.0.1:1/agents/x", "--set", tc.set, "-o", "json")
			if code != tc.code || !strings.Contains(stdout, tc.says) {
				t.Errorf("exit %d, want %d with %q in:\n%s\n%s", code, tc.code, tc.says, stdout, stderr)
			}
		})
	}
}

// bump --set never writes what only the overrides lead to: the newest
// digest of another base image (--set base.image=…) pinned under the
// file's own base.image would build on something the file does not name.
// That is bad input, and the file is left as it was.
func TestCLI_BumpSetDoesNotLeakIntoTheFile(t *testing.T) {
	reg := registrytest.New(t, registrytest.Options{})
	hosts := registrytest.Hosts(t, reg)
	pinned := registrytest.Push(t, hosts, reg.Host+"/library/ubuntu:24.04", ocitest.Options{Layers: 1, Size: 256, Seed: 1})
	registrytest.Push(t, hosts, reg.Host+"/library/ubuntu:26.04", ocitest.Options{Layers: 1, Size: 256, Seed: 2})
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Containerfile"), []byte("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n"), 0o644)
	yaml := "name: x\nversion: \"1\"\nbase:\n  image: " + reg.Host + "/library/ubuntu:24.04\n  digest: " + pinned.Digest().String() + "\n"
	os.WriteFile(filepath.Join(dir, "image.yaml"), []byte(yaml), 0o644)
	code, stdout, stderr := cli(t, "bump", dir, "--kind", "base", "--set", "base.image="+reg.Host+"/library/ubuntu:26.04", "--insecure-registry", reg.Host, "-o", "json")
	if code != 2 {
		t.Errorf("exit %d, want 2\n%s\n%s", code, stdout, stderr)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "image.yaml")); string(data) != yaml {
		t.Errorf("the file was written:\n%s", data)
	}
}

// outdated's text says why an input with no newer version is outdated (a
// remoting jar not pinned yet): "3355 -> 3355 OUTDATED" alone reads as a
// contradiction. A newer version needs no reason.
func TestPrintOutdated_SaysWhyWhenNoVersionIsNewer(t *testing.T) {
	for _, tc := range []struct {
		f    update.Finding
		want string
	}{
		{update.Finding{Kind: "remoting", Name: "remoting", Current: "3355.v1", Latest: "3355.v1", Outdated: true, Why: "the jar is checked only against the .sha1"},
			"OUTDATED: the jar is checked only against the .sha1"},
		{update.Finding{Kind: "remoting", Name: "remoting", Current: "3355.v1", Latest: "3400.v2", Outdated: true, Why: "the newest release"},
			"3355.v1 -> 3400.v2  OUTDATED\n"},
		{update.Finding{Kind: "remoting", Name: "remoting", Current: "3355.v1", Latest: "3355.v1", Why: "the newest release"},
			"3355.v1 -> 3355.v1  current\n"},
	} {
		var out bytes.Buffer
		printOutdated(&out, &update.Report{Findings: []update.Finding{tc.f}})
		if !strings.Contains(out.String(), tc.want) {
			t.Errorf("%q, want it to have %q", out.String(), tc.want)
		}
	}
}
