package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/builder/oci/ocitest"
	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/publisher/attachments"
	"github.com/agentforge/agentforge/publisher/registrytest"
	"github.com/agentforge/agentforge/publisher/sign"
	"github.com/agentforge/agentforge/publisher/sign/signtest"
	"go.podman.io/image/v5/docker/reference"
)

// Exit 3 says "the signature is bad or missing"; a registry that keeps
// failing to serve the signature says nothing about it: verify --key and
// register --require-signature then exit 1 ("could not tell"), and Jenkins
// is not contacted.
func TestCLI_UnreadableSignatureIsExit1(t *testing.T) {
	up := registrytest.New(t, registrytest.Options{})
	proxy := registrytest.NewProxy(t, up)
	hosts := registrytest.Open(t, remote.Registries{Insecure: []string{proxy.Host}})
	ctx := context.Background()
	key, _, pub := signtest.KeyPair(t, "")
	ref := registrytest.Push(t, hosts, proxy.Host+"/up/agent:1", ocitest.Options{Layers: 1, Size: 256, Seed: 81})
	if _, err := sign.Sign(ctx, ref, key, sign.Options{Hosts: hosts}); err != nil {
		t.Fatal(err)
	}
	tag, _ := attachments.TagRef(ref, ref.Digest(), attachments.SuffixSignature)
	a, err := attachments.Read(ctx, sign.Options{Hosts: hosts}, tag)
	if err != nil {
		t.Fatal(err)
	}
	proxy.Set(registrytest.Faults{UnavailableBlobs: map[string]int{a.Manifest.Layers[0].Digest.String(): -1}})
	insecure := []string{"--insecure-registry", proxy.Host}
	code, stdout, stderr := cli(t, append([]string{"verify", "docker://" + ref.String(), "--key", pub}, insecure...)...)
	if code != 1 || !strings.Contains(stdout+stderr, "could not tell") {
		t.Errorf("verify --key: exit %d, want 1 saying it could not tell\n%s%s", code, stdout, stderr)
	}
	srv := jenkinsEmulator(t)
	t.Setenv("JENKINS_API_TOKEN", testToken)
	code, stdout, stderr = cli(t, append([]string{"register", "--jenkins-url", srv.URL, "--jenkins-user", "ci-bot", "--image", reference.FamiliarString(ref), "--require-signature", pub}, insecure...)...)
	if code != 1 || len(srv.State().Clouds[0].Templates) != 0 {
		t.Errorf("register --require-signature: exit %d, want 1 and nothing registered\n%s%s", code, stdout, stderr)
	}
}

// register --require-signature registers exactly the reference it
// verified, in the form Kubernetes pulls: the repository by digest, never
// docker:// in front, nor a tag next to the digest that was not what was
// checked. Without --require-signature, docker:// is dropped too.
func TestCLI_RegisterPinsWhatWasVerified(t *testing.T) {
	reg := registrytest.New(t, registrytest.Options{Auth: true, TLS: true})
	hosts := registrytest.Hosts(t, reg)
	key, _, pub := signtest.KeyPair(t, "")
	ref := registrytest.Push(t, hosts, reg.Host+"/agents/py:1", ocitest.Options{Layers: 1, Size: 256, Seed: 82})
	if _, err := sign.Sign(context.Background(), ref, key, sign.Options{Hosts: hosts}); err != nil {
		t.Fatal(err)
	}
	want := reg.Host + "/agents/py@" + ref.Digest().String()
	t.Setenv("JENKINS_API_TOKEN", testToken)
	global := []string{"--authfile", reg.AuthFile, "--ca-file", reg.CAFile, "-o", "json"}
	for i, tc := range []struct {
		image   string
		require bool
	}{
		{"docker://" + want, true},
		{reg.Host + "/agents/py:1@" + ref.Digest().String(), true},
		{"docker://" + reg.Host + "/agents/py:1@" + ref.Digest().String(), true},
		{want, true},
		{"docker://" + want, false},
	} {
		srv := jenkinsEmulator(t)
		args := []string{"register", "--jenkins-url", srv.URL, "--jenkins-user", "ci-bot", "--template", fmt.Sprintf("t%d", i), "--image", tc.image}
		if tc.require {
			args = append(args, "--require-signature", pub)
		}
		code, stdout, stderr := cli(t, append(args, global...)...)
		var out struct{ Template struct{ Image string } }
		if code != 0 || json.Unmarshal([]byte(stdout), &out) != nil {
			t.Fatalf("%s: exit %d\n%s%s", tc.image, code, stdout, stderr)
		}
		stored := srv.State().Clouds[0].Templates[0]
		if out.Template.Image != want || !strings.Contains(fmt.Sprint(stored), want) || strings.Contains(fmt.Sprint(stored), "docker://") || strings.Contains(fmt.Sprint(stored), ":1@") {
			t.Errorf("--image %s (require-signature %t): registered %q, stored %v; want %s", tc.image, tc.require, out.Template.Image, stored, want)
		}
	}
}
