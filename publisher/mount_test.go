package publisher

import (
	"context"
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
