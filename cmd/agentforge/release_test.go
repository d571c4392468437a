package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/builder/buildertest"
	"github.com/agentforge/agentforge/jenkins/jenkinstest"
	"github.com/agentforge/agentforge/publisher/registrytest"
	"github.com/agentforge/agentforge/publisher/release"
	"github.com/agentforge/agentforge/publisher/sign"
)

func TestCLI_ReleaseTwiceIsIdempotent(t *testing.T) {
	buildertest.Builds(t)
	up := registrytest.New(t, registrytest.Options{})
	mirror := registrytest.New(t, registrytest.Options{Auth: true, TLS: true})
	emu := jenkinstest.New(t, jenkinstest.Options{
		Users: []jenkinstest.User{{Name: "ci-bot", Token: testToken, Admin: true}},
		State: jenkinstest.State{Clouds: []jenkinstest.Cloud{{Kind: "kubernetes", Name: "kubernetes"}}},
	})
	dir := t.TempDir()
	cfg := filepath.Join(dir, "release.yaml")
	os.WriteFile(cfg, []byte(`definition: ../../testdata/busybox
set: {greeting: released}
smoke:
  - [cat, /etc/greeting]
destinations:
  - `+up.Host+`/agents/busybox
  - `+mirror.Host+`/mirror/agents/busybox
jenkins:
  url: `+emu.URL+`
  user: ci-bot
  template: busybox-agent
  label: busybox
  memoryRequest: 256Mi
`), 0o644)
	t.Setenv("JENKINS_API_TOKEN", testToken)
	t.Setenv("AGENTFORGE_CACHE", buildertest.SourceCache(t))
	t.Setenv("COSIGN_PASSWORD", "release test")
	key := filepath.Join(dir, "cosign")
	if code, _, stderr := cli(t, "keygen", "--prefix", key); code != 0 {
		t.Fatalf("keygen: %s", stderr)
	}
	global := []string{"--insecure-registry", up.Host, "--ca-file", mirror.CAFile, "--authfile", mirror.AuthFile}
	args := append(append([]string{"release", "--config", cfg, "-o", "json", "--sign-key", key + ".key", "--sbom", filepath.Join(dir, "sbom.spdx.json")}, global...), storeFlags(t)...)

	type report struct {
		Image        struct{ Digest string }
		Smoke        []struct{ Output string }
		Destinations []struct {
			Digest       string
			Verified     bool
			BlobsPushed  int
			BlobsSkipped int
		}
		Jenkins struct {
			Status   string
			Template struct{ ID, Image string }
		}
		Stages []struct{ Name, Status string }
	}
	var runs []report
	for i := 0; i < 2; i++ {
		code, stdout, stderr := cli(t, args...)
		if code != 0 {
			t.Fatalf("release %d: exit %d\n%s", i+1, code, stderr)
		}
		var r report
		if err := json.Unmarshal([]byte(stdout), &r); err != nil {
			t.Fatalf("%v\n%s", err, stdout)
		}
		runs = append(runs, r)
	}
	first, second := runs[0], runs[1]
	var names []string
	for _, s := range first.Stages {
		names = append(names, s.Name+":"+s.Status)
	}
	// Signing is part of publish: each destination is signed before it is
	// tagged.
	if strings.Join(names, ",") != "build:ok,verify:ok,smoke:ok,publish:ok,register:ok" {
		t.Errorf("stages %v", names)
	}
	if len(first.Smoke) != 1 || first.Smoke[0].Output != "released" {
		t.Errorf("smoke %+v", first.Smoke)
	}
	digest := first.Destinations[0].Digest
	if first.Jenkins.Status != "created" || first.Jenkins.Template.Image != up.Host+"/agents/busybox@"+digest {
		t.Errorf("jenkins: %+v", first.Jenkins)
	}
	if second.Image.Digest != first.Image.Digest || second.Jenkins.Status != "unchanged" || second.Jenkins.Template.ID != first.Jenkins.Template.ID {
		t.Errorf("second run: %+v", second)
	}
	for _, d := range second.Destinations {
		if d.BlobsPushed != 0 || !d.Verified || d.Digest != digest {
			t.Errorf("second run sent blobs: %+v", d)
		}
	}
	// The signature and the SBOM attestation verify on the mirror (what
	// a cluster pulling from it would check), and the SBOM was written.
	if code, stdout, stderr := cli(t, append([]string{"verify", "docker://" + mirror.Host + "/mirror/agents/busybox@" + digest, "--key", key + ".pub", "--require-sbom"}, global...)...); code != 0 {
		t.Errorf("verify --key --require-sbom: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "sbom.spdx.json")); err != nil || !strings.Contains(string(data), `"SPDX-2.3"`) {
		t.Errorf("SBOM file: %v %.200s", err, data)
	}
}

// A multi-platform release: smoke checks run on every platform (arm64
// under qemu), the index goes to both registries, and Jenkins is pointed at
// the index digest.
func TestCLI_ReleaseMultiPlatform(t *testing.T) {
	buildertest.Builds(t)
	up := registrytest.New(t, registrytest.Options{})
	mirror := registrytest.New(t, registrytest.Options{Auth: true, TLS: true})
	emu := jenkinstest.New(t, jenkinstest.Options{
		Users: []jenkinstest.User{{Name: "ci-bot", Token: testToken, Admin: true}},
		State: jenkinstest.State{Clouds: []jenkinstest.Cloud{{Kind: "kubernetes", Name: "kubernetes"}}},
	})
	cfg := filepath.Join(t.TempDir(), "release.yaml")
	os.WriteFile(cfg, []byte(`definition: ../../testdata/busybox
platforms: [linux/amd64, linux/arm64]
smoke:
  - [uname, -m]
destinations:
  - `+up.Host+`/agents/busybox
  - `+mirror.Host+`/mirror/agents/busybox
jenkins:
  url: `+emu.URL+`
  user: ci-bot
  template: busybox-agent
  label: busybox
`), 0o644)
	t.Setenv("JENKINS_API_TOKEN", testToken)
	t.Setenv("AGENTFORGE_CACHE", buildertest.SourceCache(t))
	t.Setenv("COSIGN_PASSWORD", "multi")
	key := filepath.Join(t.TempDir(), "cosign")
	if code, _, stderr := cli(t, "keygen", "--prefix", key); code != 0 {
		t.Fatalf("keygen: %s", stderr)
	}
	global := []string{"--insecure-registry", up.Host, "--ca-file", mirror.CAFile, "--authfile", mirror.AuthFile}
	code, stdout, stderr := cli(t, append(append([]string{"release", "--config", cfg, "-o", "json", "--sign-key", key + ".key"}, global...), storeFlags(t)...)...)
	if code != 0 {
		t.Fatalf("release: exit %d\n%s", code, stderr)
	}
	var r struct {
		Image struct {
			Digest    string
			Manifests []struct{ Platform string }
		}
		Smoke        []struct{ Command, Output string }
		Destinations []struct {
			Digest   string
			Verified bool
		}
		Jenkins    struct{ Template struct{ Image string } }
		Manifests  []struct{ Platform, Digest string }
		Signatures []struct{ Ref string }
	}
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	if len(r.Image.Manifests) != 2 || len(r.Smoke) != 2 || r.Smoke[0].Output != "x86_64" || r.Smoke[1].Output != "aarch64" {
		t.Errorf("image %+v, smoke %+v", r.Image, r.Smoke)
	}
	if len(r.Destinations) != 2 || r.Destinations[0].Digest != r.Destinations[1].Digest || !r.Destinations[0].Verified || !r.Destinations[1].Verified {
		t.Fatalf("destinations %+v", r.Destinations)
	}
	out, err := exec.Command("skopeo", "inspect", "--raw", "--tls-verify=false", "docker://"+up.Host+"/agents/busybox@"+r.Destinations[0].Digest).Output()
	if err != nil || !strings.Contains(string(out), `"manifests"`) {
		t.Fatalf("the published digest is not an index (%v): %s", err, out)
	}
	if want := up.Host + "/agents/busybox@" + r.Destinations[0].Digest; r.Jenkins.Template.Image != want {
		t.Errorf("jenkins image %s, want the index %s", r.Jenkins.Template.Image, want)
	}
	// The index and both platform images signed on both registries; each
	// platform image carries its own SBOM attestation, on the mirror too.
	if len(r.Signatures) != 6 || len(r.Manifests) != 2 {
		t.Fatalf("signatures %+v, manifests %+v: want 6 (index + 2 platforms, 2 registries)", r.Signatures, r.Manifests)
	}
	for _, m := range r.Manifests {
		ref := "docker://" + mirror.Host + "/mirror/agents/busybox@" + m.Digest
		if code, stdout, stderr := cli(t, append([]string{"verify", ref, "--key", key + ".pub", "--require-sbom"}, global...)...); code != 0 {
			t.Errorf("%s on the mirror: exit %d\n%s\n%s", m.Platform, code, stdout, stderr)
		}
	}
}

// A release file with a mistake anywhere is refused before anything is
// built or pushed: exit 2, naming FILE:LINE (an empty smoke command used
// to build and then panic; a verify typo to fail only at publish).
func TestCLI_ReleaseBadFileChangesNothing(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"empty smoke command": "definition: ../../testdata/busybox\nsmoke: [[cat, /etc/greeting], []]\ndestinations: [127.0.0.1:1/a/b]\n",
		"verify typo":         "definition: ../../testdata/busybox\ndestinations: [127.0.0.1:1/a/b]\nverify: ful\n",
		"reload without file": "definition: ../../testdata/busybox\ndestinations: [127.0.0.1:1/a/b]\njenkins:\n  template: t\n  cascReload: true\n",
		"two routes":          "definition: ../../testdata/busybox\ndestinations: [127.0.0.1:1/a/b]\njenkins:\n  template: t\n  cascFile: j.yaml\n  scriptConsole: true\n",
	} {
		t.Run(name, func(t *testing.T) {
			cfg := filepath.Join(dir, "release.yaml")
			os.WriteFile(cfg, []byte(body), 0o644)
			root := filepath.Join(t.TempDir(), "storage")
			code, _, stderr := cli(t, "release", "--config", cfg, "--storage-root", root, "--storage-driver", "vfs")
			if code != 2 || !strings.Contains(stderr, cfg+":") {
				t.Fatalf("exit %d, want 2 naming %s:LINE\n%s", code, cfg, stderr)
			}
			if _, err := os.Stat(root); err == nil {
				t.Errorf("storage was opened at %s for a file refused up front", root)
			}
		})
	}
}

