package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/builder/buildertest"
	"github.com/agentforge/agentforge/builder/source/sourcetest"
	"github.com/agentforge/agentforge/images"
	"github.com/agentforge/agentforge/jenkins/jenkinstest"
	"github.com/agentforge/agentforge/publisher/registrytest"
)

// The nightly flow, end to end, offline (python.org, two registries and
// Jenkins stood in): night 0 releases CPython 3.11.2; a 3.11.3 tarball
// appears; night 1 (python latest, python bump, release: the same release
// file, no hand edit, no --allow-overwrite) ends with both registries
// serving the new digest under the rolling tags and Jenkins pinned to it,
// while the image released before keeps its own python tag; night 2, with
// nothing new, sends nothing and leaves the template unchanged.
func TestCLI_NightlyFlow(t *testing.T) {
	buildertest.Builds(t)
	sf := storeFlags(t)
	cache := buildertest.SourceCache(t)
	t.Setenv("AGENTFORGE_CACHE", cache)
	t.Setenv("JENKINS_API_TOKEN", testToken)
	if code, _, stderr := cli(t, append([]string{"build", "../../testdata/busybox", "--cache-dir", cache}, sf...)...); code != 0 {
		t.Fatalf("base: %s", stderr)
	}

	// python.org: the release manager's key, tarballs with their .asc and
	// sigstore bundles, the /ftp/python/ listing, the keyserver.
	key, fpr, pub := sourcetest.Key(t, "release manager")
	files := map[string][]byte{"/vks/v1/by-fingerprint/" + fpr: pub}
	sums := map[string]string{}
	publishPython := func(v string) {
		tarball := sourcetest.PythonTarball(t, v)
		sig := sourcetest.Sign(t, key, tarball)
		sum := sha256.Sum256(tarball)
		bundle, _ := json.Marshal(map[string]any{"messageSignature": map[string]any{"messageDigest": map[string]string{
			"algorithm": "SHA2_256", "digest": base64.StdEncoding.EncodeToString(sum[:])}}})
		dir := "/ftp/python/" + v + "/Python-" + v + ".tar.xz"
		files[dir], files[dir+".asc"], files[dir+".sigstore"] = tarball, sig, bundle
		files["/ftp/python/"] = append(files["/ftp/python/"], []byte(`<a href="`+v+`/">`+v+`/</a> `)...)
		sums[v] = hex.EncodeToString(sum[:])
	}
	publishPython("3.11.2")
	pyorg := fakePythonOrg(t, files)

	def := filepath.Join(t.TempDir(), "nightly-agent")
	if err := os.CopyFS(def, os.DirFS("../../testdata/nightly")); err != nil {
		t.Fatal(err)
	}
	if err := images.SetVariables(def, map[string]string{"python.sha256": sums["3.11.2"], "python.signingKey": fpr}); err != nil {
		t.Fatal(err)
	}

	up := registrytest.New(t, registrytest.Options{})
	mirror := registrytest.New(t, registrytest.Options{Auth: true})
	upProxy, mirrorProxy := registrytest.NewProxy(t, up), registrytest.NewProxy(t, mirror)
	auth := registrytest.WriteAuthFile(t, map[string][2]string{mirrorProxy.Host: {mirror.User, mirror.Password}, mirror.Host: {mirror.User, mirror.Password}})
	global := append([]string{"--insecure-registry", upProxy.Host, "--insecure-registry", mirrorProxy.Host, "--insecure-registry", up.Host,
		"--insecure-registry", mirror.Host, "--authfile", auth}, sf...)
	emu := jenkinstest.New(t, jenkinstest.Options{
		Users: []jenkinstest.User{{Name: "ci-bot", Token: testToken, Admin: true}},
		State: jenkinstest.State{Clouds: []jenkinstest.Cloud{{Kind: "kubernetes", Name: "kubernetes"}}},
	})
	releaseFile := filepath.Join(t.TempDir(), "release.yaml")
	os.WriteFile(releaseFile, []byte(`definition: `+def+`
sourceMirrors:
  - https://www.python.org/=`+pyorg.URL+`/
  - https://keys.openpgp.org/=`+pyorg.URL+`/
smoke: [[cat, /etc/python-version]]
destinations:
  - `+upProxy.Host+`/agents/nightly
  - `+mirrorProxy.Host+`/mirror/agents/nightly
jenkins:
  url: `+emu.URL+`
  user: ci-bot
  template: nightly-agent
  label: nightly
`), 0o644)

	type release struct {
		Image        struct{ Tags, RollingTags []string }
		Smoke        []struct{ Output string }
		Destinations []struct {
			Digest      string
			BlobsPushed int
		}
		Jenkins struct {
			Status   string
			Template struct{ Image string }
		}
	}
	night := func(n int, wantBump string) release {
		t.Helper()
		code, stdout, stderr := cli(t, "python", "latest", "--python-org", pyorg.URL, "-o", "json")
		if code != 0 {
			t.Fatalf("night %d: python latest: exit %d\n%s", n, code, stderr)
		}
		code, stdout, stderr = cli(t, "python", "bump", def, "--python-org", pyorg.URL, "--keyserver", pyorg.URL,
			"--source-mirror", "https://www.python.org/="+pyorg.URL+"/", "--cache-dir", cache, "-o", "json")
		if code != 0 || !strings.Contains(stdout, `"`+wantBump+`"`) {
			t.Fatalf("night %d: python bump: exit %d, want %s\n%s\n%s", n, code, wantBump, stdout, stderr)
		}
		code, stdout, stderr = cli(t, append([]string{"release", "--config", releaseFile, "-o", "json"}, global...)...)
		if code != 0 {
			t.Fatalf("night %d: release: exit %d\n%s", n, code, stderr)
		}
		var r release
		if err := json.Unmarshal([]byte(stdout), &r); err != nil || len(r.Destinations) != 2 {
			t.Fatalf("night %d: %v\n%s", n, err, stdout)
		}
		if r.Destinations[0].Digest != r.Destinations[1].Digest {
			t.Fatalf("night %d: the registries got different digests: %+v", n, r.Destinations)
		}
		return r
	}
	tagOn := func(host, repo, tag string) string {
		t.Helper()
		_, stdout, stderr := cli(t, append([]string{"verify", "docker://" + host + "/" + repo + ":" + tag, "-o", "json"}, global...)...)
		var v struct{ Digest string }
		json.Unmarshal([]byte(stdout), &v)
		if v.Digest == "" {
			t.Fatalf("%s/%s:%s: %s", host, repo, tag, stderr)
		}
		return v.Digest
	}

	n0 := night(0, "current")
	a := n0.Destinations[0].Digest
	if n0.Jenkins.Status != "created" || n0.Jenkins.Template.Image != upProxy.Host+"/agents/nightly@"+a || n0.Smoke[0].Output != "3.11.2" {
		t.Fatalf("night 0: %+v", n0)
	}

	publishPython("3.11.3")
	n1 := night(1, "bumped")
	b := n1.Destinations[0].Digest
	if b == a || n1.Jenkins.Status != "updated" || n1.Jenkins.Template.Image != upProxy.Host+"/agents/nightly@"+b || n1.Smoke[0].Output != "3.11.3" {
		t.Fatalf("night 1: %+v (night 0 %s)", n1, a)
	}
	for _, reg := range []struct{ host, repo string }{{up.Host, "agents/nightly"}, {mirror.Host, "mirror/agents/nightly"}} {
		for tag, want := range map[string]string{"1.0.0": b, "1.0.0-python3.11.3": b, "1.0.0-python3.11.2": a} {
			if got := tagOn(reg.host, reg.repo, tag); got != want {
				t.Errorf("%s/%s:%s names %s, want %s", reg.host, reg.repo, tag, got, want)
			}
		}
	}

	// Night 2 sends nothing: no blob, manifest or tag is written anywhere.
	seen := []int{len(upProxy.Log()), len(mirrorProxy.Log())}
	n2 := night(2, "current")
	if n2.Destinations[0].Digest != b || n2.Jenkins.Status != "unchanged" {
		t.Fatalf("night 2: %+v", n2)
	}
	for i, pr := range []*registrytest.Proxy{upProxy, mirrorProxy} {
		for _, e := range pr.Log()[seen[i]:] {
			if e.Method != "GET" && e.Method != "HEAD" {
				t.Errorf("night 2 wrote to %s: %s %s", pr.Host, e.Method, e.Path)
			}
		}
	}

	// The Jenkinsfile's check names the released image by its repository
	// alone: that is the definition's first rolling tag (1.0.0), which
	// this night released, so the release is not behind; without the
	// rule it was :latest, which no night wrote.
	code, stdout, stderr := cli(t, append([]string{"outdated", def, "--kind", "release", "--image", "docker://" + upProxy.Host + "/agents/nightly", "-o", "json"}, global...)...)
	var rep struct {
		Findings []struct {
			Kind     string
			Outdated bool
		}
	}
	if err := json.Unmarshal([]byte(stdout), &rep); code != 0 || err != nil || len(rep.Findings) != 1 || rep.Findings[0].Kind != "release" || rep.Findings[0].Outdated {
		t.Errorf("outdated --image REPO: exit %d, %+v (%v)\n%s", code, rep, err, stderr)
	}
}
