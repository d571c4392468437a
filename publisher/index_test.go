package publisher

import (
	"context"
	"errors"
	"testing"

	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/builder/oci/ocitest"
	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/publisher/registrytest"
	"github.com/agentforge/agentforge/publisher/sign"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/types"
)

// publishPlatform publishes a single-platform synthetic image to reg and
// returns its registry reference by digest.
func publishPlatform(t *testing.T, reg *registrytest.Registry, repo, platform string, seed uint64) types.ImageReference {
	t.Helper()
	src := ocitest.Layout(t, t.TempDir(), "v1", ocitest.Options{Layers: 2, Size: 8 << 10, Seed: seed, Platforms: []string{platform}})
	opts := Options{Hosts: registrytest.Open(t, remote.Registries{Insecure: []string{reg.Host}}), WorkDir: t.TempDir(), Verify: VerifyNone}
	rep, err := Publish(context.Background(), src, []Destination{dest(t, reg.Host+"/"+repo)}, opts)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := oci.ParseReference("docker://"+reg.Host+"/"+repo+"@"+rep.Digest, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// The fan-out case: amd64 and arm64 built and published on their own
// agents (to the upstream), joined into one index on the upstream and on a
// mirror that has neither image yet: same index digest on both, every
// child copied where missing, verified, tagged; a second run sends nothing.
func TestIndex_JoinsPlatformsOnEveryDestination(t *testing.T) {
	up := registrytest.New(t, registrytest.Options{})
	mirror := registrytest.New(t, registrytest.Options{Auth: true, TLS: true})
	amd := publishPlatform(t, up, "agents/py", "linux/amd64", 1)
	arm := publishPlatform(t, up, "agents/py", "linux/arm64", 2)
	opts := Options{Hosts: registrytest.Open(t, remote.Registries{Insecure: []string{up.Host}, CAFile: mirror.CAFile, AuthFile: mirror.AuthFile}), WorkDir: t.TempDir()}
	dests := []Destination{dest(t, up.Host+"/agents/py:1.0"), dest(t, mirror.Host+"/cn/agents/py:1.0")}

	rep, err := Index(context.Background(), []types.ImageReference{arm, amd}, dests, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Manifests) != 2 || rep.Manifests[0].Platform != "linux/amd64" || rep.Manifests[1].Platform != "linux/arm64" {
		t.Fatalf("manifests: %+v", rep.Manifests)
	}
	for _, d := range rep.Destinations {
		if d.Digest != rep.Digest || !d.Verified {
			t.Errorf("%s: %+v", d.Ref, d)
		}
	}
	if rep.Destinations[1].BlobsPushed == 0 {
		t.Errorf("the mirror got no blob: %+v", rep.Destinations[1])
	}
	// An independent client sees the index, by tag, on both.
	if got := skopeoDigest(t, up, up.Host, "agents/py:1.0"); got != rep.Digest {
		t.Errorf("upstream serves %s, index said %s", got, rep.Digest)
	}
	if got := skopeoDigest(t, mirror, mirror.Host, "cn/agents/py:1.0"); got != rep.Digest {
		t.Errorf("mirror serves %s, index said %s", got, rep.Digest)
	}
	// The order of the arguments does not change the index.
	again, err := Index(context.Background(), []types.ImageReference{amd, arm}, dests, opts)
	if err != nil || again.Digest != rep.Digest {
		t.Fatalf("again: %v %v", again, err)
	}
	for _, d := range again.Destinations {
		if d.BlobsPushed != 0 {
			t.Errorf("%s: sent %d blobs on an unchanged run", d.Ref, d.BlobsPushed)
		}
	}
}

func TestIndex_BadInput(t *testing.T) {
	up := registrytest.New(t, registrytest.Options{})
	amd := publishPlatform(t, up, "agents/py", "linux/amd64", 1)
	amd2 := publishPlatform(t, up, "agents/py", "linux/amd64", 3)
	arm := publishPlatform(t, up, "agents/py", "linux/arm64", 4)
	armV8 := publishPlatform(t, up, "agents/py", "linux/arm64/v8", 5)
	byTag, _ := oci.ParseReference("docker://"+up.Host+"/agents/py:v1", nil)
	opts := Options{Hosts: registrytest.Open(t, remote.Registries{Insecure: []string{up.Host}}), WorkDir: t.TempDir()}
	d := []Destination{dest(t, up.Host+"/agents/py:x")}
	for name, srcs := range map[string][]types.ImageReference{
		"two images of one platform": {amd, amd2},
		// One platform spelled two ways (containerd normalizes arm64/v8 to
		// arm64): a client would take either.
		"linux/arm64 and linux/arm64/v8": {arm, armV8},
		"a tag, not a digest":            {byTag},
		"nothing":                        nil,
	} {
		if _, err := Index(context.Background(), srcs, d, opts); !errors.Is(err, errs.ErrInput) {
			t.Errorf("%s: want bad input, got %v", name, err)
		}
	}
}

// A platform image signed (and SBOM-attested) where it was published keeps
// its signature and attestation on a mirror that index copies it to.
func TestIndex_CopiesChildSignatures(t *testing.T) {
	up := registrytest.New(t, registrytest.Options{})
	mirror := registrytest.New(t, registrytest.Options{Auth: true, TLS: true})
	amd := publishPlatform(t, up, "agents/py", "linux/amd64", 3)
	arm := publishPlatform(t, up, "agents/py", "linux/arm64", 4)
	regs := remote.Registries{Insecure: []string{up.Host}, CAFile: mirror.CAFile, AuthFile: mirror.AuthFile}
	hosts, err := regs.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	key := testKey(t)
	ctx := context.Background()
	so := sign.Options{Hosts: hosts}
	amdRef := amd.DockerReference().(reference.Canonical)
	if _, err := sign.Sign(ctx, amdRef, key, so); err != nil {
		t.Fatal(err)
	}
	if _, err := sign.Attest(ctx, amdRef, key, "spdxjson", []byte(`{"spdxVersion":"SPDX-2.3"}`), so); err != nil {
		t.Fatal(err)
	}
	opts := Options{Hosts: registrytest.Open(t, regs), WorkDir: t.TempDir()}
	if _, err := Index(ctx, []types.ImageReference{amd, arm}, []Destination{dest(t, mirror.Host+"/cn/agents/py:1.0")}, opts); err != nil {
		t.Fatal(err)
	}
	onMirror, err := reference.WithDigest(reference.TrimNamed(mustNamed(t, mirror.Host+"/cn/agents/py")), amdRef.Digest())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sign.Verify(ctx, onMirror, key.Verifier(), so); err != nil {
		t.Errorf("the amd64 image's signature on the mirror: %v", err)
	}
	if _, err := sign.VerifyAttestation(ctx, onMirror, key.Verifier(), "spdxjson", so); err != nil {
		t.Errorf("the amd64 image's SBOM attestation on the mirror: %v", err)
	}
}

func mustNamed(t *testing.T, s string) reference.Named {
	t.Helper()
	n, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
