package publisher

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agentforge/agentforge/builder/oci/ocitest"
	"github.com/agentforge/agentforge/publisher/registrytest"
)

// Two destinations in one repository (--to reg/app:1 --to reg/app:latest:
// how a user gives one repository two tags) get each blob once: the
// second finds what the first sent, instead of both finding every blob
// missing and sending it at the same time. Both report their tags.
func TestMirror_TwoDestinationsInOneRepositorySendEachBlobOnce(t *testing.T) {
	src, dst := registrytest.New(t, registrytest.Options{}), registrytest.New(t, registrytest.Options{})
	dp := registrytest.NewProxy(t, dst)
	// A far link: each request takes 20 ms, as over a WAN.
	dp.Set(registrytest.Faults{Latency: 20 * time.Millisecond})
	hosts := registrytest.Hosts(t, src, dst, dp)
	registrytest.Push(t, hosts, src.Host+"/agents/tool:1", ocitest.Options{Layers: 2, Seed: 77})
	from := mustRef(t, "docker://"+src.Host+"/agents/tool:1")
	rep, err := Mirror(context.Background(), from, []Destination{dest(t, dp.Host+"/m/tool:1"), dest(t, dp.Host+"/m/tool:latest")},
		MirrorOptions{Options: Options{Hosts: hosts, WorkDir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	uploads := 0
	for _, e := range dp.Log() {
		if e.Method == http.MethodPost && strings.HasSuffix(e.Path, "/blobs/uploads/") {
			uploads++
		}
	}
	if uploads != 3 {
		t.Errorf("%d uploads, want 3 (the config and 2 layers, once)", uploads)
	}
	pushed := 0
	for i, d := range rep.Destinations {
		pushed += d.BlobsPushed
		if want := []string{"1", "latest"}[i]; !d.Verified || strings.Join(d.Tags, ",") != want {
			t.Errorf("%+v: want verified, tagged %s", d, want)
		}
	}
	if pushed != 3 {
		t.Errorf("the report says %d blobs pushed in all, want 3", pushed)
	}
}
