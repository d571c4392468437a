package publisher

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/agentforge/agentforge/builder/oci/ocitest"
	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/publisher/registrytest"
	"github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/oci/layout"
)

// A dry run's destination that failed lists no tag, as a failed push's
// report does (Result.Tags): nothing names the digest there because of it.
func TestMirror_DryRunFailureListsNoTag(t *testing.T) {
	src := registrytest.New(t, registrytest.Options{})
	locked := registrytest.New(t, registrytest.Options{Auth: true})
	regs := remote.Registries{Insecure: []string{src.Host, locked.Host}} // no credentials for locked
	ctx := context.Background()
	layoutRef, err := layout.NewReference(writeIndexLayout(t), "multi")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Publish(ctx, layoutRef, []Destination{dest(t, src.Host+"/library/tool:2.0")}, Options{Hosts: registrytest.Open(t, regs), WorkDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	srcRef := mustRef(t, "docker://"+src.Host+"/library/tool:2.0")
	plan, err := Mirror(ctx, srcRef, []Destination{dest(t, locked.Host+"/mirror/tool", "2.0")}, MirrorOptions{Options: Options{Hosts: registrytest.Open(t, regs), WorkDir: t.TempDir()}, DryRun: true})
	if err == nil || plan == nil || len(plan.Destinations) != 1 || plan.Destinations[0].Error == "" {
		t.Fatalf("want the locked destination failed: %+v %v", plan, err)
	}
	if tags := plan.Destinations[0].Tags; tags == nil || len(tags) != 0 {
		t.Errorf("tags %q (nil %t), want none listed", tags, tags == nil)
	}
}

// A dry run counts a blob that two platform images share (a layer built
// the same way on both: a jar, a data file) once, as the copy sends it.
func TestMirror_DryRunCountsASharedBlobOnce(t *testing.T) {
	src, dst := registrytest.New(t, registrytest.Options{}), registrytest.New(t, registrytest.Options{})
	hosts := registrytest.Hosts(t, src, dst)
	amd := registrytest.Push(t, hosts, src.Host+"/agents/tool:amd64", ocitest.Options{Layers: 1, Seed: 74})
	ctx := context.Background()
	c, err := hosts.Client(reference.TrimNamed(amd))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := c.Manifest(ctx, amd.Digest().String(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var m imgspecv1.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	// The arm64 image: another config, the same layer.
	rc, err := c.OpenBlob(ctx, m.Config.Digest)
	if err != nil {
		t.Fatal(err)
	}
	var img imgspecv1.Image
	err = json.NewDecoder(rc).Decode(&img)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	img.Architecture = "arm64"
	cfg, _ := json.Marshal(img)
	if err := c.PutBlob(ctx, digest.FromBytes(cfg), int64(len(cfg)), bytes.NewReader(cfg)); err != nil {
		t.Fatal(err)
	}
	m.Config = imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageConfig, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))}
	arm, _ := json.Marshal(m)
	if err := c.PutManifest(ctx, digest.FromBytes(arm).String(), imgspecv1.MediaTypeImageManifest, arm); err != nil {
		t.Fatal(err)
	}
	idx, _ := json.Marshal(imgspecv1.Index{Versioned: specsVersioned(), MediaType: imgspecv1.MediaTypeImageIndex, Manifests: []imgspecv1.Descriptor{
		{MediaType: imgspecv1.MediaTypeImageManifest, Digest: amd.Digest(), Size: int64(len(raw)), Platform: &imgspecv1.Platform{OS: "linux", Architecture: "amd64"}},
		{MediaType: imgspecv1.MediaTypeImageManifest, Digest: digest.FromBytes(arm), Size: int64(len(arm)), Platform: &imgspecv1.Platform{OS: "linux", Architecture: "arm64"}},
	}})
	if err := c.PutManifest(ctx, "multi", imgspecv1.MediaTypeImageIndex, idx); err != nil {
		t.Fatal(err)
	}
	from := mustRef(t, "docker://"+src.Host+"/agents/tool:multi")
	to := []Destination{dest(t, dst.Host+"/m/tool")}
	plan, err := Mirror(ctx, from, to, MirrorOptions{Options: Options{Hosts: hosts, WorkDir: t.TempDir()}, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Mirror(ctx, from, to, MirrorOptions{Options: Options{Hosts: hosts, WorkDir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	p, r := plan.Destinations[0], rep.Destinations[0]
	if r.BlobsPushed != 3 || p.BlobsPushed != r.BlobsPushed || p.BytesPushed != r.BytesPushed {
		t.Errorf("the dry run would copy %d blobs (%d bytes), the copy sent %d (%d bytes): want 3 (2 configs, the shared layer once), the same", p.BlobsPushed, p.BytesPushed, r.BlobsPushed, r.BytesPushed)
	}
}
