package publisher

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/builder/oci/remote"

	"github.com/agentforge/agentforge/publisher/registrytest"
)

// A second repository on the same registry gets the blobs by a
// cross-repository mount (POST …/blobs/uploads/?mount=…&from=…), not by
// sending them again.
func TestPublish_CrossRepositoryMount(t *testing.T) {
	img := buildLocal(t, "hello")
	reg := registrytest.New(t, registrytest.Options{})
	proxy := registrytest.NewProxy(t, reg)
	opts := Options{Hosts: registrytest.Open(t, remote.Registries{Insecure: []string{proxy.Host}}), WorkDir: t.TempDir(), Verify: VerifyFast}
	if _, err := Publish(context.Background(), img.ref, []Destination{dest(t, proxy.Host+"/team-a/busybox:1")}, opts); err != nil {
		t.Fatal(err)
	}
	before := len(proxy.Log())
	rep, err := Publish(context.Background(), img.ref, []Destination{dest(t, proxy.Host+"/team-b/busybox:1")}, opts)
	if err != nil {
		t.Fatal(err)
	}
	d := rep.Destinations[0]
	if d.BlobsPushed != 0 || d.BytesPushed != 0 || d.BlobsSkipped != 4 {
		t.Errorf("second repository: %+v", d)
	}
	uploads := 0
	for _, e := range proxy.Log()[before:] {
		if e.Method == "PUT" && strings.Contains(e.Path, "/team-b/busybox/blobs/uploads/") {
			uploads++
		}
	}
	if uploads != 0 {
		t.Errorf("%d blobs were uploaded again instead of mounted", uploads)
	}
}

// A mirror between two repositories of one registry mounts the blobs from
// the source repository instead of sending them again, even when this
// work dir never saw the image there: the source is read through our own
// client, which tells c/image's blob-info cache nothing, so the mirror
// tells it where the blobs are. (c/image mounts only a blob whose
// compression its cache knows: the publish to another registry, from the
// same work dir, records that.)
func TestMirror_SameRegistryMounts(t *testing.T) {
	img := buildLocal(t, "hello")
	other := registrytest.New(t, registrytest.Options{})
	reg := registrytest.New(t, registrytest.Options{})
	proxy := registrytest.NewProxy(t, reg)
	hosts := registrytest.Hosts(t, other, reg, proxy)
	work := t.TempDir()
	ctx := context.Background()
	if _, err := Publish(ctx, img.ref, []Destination{dest(t, other.Host+"/team-a/busybox:1")}, Options{Hosts: hosts, WorkDir: work, Verify: VerifyNone}); err != nil {
		t.Fatal(err)
	}
	// Onto the registry by a run with a work dir of its own, as another
	// machine would: the shared work dir learns nothing of it.
	if _, err := Mirror(ctx, mustRef(t, "docker://"+other.Host+"/team-a/busybox:1"), []Destination{dest(t, proxy.Host+"/staging/busybox", "1")},
		MirrorOptions{Options: Options{Hosts: hosts, WorkDir: t.TempDir(), Verify: VerifyNone}}); err != nil {
		t.Fatal(err)
	}
	before := len(proxy.Log())
	rep, err := Mirror(ctx, mustRef(t, "docker://"+proxy.Host+"/staging/busybox:1"), []Destination{dest(t, proxy.Host+"/prod/busybox", "1")},
		MirrorOptions{Options: Options{Hosts: hosts, WorkDir: work, Verify: VerifyFull}})
	if err != nil {
		t.Fatal(err)
	}
	if d := rep.Destinations[0]; d.BlobsPushed != 0 || d.BytesPushed != 0 || d.BlobsSkipped != 4 {
		t.Errorf("same registry: %+v", d)
	}
	mounts := 0
	for _, e := range proxy.Log()[before:] {
		if e.Method == http.MethodPut && strings.Contains(e.Path, "/prod/busybox/blobs/uploads/") {
			t.Errorf("blob sent again instead of mounted: %s %s", e.Method, e.Path)
		}
		if e.Method == http.MethodPost && strings.Contains(e.Query, "mount=") && strings.Contains(e.Query, "from=staging") {
			mounts++
		}
	}
	if mounts != 4 {
		t.Errorf("%d blobs mounted from staging/busybox, want 4", mounts)
	}
}