// On a controller whose configuration-as-code declares the clouds (the
// Helm chart's default), a release registering through the script console
// is refused (exit 4) after publishing and before any save; with the
// release file's cascFile + cascReload the template goes into that file,
// Jenkins reloads it, and the read-back finds it; a second release leaves
// the file byte for byte and reloads without a change.
func TestCLI_ReleaseOnAControllerManagedByJCasC(t *testing.T) {
	buildertest.Builds(t)
	reg := registrytest.New(t, registrytest.Options{})
	dir := t.TempDir()
	casc := filepath.Join(dir, "jenkins.yaml")
	os.WriteFile(casc, []byte("jenkins:\n  systemMessage: \"managed\"\n  clouds:\n    - kubernetes:\n        name: \"kubernetes\"\n        namespace: \"ci\"\n"), 0o644)
	emu := jenkinstest.New(t, jenkinstest.Options{
		Users:    []jenkinstest.User{{Name: "ci-bot", Token: testToken, Admin: true}},
		State:    jenkinstest.State{Clouds: []jenkinstest.Cloud{{Kind: "kubernetes", Name: "kubernetes"}}},
		CascFile: casc,
	})
	t.Setenv("JENKINS_API_TOKEN", testToken)
	t.Setenv("AGENTFORGE_CACHE", buildertest.SourceCache(t))
	release := func(jenkinsBlock string) (int, string, string) {
		cfg := filepath.Join(dir, "release.yaml")
		os.WriteFile(cfg, []byte(`definition: ../../testdata/busybox
destinations: [`+reg.Host+`/agents/busybox]
jenkins:
  url: `+emu.URL+`
  user: ci-bot
  template: busybox-agent
  label: busybox
`+jenkinsBlock), 0o644)
		return cli(t, append([]string{"release", "--config", cfg, "-o", "json", "--insecure-registry", reg.Host}, storeFlags(t)...)...)
	}

	code, _, stderr := release("")
	if code != 4 || !strings.Contains(stderr, "casc-managed") || !strings.Contains(stderr, "jenkins.cascFile + cascReload") {
		t.Fatalf("script console on a JCasC controller: exit %d, want 4 naming the JCasC route:\n%s", code, stderr)
	}
	if emu.State().Saves != 0 {
		t.Fatal("the refused registration saved")
	}

	block := "  cascFile: " + casc + "\n  cascReload: true\n"
	type report struct {
		Jenkins struct {
			Status   string
			Reloaded bool
			Template struct{ ID, Image string }
		}
		Destinations []struct{ Digest string }
	}
	var runs []report
	var files []string
	for i := range 2 {
		code, stdout, stderr := release(block)
		var r report
		if code != 0 || json.Unmarshal([]byte(stdout), &r) != nil {
			t.Fatalf("release %d with cascFile: exit %d\n%s%s", i+1, code, stdout, stderr)
		}
		runs = append(runs, r)
		data, _ := os.ReadFile(casc)
		files = append(files, string(data))
	}
	want := reg.Host + "/agents/busybox@" + runs[0].Destinations[0].Digest
	if runs[0].Jenkins.Status != "created" || !runs[0].Jenkins.Reloaded || runs[0].Jenkins.Template.Image != want {
		t.Errorf("first release: %+v, want the template at %s, reloaded", runs[0].Jenkins, want)
	}
	// The second changes nothing: not the file, nor Jenkins' configuration
	// (no reload, which would revert the controller's UI edits).
	if runs[1].Jenkins.Status != "unchanged" || runs[1].Jenkins.Reloaded || runs[1].Jenkins.Template.ID != runs[0].Jenkins.Template.ID || files[1] != files[0] {
		t.Errorf("second release: %+v; file changed: %v", runs[1].Jenkins, files[1] != files[0])
	}
	if !strings.Contains(files[0], `systemMessage: "managed"`) || !strings.Contains(files[0], want) || emu.CascReloads != 1 {
		t.Errorf("reloads %d, file:\n%s", emu.CascReloads, files[0])
	}
}

// Release's summary keeps its columns: "signed   REF (what)", and a ref
// that could not be signed says so plainly.
func TestPrintRelease_SignedLines(t *testing.T) {
	var b bytes.Buffer
	printRelease(&b, &release.Report{Signatures: []sign.Signed{
		{Ref: "r@sha256:00", Signature: &sign.Result{}, SBOM: &sign.Result{}},
		{Ref: "m@sha256:00", Error: "HTTP 503"},
	}})
	if want := "signed   r@sha256:00 (signed, SBOM attested)\nNOT signed m@sha256:00: HTTP 503\n"; b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}
