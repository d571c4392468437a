package publisher

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/builder/oci/ocitest"
	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/images/progress"

	"github.com/agentforge/agentforge/publisher/registrytest"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/oci/layout"
)

// writeIndexLayout writes an OCI layout holding a two-platform index of tiny
// synthetic images and returns its reference.
func writeIndexLayout(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	blob := func(mediaType string, data []byte) imgspecv1.Descriptor {
		d := digest.FromBytes(data)
		p := filepath.Join(dir, "blobs", "sha256", d.Encoded())
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return imgspecv1.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data))}
	}
	var children []imgspecv1.Descriptor
	for _, arch := range []string{"amd64", "arm64"} {
		var tarBuf bytes.Buffer
		tw := tar.NewWriter(&tarBuf)
		body := []byte("built for " + arch + "\n")
		tw.WriteHeader(&tar.Header{Name: "etc/arch", Mode: 0o644, Size: int64(len(body))})
		tw.Write(body)
		tw.Close()
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(tarBuf.Bytes())
		zw.Close()
		layer := blob(imgspecv1.MediaTypeImageLayerGzip, gz.Bytes())
		cfg, _ := json.Marshal(imgspecv1.Image{
			Platform: imgspecv1.Platform{OS: "linux", Architecture: arch},
			RootFS:   imgspecv1.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromBytes(tarBuf.Bytes())}},
		})
		m, _ := json.Marshal(imgspecv1.Manifest{
			Versioned: specsVersioned(), MediaType: imgspecv1.MediaTypeImageManifest,
			Config: blob(imgspecv1.MediaTypeImageConfig, cfg), Layers: []imgspecv1.Descriptor{layer},
		})
		child := blob(imgspecv1.MediaTypeImageManifest, m)
		child.Platform = &imgspecv1.Platform{OS: "linux", Architecture: arch}
		children = append(children, child)
	}
	idx, _ := json.Marshal(imgspecv1.Index{Versioned: specsVersioned(), MediaType: imgspecv1.MediaTypeImageIndex, Manifests: children})
	top := blob(imgspecv1.MediaTypeImageIndex, idx)
	top.Annotations = map[string]string{imgspecv1.AnnotationRefName: "multi"}
	outer, _ := json.Marshal(imgspecv1.Index{Versioned: specsVersioned(), MediaType: imgspecv1.MediaTypeImageIndex, Manifests: []imgspecv1.Descriptor{top}})
	os.WriteFile(filepath.Join(dir, "index.json"), outer, 0o644)
	os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
	return dir
}

