package publisher

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/builder/oci/ocitest"
	"github.com/agentforge/agentforge/publisher/registrytest"
	"github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker/reference"
)

// An index may name one manifest more than once (linux/arm/v6 and
// linux/arm/v7 served by the same image; or a hostile source listing one
// 4 MiB manifest thousands of times to exhaust the mirror's memory): a
// mirror reads and writes each manifest once per destination, however
// often the index names it, and still copies the index byte for byte.
func TestMirror_ChildNamedManyTimesIsReadOnce(t *testing.T) {
	src, dst := registrytest.New(t, registrytest.Options{}), registrytest.New(t, registrytest.Options{})
	sp, dp := registrytest.NewProxy(t, src), registrytest.NewProxy(t, dst)
	hosts := registrytest.Hosts(t, src, sp, dst, dp)
	child := registrytest.Push(t, hosts, src.Host+"/agents/tool:child", ocitest.Options{Layers: 1, Seed: 73})
	ctx := context.Background()
	repo, _ := reference.ParseNormalizedNamed(src.Host + "/agents/tool")
	c, err := hosts.Client(repo)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := c.Manifest(ctx, child.Digest().String(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	index := func(n int, tag string) []byte {
		idx := imgspecv1.Index{Versioned: specsVersioned(), MediaType: imgspecv1.MediaTypeImageIndex}
		for range n {
			idx.Manifests = append(idx.Manifests, imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageManifest, Digest: child.Digest(), Size: int64(len(raw)),
				Platform: &imgspecv1.Platform{OS: "linux", Architecture: "amd64"}})
		}
		top, _ := json.Marshal(idx)
		if err := c.PutManifest(ctx, tag, imgspecv1.MediaTypeImageIndex, top); err != nil {
			t.Fatal(err)
		}
		return top
	}
	// What mirroring (and verifying) an index that names the child once
	// costs, then one that names it 64 times: the same.
	count := func(p *registrytest.Proxy, method string, from int) int {
		n := 0
		for _, e := range p.Log()[from:] {
			if e.Method == method && strings.HasSuffix(e.Path, "/manifests/"+child.Digest().String()) {
				n++
			}
		}
		return n
	}
	var reads, writes, verifies [2]int
	for i, n := range []int{1, 64} {
		top := index(n, fmt.Sprintf("multi-%d", n))
		s0, d0 := len(sp.Log()), len(dp.Log())
		rep, err := Mirror(ctx, mustRef(t, fmt.Sprintf("docker://%s/agents/tool:multi-%d", sp.Host, n)), []Destination{dest(t, fmt.Sprintf("%s/m%d/tool", dp.Host, n))},
			MirrorOptions{Options: Options{Hosts: hosts, WorkDir: t.TempDir(), Verify: VerifyFull}})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Digest != digest.FromBytes(top).String() || !rep.Destinations[0].Verified {
			t.Errorf("mirrored %+v, want the source's index %s, verified", rep, digest.FromBytes(top))
		}
		reads[i], writes[i], verifies[i] = count(sp, http.MethodGet, s0), count(dp, http.MethodPut, d0), count(dp, http.MethodGet, d0)
	}
	if reads[0] != 1 || reads[1] != reads[0] {
		t.Errorf("the child manifest was read %d times from the source for an index naming it once, %d for one naming it 64 times: want once", reads[0], reads[1])
	}
	if writes[0] != 1 || writes[1] != writes[0] {
		t.Errorf("the child manifest was written %d times for an index naming it once, %d for one naming it 64 times: want once", writes[0], writes[1])
	}
	if verifies[1] != verifies[0] {
		t.Errorf("verification read the child manifest %d times for an index naming it once, %d for one naming it 64 times", verifies[0], verifies[1])
	}
}
