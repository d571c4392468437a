package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/builder/buildertest"
	"github.com/agentforge/agentforge/publisher/registrytest"
)

func TestCLI_PublishVerifyAndRewrite(t *testing.T) {
	sf := storeFlags(t)
	if code, _, stderr := cli(t, append([]string{"build", "../../testdata/busybox", "--cache-dir", buildertest.SourceCache(t)}, sf...)...); code != 0 {
		t.Fatalf("build: %s", stderr)
	}
	up := registrytest.New(t, registrytest.Options{})
	mirror := registrytest.New(t, registrytest.Options{Auth: true, TLS: true})
	proxy := registrytest.NewProxy(t, up)
	global := append([]string{"--insecure-registry", up.Host, "--insecure-registry", proxy.Host, "--ca-file", mirror.CAFile, "--authfile", mirror.AuthFile}, sf...)
	work := []string{"--work-dir", t.TempDir()}

	args := append([]string{"publish", "busybox-demo:1.0.0", "--to", up.Host + "/agents/busybox", "--to", mirror.Host + "/up/agents/busybox", "-o", "json"}, append(global, work...)...)
	code, stdout, stderr := cli(t, args...)
	if code != 0 {
		t.Fatalf("publish: exit %d\n%s", code, stderr)
	}
	var rep struct {
		Digest       string `json:"digest"`
		Destinations []struct {
			Ref          string   `json:"ref"`
			Digest       string   `json:"digest"`
			Tags         []string `json:"tags"`
			Verified     bool     `json:"verified"`
			BytesPushed  *int64   `json:"bytesPushed"`
			BlobsSkipped *int     `json:"blobsSkipped"`
			Seconds      *float64 `json:"seconds"`
		} `json:"destinations"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	if len(rep.Destinations) != 2 {
		t.Fatalf("%s", stdout)
	}
	for _, d := range rep.Destinations {
		// Tags default to the local image's: the definition's 1.0.0 and latest.
		if d.Digest != rep.Digest || !d.Verified || strings.Join(d.Tags, ",") != "1.0.0,latest" || d.BytesPushed == nil || d.BlobsSkipped == nil || d.Seconds == nil {
			t.Errorf("%+v", d)
		}
	}

	// The proxy corrupts the last layer: verify docker:// exits 3 naming it.
	var m struct {
		Layers []struct{ Digest string } `json:"layers"`
	}
	code, stdout, _ = cli(t, append([]string{"verify", "docker://" + up.Host + "/agents/busybox@" + rep.Digest, "-o", "json"}, global...)...)
	if code != 0 || json.Unmarshal([]byte(stdout), &m) != nil || len(m.Layers) != 3 {
		t.Fatalf("verify upstream: exit %d %s", code, stdout)
	}
	proxy.Set(registrytest.Faults{CorruptBlob: m.Layers[2].Digest})
	code, _, stderr = cli(t, append([]string{"verify", "docker://" + proxy.Host + "/agents/busybox:1.0.0"}, global...)...)
	if code != 3 || !strings.Contains(stderr, "layer 2 "+m.Layers[2].Digest) {
		t.Fatalf("corrupt layer: exit %d\n%s", code, stderr)
	}

	// Another image under the same tag: refused, exit 1, both digests named.
	if code, _, stderr := cli(t, append([]string{"build", "../../testdata/busybox", "--set", "greeting=other", "--tag", "other", "--cache-dir", buildertest.SourceCache(t)}, sf...)...); code != 0 {
		t.Fatalf("build: %s", stderr)
	}
	code, _, stderr = cli(t, append([]string{"publish", "busybox-demo:other", "--to", up.Host + "/agents/busybox:1.0.0"}, append(global, work...)...)...)
	if code != 1 || !strings.Contains(stderr, "already points to "+rep.Digest) {
		t.Fatalf("tag conflict: exit %d\n%s", code, stderr)
	}

	// rewrite --pin resolves the digest from the mirror.
	cf := filepath.Join(t.TempDir(), "Containerfile")
	os.WriteFile(cf, []byte("FROM "+"registry.example/agents/busybox:1.0.0\n"), 0o644)
	code, _, stderr = cli(t, append([]string{"rewrite", "--mirror", "registry.example=" + mirror.Host + "/up", "--pin", "--write", cf}, global...)...)
	got, _ := os.ReadFile(cf)
	if code != 0 || string(got) != "FROM "+mirror.Host+"/up/agents/busybox:1.0.0@"+rep.Digest+"\n" {
		t.Fatalf("rewrite: exit %d %q\n%s", code, got, stderr)
	}
}