func TestMirror_MultiArchIndexKeptWhole(t *testing.T) {
	src := registrytest.New(t, registrytest.Options{})
	a := registrytest.New(t, registrytest.Options{})
	b := registrytest.New(t, registrytest.Options{Auth: true, TLS: true})
	regs := remote.Registries{Insecure: []string{src.Host, a.Host}, CAFile: b.CAFile, AuthFile: b.AuthFile}
	ctx := context.Background()

	layoutRef, err := layout.NewReference(writeIndexLayout(t), "multi")
	if err != nil {
		t.Fatal(err)
	}
	seed, err := Publish(ctx, layoutRef, []Destination{dest(t, src.Host+"/library/tool:2.0")}, Options{Hosts: registrytest.Open(t, regs), WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if seed.Destinations[0].BlobsPushed != 4 {
		t.Fatalf("seeding the index pushed %d blobs, want 4 (2 configs, 2 layers)", seed.Destinations[0].BlobsPushed)
	}

	srcRef := mustRef(t, "docker://"+src.Host+"/library/tool:2.0")
	dests := []Destination{dest(t, a.Host+"/docker.io/library/tool", "2.0"), dest(t, b.Host+"/mirror/library/tool", "2.0")}
	plan, err := Mirror(ctx, srcRef, dests, MirrorOptions{Options: Options{Hosts: registrytest.Open(t, regs), WorkDir: t.TempDir()}, DryRun: true})
	if err != nil || plan.Destinations[0].BlobsPushed != 4 {
		t.Fatalf("dry run: %+v %v", plan, err)
	}

	rep, err := Mirror(ctx, srcRef, dests, MirrorOptions{Options: Options{Hosts: registrytest.Open(t, regs), WorkDir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Digest != seed.Digest {
		t.Fatalf("mirror digest %s, source index %s", rep.Digest, seed.Digest)
	}
	for i, d := range rep.Destinations {
		if d.Digest != seed.Digest || !d.Verified || d.BlobsPushed != 4 {
			t.Errorf("%+v", d)
		}
		r := []*registrytest.Registry{a, b}[i]
		host := []string{a.Host, b.Host}[i]
		repo := []string{"docker.io/library/tool:2.0", "mirror/library/tool:2.0"}[i]
		if got := skopeoDigest(t, r, host, repo); got != seed.Digest {
			t.Errorf("skopeo sees %s on %s, want the source's %s", got, host, seed.Digest)
		}
	}

	again, err := Mirror(ctx, srcRef, dests, MirrorOptions{Options: Options{Hosts: registrytest.Open(t, regs), WorkDir: t.TempDir(), Verify: VerifyFast}})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range again.Destinations {
		if d.BlobsPushed != 0 || d.BytesPushed != 0 {
			t.Errorf("second run copied blobs: %+v", d)
		}
	}

	one, err := Mirror(ctx, srcRef, []Destination{dest(t, a.Host+"/single/tool", "2.0-arm64")}, MirrorOptions{Options: Options{Hosts: registrytest.Open(t, regs), WorkDir: t.TempDir()}, Platform: "linux/arm64"})
	if err != nil || one.Digest == seed.Digest {
		t.Fatalf("--platform: %+v %v", one, err)
	}
}

func specsVersioned() specs.Versioned { return specs.Versioned{SchemaVersion: 2} }

// A mirror looks up what the source has besides the image (cosign's
// attachments, the tag schema's index, the referrers API) once, whatever
// the number of destinations, and while the blobs are being copied
// rather than after them.
func TestMirror_AttachmentLookupsOnceAndAlongsideTheBlobs(t *testing.T) {
	src := registrytest.New(t, registrytest.Options{})
	sp := registrytest.NewProxy(t, src)
	a, b := registrytest.New(t, registrytest.Options{}), registrytest.New(t, registrytest.Options{})
	ap, bp := registrytest.NewProxy(t, a), registrytest.NewProxy(t, b)
	hosts := registrytest.Hosts(t, src, sp, a, b, ap, bp)
	ref := registrytest.Push(t, hosts, src.Host+"/agents/tool:1", ocitest.Options{Layers: 3, Size: 2 << 20, Seed: 61})
	from, _ := oci.ParseReference("docker://"+sp.Host+"/agents/tool:1", nil)
	_, err := Mirror(context.Background(), from, []Destination{dest(t, ap.Host+"/m/tool"), dest(t, bp.Host+"/m/tool")},
		MirrorOptions{Options: Options{Hosts: hosts, WorkDir: t.TempDir(), Verify: VerifyNone}})
	if err != nil {
		t.Fatal(err)
	}
	hex := ref.Digest().Encoded()
	lookups := map[string]int{}
	var firstLookup time.Time
	for _, e := range sp.Log() {
		for _, p := range []string{"manifests/sha256-" + hex + ".sig", "manifests/sha256-" + hex + ".att", "manifests/sha256-" + hex + ".sbom", "manifests/sha256-" + hex, "referrers/sha256:" + hex} {
			if strings.HasSuffix(e.Path, p) && e.Method == http.MethodGet {
				lookups[p]++
				if firstLookup.IsZero() || e.At.Before(firstLookup) {
					firstLookup = e.At
				}
			}
		}
	}
	if len(lookups) != 5 {
		t.Fatalf("source lookups %v: want the three cosign tags, the tag schema and the referrers API", lookups)
	}
	for p, n := range lookups {
		if n != 1 {
			t.Errorf("%s asked %d times for two destinations, want once", p, n)
		}
	}
	// The image's manifest is read once, by its tag, and each blob once,
	// for both destinations: a c/image source would read the manifest
	// again when it opened, once per destination.
	reads := map[string]int{}
	for _, e := range sp.Log() {
		if e.Method == http.MethodGet && (strings.HasSuffix(e.Path, "/manifests/1") || strings.Contains(e.Path, "/blobs/sha256:")) {
			reads[e.Path]++
		}
	}
	if reads["/v2/agents/tool/manifests/1"] != 1 {
		t.Errorf("the tag's manifest was read %d times, want once", reads["/v2/agents/tool/manifests/1"])
	}
	for p, n := range reads {
		if strings.Contains(p, "/blobs/") && n != 2 {
			t.Errorf("%s read %d times for two destinations, want twice (once each)", p, n)
		}
	}
	// Each destination is asked once whether it has a blob (c/image asked
	// again in PutBlob), and gets each of the 4 (config and 3 layers) in
	// two requests, POST and PUT, with no PATCH between them.
	for _, pr := range []*registrytest.Proxy{ap, bp} {
		asked, sent := map[string]int{}, map[string]int{}
		for _, e := range pr.Log() {
			switch {
			case e.Method == http.MethodHead && strings.Contains(e.Path, "/blobs/sha256:"):
				asked[e.Path]++
			case strings.Contains(e.Path, "/blobs/uploads/"):
				sent[e.Method]++
			}
		}
		for p, n := range asked {
			if n != 1 {
				t.Errorf("%s: %s asked %d times, want once", pr.Host, p, n)
			}
		}
		if want := map[string]int{http.MethodPost: 4, http.MethodPut: 4}; len(asked) != 4 || !maps.Equal(sent, want) {
			t.Errorf("%s: %d blobs asked for, uploads %v; want 4, and %v", pr.Host, len(asked), sent, want)
		}
	}
	for _, pr := range []*registrytest.Proxy{ap, bp} {
		for _, e := range pr.Log() {
			if e.Method == http.MethodPut && strings.Contains(e.Path, "/manifests/sha256:") && !e.At.After(firstLookup) {
				t.Errorf("the lookups started at %s, after the image's manifest was written to %s at %s: they should run alongside the blobs", firstLookup.Format(time.StampMicro), pr.Host, e.At.Format(time.StampMicro))
			}
		}
	}
}

// A mirror asks at once what does not depend on an earlier answer (over a
// far link each round trip counts): whether the destination has the
// manifest, while the blobs are looked up; and each blob's source, while
// the destination opens its upload session. Each proxy holds the first
// request until the second arrives: asked one after the other, they would
// wait for each other (until the hold gives up, and the test fails).
func TestMirror_AsksAtOnce(t *testing.T) {
	src, dst := registrytest.New(t, registrytest.Options{}), registrytest.New(t, registrytest.Options{})
	sp, dp := registrytest.NewProxy(t, src), registrytest.NewProxy(t, dst)
	hosts := registrytest.Hosts(t, src, sp, dst, dp)
	ref := registrytest.Push(t, hosts, src.Host+"/agents/tool:1", ocitest.Options{Layers: 2, Size: 1 << 20, Seed: 62})
	blobLookup, uploadSession := make(chan struct{}), make(chan struct{})
	var lookupOnce, sessionOnce sync.Once
	hold := func(what string, until chan struct{}) {
		select {
		case <-until:
		case <-time.After(10 * time.Second):
			t.Errorf("%s was held 10 s and what should go alongside it never came", what)
		}
	}
	dp.Set(registrytest.Faults{OnRequest: func(e registrytest.Entry) {
		switch {
		case e.Method == http.MethodHead && strings.HasSuffix(e.Path, "/manifests/"+ref.Digest().String()):
			hold("the destination's manifest lookup", blobLookup)
		case e.Method == http.MethodHead && strings.Contains(e.Path, "/blobs/sha256:"):
			lookupOnce.Do(func() { close(blobLookup) })
		case e.Method == http.MethodPost && strings.HasSuffix(e.Path, "/blobs/uploads/"):
			sessionOnce.Do(func() { close(uploadSession) })
		}
	}})
	sp.Set(registrytest.Faults{OnRequest: func(e registrytest.Entry) {
		if e.Method == http.MethodGet && strings.Contains(e.Path, "/blobs/sha256:") {
			hold("the source's blob read", uploadSession)
		}
	}})
	from, _ := oci.ParseReference("docker://"+sp.Host+"/agents/tool:1", nil)
	rep, err := Mirror(context.Background(), from, []Destination{dest(t, dp.Host+"/m/tool")}, MirrorOptions{Options: Options{Hosts: hosts, WorkDir: t.TempDir(), Verify: VerifyFull}})
	if err != nil {
		t.Fatal(err)
	}
	if d := rep.Destinations[0]; d.BlobsPushed != 3 || !d.Verified {
		t.Errorf("%+v: want the config and 2 layers sent, and verified", d)
	}
}

// A push that fails on one blob still reports the blobs it sent before:
// here the config and one layer go, then the other layer arrives
// corrupted from the source (held until they went).
func TestMirror_FailedPushCountsWhatWent(t *testing.T) {
	src, dst := registrytest.New(t, registrytest.Options{}), registrytest.New(t, registrytest.Options{})
	sp, dp := registrytest.NewProxy(t, src), registrytest.NewProxy(t, dst)
	hosts := registrytest.Hosts(t, src, sp, dst, dp)
	ref := registrytest.Push(t, hosts, src.Host+"/agents/tool:1", ocitest.Options{Layers: 2, Size: 4096, Seed: 71})
	c, err := hosts.Client(ref)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := c.Manifest(context.Background(), ref.Digest().String(), remote.MaxManifest)
	if err != nil {
		t.Fatal(err)
	}
	var m imgspecv1.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	bad := m.Layers[1].Digest.String()
	// The other two blobs (a layer and the config) count as gone once the
	// mirror itself has taken them as pushed (their progress bars end
	// after that), not when the registry answers: a 201 still on its way
	// when the bad blob fails is lost with the cancel.
	pushed := &pushesDone{at: 2, reached: make(chan struct{})}
	othersIn := pushed.reached
	sp.Set(registrytest.Faults{CorruptBlob: bad, OnRequest: func(e registrytest.Entry) {
		if e.Method == http.MethodGet && strings.HasSuffix(e.Path, "/blobs/"+bad) {
			select {
			case <-othersIn:
			case <-time.After(10 * time.Second):
				t.Errorf("the other two blobs never went")
			}
		}
	}})
	from, _ := oci.ParseReference("docker://"+sp.Host+"/agents/tool:1", nil)
	rep, err := Mirror(context.Background(), from, []Destination{dest(t, dp.Host+"/m/tool")}, MirrorOptions{Options: Options{Hosts: hosts, WorkDir: t.TempDir(), Verify: VerifyNone, Progress: pushed}})
	if !errors.Is(err, errs.ErrIntegrity) {
		t.Fatalf("%v, want an integrity error", err)
	}
	if d := rep.Destinations[0]; d.BlobsPushed != 2 || d.BytesPushed == 0 {
		t.Errorf("2 blobs went before the failure; the report says %d blobs, %d bytes", d.BlobsPushed, d.BytesPushed)
	}
}

// pushesDone is a progress reporter that closes reached when the at-th
// push ends well.
type pushesDone struct {
	n       atomic.Int32
	at      int32
	reached chan struct{}
}

func (p *pushesDone) Start(what string, _ int64) progress.Bar { return pushBar{p, what} }

type pushBar struct {
	p    *pushesDone
	what string
}

func (pushBar) Add(int) {}

func (b pushBar) Done(err error) {
	if err == nil && strings.HasPrefix(b.what, "push ") && b.p.n.Add(1) == b.p.at {
		close(b.p.reached)
	}
}
