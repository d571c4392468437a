package publisher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/builder/oci/ocitest"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/publisher/attachments"
	"github.com/agentforge/agentforge/publisher/registrytest"
	"github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// referrerGraph serves, on an OCI registry, referrers made up on the fly:
// manifests whose subject is a given digest (sharing two real blobs), and
// the tag-schema indexes listing them.
type referrerGraph struct {
	cfg, layer imgspecv1.Descriptor
	served     map[string][]byte // manifest by digest or tag
	n          int
}

// add makes n referrers of subject, lists them in subject's tag-schema
// index and returns their digests.
func (g *referrerGraph) add(t *testing.T, subject digest.Digest, n int) []digest.Digest {
	t.Helper()
	var list []imgspecv1.Descriptor
	var out []digest.Digest
	for range n {
		g.n++
		m := imgspecv1.Manifest{Versioned: specsVersioned(), MediaType: imgspecv1.MediaTypeImageManifest, ArtifactType: "application/spdx+json",
			Config: g.cfg, Layers: []imgspecv1.Descriptor{g.layer}, Annotations: map[string]string{"n": fmt.Sprint(g.n)},
			Subject: &imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageManifest, Digest: subject, Size: 100}}
		raw, _ := json.Marshal(m)
		d := digest.FromBytes(raw)
		g.served[d.String()] = raw
		list = append(list, imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageManifest, Digest: d, Size: int64(len(raw)), ArtifactType: m.ArtifactType})
		out = append(out, d)
	}
	tag, _ := attachments.ReferrersTag(subject)
	raw, _ := json.Marshal(imgspecv1.Index{Versioned: specsVersioned(), MediaType: imgspecv1.MediaTypeImageIndex, Manifests: list})
	g.served[tag] = raw
	return out
}

func (g *referrerGraph) serve(w http.ResponseWriter, r *http.Request) bool {
	_, ref, ok := strings.Cut(r.URL.Path, "/manifests/")
	raw, known := g.served[ref]
	if !ok || !known || r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	var m struct{ MediaType string }
	json.Unmarshal(raw, &m)
	w.Header().Set("Content-Type", m.MediaType)
	w.Header().Set("Docker-Content-Digest", digest.FromBytes(raw).String())
	w.Header().Set("Content-Length", fmt.Sprint(len(raw)))
	if r.Method == http.MethodGet {
		w.Write(raw)
	}
	return true
}

// The README's bound of 1000 referrer manifests is checked on the plan,
// from the source's listings, before anything is written: a source with
// more, on one level or spread over three, gets no byte of the image, no
// referrer and no index onto the destination (the bound used to be met
// after the first level was written: 1100 manifests, then exit 3).
func TestMirror_ReferrerBoundCheckedBeforeAnythingIsWritten(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		build func(t *testing.T, g *referrerGraph, image digest.Digest)
	}{
		{"1001 on one level", func(t *testing.T, g *referrerGraph, image digest.Digest) { g.add(t, image, 1001) }},
		{"1110 over three levels", func(t *testing.T, g *referrerGraph, image digest.Digest) {
			for _, r1 := range g.add(t, image, 10) {
				for _, r2 := range g.add(t, r1, 10) {
					g.add(t, r2, 10)
				}
			}
		}},
		{"past the depth followed", func(t *testing.T, g *referrerGraph, image digest.Digest) {
			r3 := g.add(t, g.add(t, g.add(t, image, 1)[0], 1)[0], 1)[0]
			g.add(t, r3, 1000) // written as referrers of the third level
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := registrytest.NewOCI(t, registrytest.Options{})
			dst := registrytest.New(t, registrytest.Options{})
			proxy := registrytest.NewProxy(t, dst)
			hosts := registrytest.Hosts(t, src, dst, proxy)
			image := registrytest.Push(t, hosts, src.Host+"/up/agent:1", ocitest.Options{Layers: 2, Size: 4096, Seed: 121})
			w, err := attachments.NewWriter(ctx, attachments.Options{Hosts: hosts}, image)
			if err != nil {
				t.Fatal(err)
			}
			g := &referrerGraph{served: map[string][]byte{}}
			g.cfg, _, _ = w.Put(ctx, "application/vnd.oci.empty.v1+json", []byte("{}"))
			g.layer, _, _ = w.Put(ctx, "application/spdx+json", []byte(`{"spdxVersion":"SPDX-2.3"}`))
			w.Close()
			tc.build(t, g, image.Digest())
			src.Intercept(g.serve)

			for _, dry := range []bool{true, false} {
				_, err := Mirror(ctx, mustRef(t, "docker://"+src.Host+"/up/agent:1"), []Destination{dest(t, proxy.Host+"/mirror/agent", "1")},
					MirrorOptions{Options: Options{Hosts: hosts, WorkDir: t.TempDir()}, DryRun: dry})
				var ie *errs.IntegrityError
				if !errors.As(err, &ie) || !strings.Contains(err.Error(), "more than 1000") {
					t.Fatalf("dry run %t: got %v, want the bound", dry, err)
				}
			}
			for _, e := range proxy.Log() {
				if e.Method != http.MethodGet && e.Method != http.MethodHead {
					t.Fatalf("%s %s reached the destination: the bound was met after writing", e.Method, e.Path)
				}
			}
		})
	}
}
