package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/builder/buildertest"
	"github.com/agentforge/agentforge/publisher/registrytest"
)

// The whole multi-platform flow on the command line: build linux/amd64 and
// linux/arm64 (one under qemu) into a local list, run each platform, verify
// the list, publish it to an upstream and a mirror with auth and TLS (the
// same index digest on both, skopeo agreeing), and verify the published
// index. Needs root, qemu-user-static and binfmt-support (make deps).
func TestCLI_MultiPlatformBuildPublish(t *testing.T) {
	buildertest.Builds(t)
	sf := storeFlags(t)
	dir := t.TempDir()
	code, stdout, stderr := cli(t, append([]string{"build", "../../testdata/busybox", "--platform", "linux/arm64,linux/amd64",
		"--cache-dir", buildertest.SourceCache(t), "--sbom", filepath.Join(dir, "bb.spdx.json"), "-o", "json"}, sf...)...)
	if code != 0 {
		t.Fatalf("build: exit %d\n%s", code, stderr)
	}
	var build struct {
		Digest    string   `json:"digest"`
		Names     []string `json:"names"`
		Manifests []struct {
			Platform, ID, Digest string
			Layers               []struct{ Digest string }
		} `json:"manifests"`
	}
	if err := json.Unmarshal([]byte(stdout), &build); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	// One SBOM per platform, each naming that platform's busybox package.
	for _, arch := range []string{"amd64", "arm64"} {
		var doc struct {
			SPDXVersion string `json:"spdxVersion"`
			Packages    []struct{ Name string }
		}
		data, err := os.ReadFile(filepath.Join(dir, "bb-linux-"+arch+".spdx.json"))
		if err != nil || json.Unmarshal(data, &doc) != nil || doc.SPDXVersion != "SPDX-2.3" || !strings.Contains(string(data), "busybox-static_1.35.0-4+deb12u1+b1_"+arch+".deb") {
			t.Errorf("SBOM for %s (%v): %.300s", arch, err, data)
		}
		// The build machine's own busybox unpacks the package but is not
		// in the image: it is not listed (it would differ per machine).
		if strings.Contains(string(data), "unpacker") {
			t.Errorf("SBOM for %s lists the build-only unpacker", arch)
		}
	}
	if strings.Join(build.Names, " ") != "localhost/busybox-demo:1.0.0 localhost/busybox-demo:latest" || len(build.Manifests) != 2 ||
		build.Manifests[0].Platform != "linux/amd64" || build.Manifests[1].Platform != "linux/arm64" || len(build.Manifests[1].Layers) != 3 || build.Manifests[1].ID == "" {
		t.Fatalf("build output: %s", stdout)
	}

	for _, tc := range []struct {
		platform string
		code     int
		want     string
	}{
		{"linux/amd64", 0, "x86_64"},
		{"linux/arm64", 0, "aarch64"},
		{"linux/s390x", 2, "not linux/s390x"},
	} {
		code, stdout, stderr := cli(t, append(append([]string{"run", "busybox-demo:1.0.0", "--platform", tc.platform}, sf...), "--", "uname", "-m")...)
		if code != tc.code || !strings.Contains(stdout+stderr, tc.want) {
			t.Errorf("run --platform %s: exit %d, %q %q; want exit %d and %q", tc.platform, code, stdout, stderr, tc.code, tc.want)
		}
	}

	var local struct {
		OK        bool `json:"ok"`
		Index     bool `json:"index"`
		Manifests []struct {
			OK       bool   `json:"ok"`
			Platform string `json:"platform"`
		} `json:"manifests"`
	}
	code, stdout, stderr = cli(t, append([]string{"verify", "busybox-demo:1.0.0", "-o", "json"}, sf...)...)
	if code != 0 || json.Unmarshal([]byte(stdout), &local) != nil || !local.OK || !local.Index || len(local.Manifests) != 2 {
		t.Fatalf("verify the local list: exit %d\n%s\n%s", code, stdout, stderr)
	}

	up := registrytest.New(t, registrytest.Options{})
	// The upstream is published to through a proxy that records the
	// order of the writes.
	proxy := registrytest.NewProxy(t, up)
	mirror := registrytest.New(t, registrytest.Options{Auth: true, TLS: true})
	global := append([]string{"--insecure-registry", up.Host, "--insecure-registry", proxy.Host, "--ca-file", mirror.CAFile, "--authfile", mirror.AuthFile}, sf...)
	// Signed with a key agentforge made, as cosign generate-key-pair would.
	t.Setenv("COSIGN_PASSWORD", "multi-platform test")
	key := filepath.Join(dir, "cosign")
	if code, _, stderr := cli(t, "keygen", "--prefix", key); code != 0 {
		t.Fatalf("keygen: %s", stderr)
	}
	code, stdout, stderr = cli(t, append([]string{"publish", "busybox-demo:1.0.0", "--to", proxy.Host + "/agents/bb", "--to", mirror.Host + "/mirror/agents/bb",
		"--work-dir", t.TempDir(), "--sign-key", key + ".key", "-o", "json"}, global...)...)
	if code != 0 {
		t.Fatalf("publish the list: exit %d\n%s", code, stderr)
	}
	var pub struct {
		Digest       string `json:"digest"`
		Destinations []struct {
			Digest   string   `json:"digest"`
			Tags     []string `json:"tags"`
			Verified bool     `json:"verified"`
		} `json:"destinations"`
		Manifests  []struct{ Platform, Digest string } `json:"manifests"`
		Signatures []struct{ Ref string }              `json:"signatures"`
	}
	if err := json.Unmarshal([]byte(stdout), &pub); err != nil || len(pub.Destinations) != 2 || len(pub.Manifests) != 2 {
		t.Fatalf("%v\n%s", err, stdout)
	}
	for _, d := range pub.Destinations {
		if d.Digest != pub.Digest || !d.Verified || strings.Join(d.Tags, ",") != "1.0.0,latest" {
			t.Errorf("destination %+v, want %s verified and tagged 1.0.0,latest", d, pub.Digest)
		}
	}
	if len(pub.Signatures) != 2 || !strings.HasSuffix(pub.Signatures[1].Ref, "@"+pub.Digest) {
		t.Errorf("signatures %+v, want the index %s signed on both registries", pub.Signatures, pub.Digest)
	}
	// Every platform image is signed, then the index, then the tags are
	// written: no tag ever names an unsigned image.
	var puts []string
	for _, e := range proxy.Log() {
		if e.Method == "PUT" && strings.Contains(e.Path, "/agents/bb/manifests/") && e.Status < 300 {
			puts = append(puts, e.Path[strings.LastIndex(e.Path, "/")+1:])
		}
	}
	at := func(ref string) int {
		for i, p := range puts {
			if p == ref {
				return i
			}
		}
		t.Fatalf("%s never written: %v", ref, puts)
		return -1
	}
	sigTag := func(d string) string { return strings.Replace(d, ":", "-", 1) + ".sig" }
	indexSig := at(sigTag(pub.Digest))
	for _, m := range pub.Manifests {
		if at(sigTag(m.Digest)) > indexSig {
			t.Errorf("%s signed after the index: %v", m.Platform, puts)
		}
	}
	if at(pub.Digest) > indexSig || indexSig > at("1.0.0") || indexSig > at("latest") {
		t.Errorf("order of the writes %v: want the index by digest, its signature, then the tags", puts)
	}
	// skopeo, an independent client, reads the same index digest under
	// the tag on both registries.
	for _, ref := range []string{up.Host + "/agents/bb:latest", mirror.Host + "/mirror/agents/bb:1.0.0"} {
		args := []string{"inspect", "--raw", "--tls-verify=false", "--authfile", mirror.AuthFile, "docker://" + ref}
		out, err := exec.Command("skopeo", args...).Output()
		if err != nil {
			t.Fatalf("skopeo %v: %v", args, err)
		}
		if got := "sha256:" + sha256Hex(out); got != pub.Digest || !strings.Contains(string(out), `"architecture":"arm64"`) {
			t.Errorf("skopeo reads %s as %s (%s), want the index %s", ref, got, out, pub.Digest)
		}
	}
	code, stdout, stderr = cli(t, append([]string{"verify", "docker://" + mirror.Host + "/mirror/agents/bb@" + pub.Digest, "--key", key + ".pub", "-o", "json"}, global...)...)
	if code != 0 || json.Unmarshal([]byte(stdout), &local) != nil || !local.OK || len(local.Manifests) != 2 || local.Manifests[1].Platform != "linux/arm64" {
		t.Fatalf("verify the published index: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
