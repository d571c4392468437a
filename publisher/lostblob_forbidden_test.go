package publisher

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/builder/oci/ocitest"
	"github.com/agentforge/agentforge/publisher/registrytest"
)

// A destination that serves the manifest but will not say whether it has
// a blob (403 to the blob's HEAD: an account that may read manifests and
// push, not look up blobs) is taken at its manifest's word on a rerun:
// nothing is sent again. (A blob it lost is sent again only where the
// registry can say so.)
func TestMirror_RerunSendsNothingWhereBlobLookupsAreRefused(t *testing.T) {
	src := registrytest.New(t, registrytest.Options{})
	dst := registrytest.NewOCI(t, registrytest.Options{})
	hosts := registrytest.Hosts(t, src, dst)
	registrytest.Push(t, hosts, src.Host+"/agents/tool:1", ocitest.Options{Layers: 2, Seed: 78})
	from := mustRef(t, "docker://"+src.Host+"/agents/tool:1")
	to := []Destination{dest(t, dst.Host+"/m/tool", "1")}
	if _, err := Mirror(context.Background(), from, to, MirrorOptions{Options: Options{Hosts: hosts, WorkDir: t.TempDir(), Verify: VerifyNone}}); err != nil {
		t.Fatal(err)
	}
	dst.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodHead && strings.Contains(r.URL.Path, "/blobs/") {
			w.WriteHeader(http.StatusForbidden)
			return true
		}
		return false
	})
	rep, err := Mirror(context.Background(), from, to, MirrorOptions{Options: Options{Hosts: registrytest.Hosts(t, src, dst), WorkDir: t.TempDir(), Verify: VerifyNone}})
	if err != nil {
		t.Fatal(err)
	}
	if d := rep.Destinations[0]; d.BlobsPushed != 0 || d.BlobsSkipped != 3 {
		t.Errorf("%+v: want nothing sent again, 3 blobs skipped", d)
	}
}
