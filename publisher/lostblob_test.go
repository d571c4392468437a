package publisher

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/agentforge/agentforge/builder/oci/ocitest"
	"github.com/agentforge/agentforge/publisher/registrytest"
)

// A destination that took an image and later lost one of its layers (a
// blob deleted through the API, storage cleaned behind the registry's
// back) still serves the manifest by digest. Mirroring again sends what
// it lacks, as skopeo copy would (c/image asks for every blob), instead
// of trusting the manifest and failing verification on every rerun.
func TestMirror_RepairsALostBlob(t *testing.T) {
	src, dst := registrytest.New(t, registrytest.Options{}), registrytest.New(t, registrytest.Options{})
	hosts := registrytest.Hosts(t, src, dst)
	registrytest.Push(t, hosts, src.Host+"/agents/tool:1", ocitest.Options{Layers: 2, Size: 64 << 10, Seed: 71})
	from := mustRef(t, "docker://"+src.Host+"/agents/tool:1")
	to := []Destination{dest(t, dst.Host+"/m/tool")}
	ctx := context.Background()
	if _, err := Mirror(ctx, from, to, MirrorOptions{Options: Options{Hosts: hosts, WorkDir: t.TempDir()}}); err != nil {
		t.Fatal(err)
	}
	// The registry loses one layer of the repository: DELETE
	// /v2/m/tool/blobs/<digest>, as an administrator's cleanup does.
	layers, err := filepath.Glob(filepath.Join(dst.Root, "docker/registry/v2/repositories/m/tool/_layers/sha256/*"))
	if err != nil || len(layers) != 3 {
		t.Fatalf("the destination's blobs: %v %v", layers, err)
	}
	lost := "sha256:" + filepath.Base(layers[0])
	req, _ := http.NewRequest(http.MethodDelete, "http://"+dst.Host+"/v2/m/tool/blobs/"+lost, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("DELETE %s: %v %v", lost, resp, err)
	}
	resp.Body.Close()
	rep, err := Mirror(ctx, from, to, MirrorOptions{Options: Options{Hosts: hosts, WorkDir: t.TempDir()}})
	if err != nil {
		t.Fatalf("mirroring again onto a destination that lost a blob: %v", err)
	}
	if d := rep.Destinations[0]; !d.Verified || d.BlobsPushed != 1 || d.BlobsSkipped != 2 {
		t.Errorf("%+v: want the lost blob sent again, the others skipped, and verified", d)
	}
}
