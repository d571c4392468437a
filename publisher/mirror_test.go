package publisher

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	"go.podman.io/image/v5/docker/reference"
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
