package main

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/agentforge/agentforge/builder/oci/ocitest"
	"github.com/agentforge/agentforge/publisher/registrytest"
)

// The fan-out flow on the command line: each platform published on its
// own, then joined with index; verify checks the index and both platforms.
func TestCLI_IndexOfPublishedPlatforms(t *testing.T) {
	reg := registrytest.New(t, registrytest.Options{})
	ins := []string{"--insecure-registry", reg.Host, "--work-dir", t.TempDir()}
	var refs []string
	for i, platform := range []string{"linux/amd64", "linux/arm64"} {
		dir := filepath.Join(t.TempDir(), "layout")
		ocitest.Layout(t, mkdir(t, dir), "1", ocitest.Options{Layers: 1, Size: 4096, Seed: uint64(i), Platforms: []string{platform}})
		code, stdout, stderr := cli(t, append([]string{"publish", "oci:" + dir + ":1", "--to", reg.Host + "/agents/py:0.6.0-" + filepath.Base(platform), "-o", "json"}, ins...)...)
		if code != 0 {
			t.Fatalf("publish %s: exit %d\n%s", platform, code, stderr)
		}
		var pub struct{ Digest string }
		json.Unmarshal([]byte(stdout), &pub)
		refs = append(refs, reg.Host+"/agents/py@"+pub.Digest)
	}
	code, stdout, stderr := cli(t, append([]string{"index", refs[0], refs[1], "--to", reg.Host + "/agents/py:0.6.0", "-o", "json"}, ins...)...)
	if code != 0 {
		t.Fatalf("index: exit %d\n%s", code, stderr)
	}
	var idx struct {
		Digest    string
		Manifests []struct{ Platform, Digest string }
	}
	if err := json.Unmarshal([]byte(stdout), &idx); err != nil || len(idx.Manifests) != 2 {
		t.Fatalf("index JSON: %v\n%s", err, stdout)
	}
	code, stdout, stderr = cli(t, "verify", "docker://"+reg.Host+"/agents/py:0.6.0", "--expect-digest", idx.Digest, "--insecure-registry", reg.Host, "-o", "json")
	var ver struct {
		OK        bool
		Index     bool
		Manifests []struct {
			Platform string
			OK       bool
		}
	}
	if err := json.Unmarshal([]byte(stdout), &ver); code != 0 || err != nil || !ver.OK || !ver.Index || len(ver.Manifests) != 2 || ver.Manifests[1].Platform != "linux/arm64" {
		t.Fatalf("verify the index: exit %d %v\n%s\n%s", code, err, stdout, stderr)
	}
	// One platform twice is bad input.
	if code, _, stderr := cli(t, append([]string{"index", refs[0], refs[0], "--to", reg.Host + "/agents/py:x"}, ins...)...); code != 2 {
		t.Fatalf("duplicate platform: exit %d\n%s", code, stderr)
	}
}
