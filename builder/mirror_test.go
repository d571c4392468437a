package builder_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/builder/source"

	"github.com/agentforge/agentforge/builder"
	"github.com/agentforge/agentforge/builder/buildertest"
	"github.com/agentforge/agentforge/images"
	"github.com/agentforge/agentforge/publisher/registrytest"
	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/types"
)

// A base image named docker.io/… is pulled from a mirror given with
// --registry-mirror: the build works with docker.io unreachable, and the
// image records the original name.
func TestBuild_BaseThroughRegistryMirror(t *testing.T) {
	buildertest.Builds(t)
	store := buildertest.NewStore(t, "vfs")
	base := buildertest.Busybox(t, store, nil)
	mirror := registrytest.New(t, registrytest.Options{})

	// Seed the mirror with the busybox image as docker.io/library/busybox-demo:1.
	named, _ := reference.ParseNormalizedNamed(mirror.Host + "/docker.io/library/busybox-demo:1")
	dest, _ := docker.NewReference(named)
	src, err := oci.ParseReference(base.ID, store)
	if err != nil {
		t.Fatal(err)
	}
	pc, _ := signature.NewPolicyContext(&signature.Policy{Default: []signature.PolicyRequirement{signature.NewPRInsecureAcceptAnything()}})
	defer pc.Destroy()
	if _, err := copy.Image(context.Background(), pc, dest, src, &copy.Options{DestinationCtx: &types.SystemContext{DockerInsecureSkipTLSVerify: types.OptionalBoolTrue}}); err != nil {
		t.Fatal(err)
	}

	def, err := images.Load(fstest.MapFS{
		"image.yaml":    {Data: []byte("name: child\nversion: \"1\"\nbase: {image: docker.io/library/busybox-demo:1}\nsourceDateEpoch: 1700000000\n")},
		"Containerfile": {Data: []byte("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN [\"/bin/sh\", \"-c\", \"echo child > /etc/child\"]\n")},
	}, "child", nil)
	if err != nil {
		t.Fatal(err)
	}
	childStore := buildertest.NewStore(t, "vfs")
	res, err := builder.Build(context.Background(), def, builder.BuildOptions{
		Store: childStore, Fetcher: &source.Fetcher{CacheDir: t.TempDir()}, TmpDir: t.TempDir(), Output: os.Stderr,
		Hosts: registrytest.Open(t, remote.Registries{Mirrors: []remote.Mirror{{From: "docker.io", To: mirror.Host + "/docker.io"}}, Insecure: []string{mirror.Host}}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Base.Ref != "docker.io/library/busybox-demo:1" || !strings.HasPrefix(res.Base.Digest, "sha256:") || len(res.Layers) != 4 {
		t.Fatalf("result: %+v", res)
	}
	// A pulled image is stored with its registry (gzip) manifest, while
	// storage serves layers uncompressed: verify copes with both.
	pulled, err := oci.ParseReference("busybox-demo:1", childStore)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := oci.Verify(context.Background(), pulled, oci.VerifyOptions{})
	if err != nil || !rep.OK || rep.Digest != res.Base.Digest {
		t.Fatalf("verify the pulled base: %v (digest %s, base %s)", err, rep.Digest, res.Base.Digest)
	}
}
