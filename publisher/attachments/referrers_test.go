package attachments_test

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
	"github.com/opencontainers/image-spec/specs-go"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
)

// A referrer kept under the OCI 1.1 tag schema (sha256-<hex>: an index of
// manifests whose subject is the image), as cosign's OCI 1.1 mode and oras
// write it where the registry has no referrers API (distribution has
// none), travels with a mirror: the referrer by digest with its blobs,
// then the same index bytes; a second run copies nothing.
func TestCopyAttachments_ReferrersTagSchema(t *testing.T) {
	a, b, regs, o := twoRegistries(t)
	ctx := context.Background()
	src := registrytest.Push(t, registrytest.Open(t, regs), a.Host+"/up/agent:latest", ocitest.Options{Layers: 1, Size: 256, Seed: 31})
	dst := registrytest.Push(t, registrytest.Open(t, regs), b.Host+"/mirror/agent:latest", ocitest.Options{Layers: 1, Size: 256, Seed: 31})

	// The referrer: an SPDX artifact whose subject is the image.
	srcRaw, err := attachments.ImageManifest(ctx, o, src)
	if err != nil {
		t.Fatal(err)
	}
	refDigest := putReferrer(t, o, src, srcRaw, []byte(`{"spdxVersion":"SPDX-2.3","name":"agent"}`))
	tag, err := attachments.ReferrersTag(src.Digest())
	if err != nil {
		t.Fatal(err)
	}

	rep, err := copyAll(ctx, src, reference.TrimNamed(dst), src.Digest(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Copied) != 1 || rep.Copied[0].Tag != tag || rep.Copied[0].Blobs != 2 {
		t.Fatalf("copy: %+v, want the referrers index with its two blobs", rep)
	}
	if s, d := attachmentRaw(t, o, src, tag), attachmentRaw(t, o, dst, tag); s != d {
		t.Errorf("the index differs on the mirror:\n%s\n%s", s, d)
	}
	onMirror, _ := reference.WithDigest(reference.TrimNamed(dst), refDigest)
	if _, err := attachments.ImageManifest(ctx, o, onMirror); err != nil {
		t.Errorf("the referrer on the mirror: %v", err)
	}
	rep, err = copyAll(ctx, src, reference.TrimNamed(dst), src.Digest(), o)
	if err != nil || len(rep.Copied) != 0 || rep.Unchanged != 1 {
		t.Fatalf("second copy: %+v %v, want nothing copied", rep, err)
	}
}

// putReferrer writes an artifact manifest with subject ref to ref's
// repository and the tag-schema index listing it; it returns its digest.
func putReferrer(t *testing.T, o attachments.Options, ref reference.Canonical, subjectRaw, data []byte) digest.Digest {
	t.Helper()
	d, raw := putReferrerManifest(t, o, ref, subjectRaw, data)
	idx := imgspecv1.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageIndex,
		Manifests: []imgspecv1.Descriptor{{MediaType: imgspecv1.MediaTypeImageManifest, Digest: d, Size: int64(len(raw)), ArtifactType: "application/spdx+json"}}}
	idxRaw, _ := json.Marshal(idx)
	tag, _ := attachments.ReferrersTag(ref.Digest())
	tagged, _ := reference.WithTag(reference.TrimNamed(ref), tag)
	iw, err := attachments.NewWriter(context.Background(), o, tagged)
	if err != nil {
		t.Fatal(err)
	}
	defer iw.Close()
	if err := iw.PutManifest(context.Background(), idxRaw); err != nil {
		t.Fatal(err)
	}
	return d
}

// putReferrerManifest writes an SPDX artifact manifest whose subject is
// ref, by digest only (as a client does on a registry with the referrers
// API), and returns its digest and bytes.
func putReferrerManifest(t *testing.T, o attachments.Options, ref reference.Canonical, subjectRaw, data []byte) (digest.Digest, []byte) {
	t.Helper()
	ctx := context.Background()
	w, err := attachments.NewWriter(ctx, o, ref)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	cfg, _, err := w.Put(ctx, "application/vnd.oci.empty.v1+json", []byte("{}"))
	if err != nil {
		t.Fatal(err)
	}
	layer, _, err := w.Put(ctx, "application/spdx+json", data)
	if err != nil {
		t.Fatal(err)
	}
	m := imgspecv1.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageManifest,
		ArtifactType: "application/spdx+json", Config: cfg, Layers: []imgspecv1.Descriptor{layer},
		Subject: &imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageManifest, Digest: ref.Digest(), Size: int64(len(subjectRaw))}}
	raw, _ := json.Marshal(m)
	d := digest.FromBytes(raw)
	byDigest, _ := reference.WithDigest(reference.TrimNamed(ref), d)
	mw, err := attachments.NewWriter(ctx, o, byDigest)
	if err != nil {
		t.Fatal(err)
	}
	defer mw.Close()
	if err := mw.PutManifest(ctx, raw); err != nil {
		t.Fatal(err)
	}
	return d, raw
}

func attachmentRaw(t *testing.T, o attachments.Options, ref reference.Canonical, tag string) string {
	t.Helper()
	tagged, _ := reference.WithTag(reference.TrimNamed(ref), tag)
	a, err := attachments.Read(context.Background(), o, tagged)
	if err != nil {
		t.Fatalf("%s: %v", tagged, err)
	}
	defer a.Close()
	return string(a.Raw)
}

// A tag-schema index that names a manifest its registry no longer has
// (deleted since; nothing prunes the index) does not stop a mirror: the
// entry is reported as skipped and left out of the mirror's index, the
// rest copied.
func TestCopyAttachments_StaleTagSchemaEntry(t *testing.T) {
	a, b, regs, o := twoRegistries(t)
	ctx := context.Background()
	src, srcRaw := pushSource(t, a.Host, regs, o, ocitest.Options{Layers: 1, Size: 256, Seed: 35})
	dst := registrytest.Push(t, registrytest.Open(t, regs), b.Host+"/mirror/agent:latest", ocitest.Options{Layers: 1, Size: 256, Seed: 35})
	real := putReferrer(t, o, src, srcRaw, []byte(`{"spdxVersion":"SPDX-2.3"}`))
	gone, goneRaw := putReferrerManifest(t, o, src, srcRaw, []byte(`{"spdxVersion":"SPDX-2.3","name":"deleted later"}`))
	tag, _ := attachments.ReferrersTag(src.Digest())
	var idx imgspecv1.Index
	if err := json.Unmarshal([]byte(attachmentRaw(t, o, src, tag)), &idx); err != nil {
		t.Fatal(err)
	}
	idx.Manifests = append(idx.Manifests, imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageManifest, Digest: gone, Size: int64(len(goneRaw))})
	raw, _ := json.Marshal(idx)
	tagged, _ := reference.WithTag(reference.TrimNamed(src), tag)
	putRaw(t, o, tagged, raw)
	goneRef, _ := reference.WithDigest(reference.TrimNamed(src), gone)
	dref, _ := docker.NewReference(goneRef)
	if err := dref.DeleteImage(ctx, o.Sys(goneRef)); err != nil {
		t.Fatal(err)
	}
	rep, err := copyAll(ctx, src, reference.TrimNamed(dst), src.Digest(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Skipped) != 1 || rep.Skipped[0].Digest != gone.String() {
		t.Errorf("skipped %+v, want %s", rep.Skipped, gone)
	}
	var got imgspecv1.Index
	if err := json.Unmarshal([]byte(attachmentRaw(t, o, dst, tag)), &got); err != nil || len(got.Manifests) != 1 || got.Manifests[0].Digest != real {
		t.Errorf("the mirror's index %+v (%v), want %s only", got, err, real)
	}
}

// No tag-schema index a registry serves makes the copy (or a signature
// check that reads the index) panic or write anything: an entry whose
// digest is not a digest (no algorithm, no colon, a path, empty), or whose
// size is not a size, refuses the index as an integrity failure. (An entry
// without a colon crashed mirror.)
func TestCopyAttachments_MalformedTagSchemaEntries(t *testing.T) {
	r := registrytest.NewTrio(t)
	ctx := context.Background()
	img := ocitest.Options{Layers: 1, Size: 256, Seed: 36}
	src := registrytest.Push(t, r.Hosts, r.Src.Host+"/up/agent:latest", img)
	tag, _ := attachments.ReferrersTag(src.Digest())
	good := digest.FromString("a referrer")
	for _, tc := range []struct {
		name  string
		entry string
	}{
		{"no colon", `{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"abc","size":10}`},
		{"no algorithm", `{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":":` + good.Encoded() + `","size":10}`},
		{"empty digest", `{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"","size":10}`},
		{"a path", `{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:../../etc/passwd","size":10}`},
		{"short hex", `{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:abcd","size":10}`},
		{"unknown algorithm", `{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"md5:d41d8cd98f00b204e9800998ecf8427e","size":10}`},
		{"no size", `{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + good.String() + `"}`},
		{"negative size", `{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + good.String() + `","size":-1}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` + tc.entry + `]}`)
			serve := func(w http.ResponseWriter, req *http.Request) bool {
				if !strings.HasSuffix(req.URL.Path, "/manifests/"+tag) || req.Method != http.MethodGet && req.Method != http.MethodHead {
					return false
				}
				w.Header().Set("Content-Type", imgspecv1.MediaTypeImageIndex)
				w.Header().Set("Docker-Content-Digest", digest.FromBytes(body).String())
				w.Header().Set("Content-Length", fmt.Sprint(len(body)))
				if req.Method == http.MethodGet {
					w.Write(body)
				}
				return true
			}
			r.Src.Intercept(serve)
			defer r.Src.Intercept(nil)
			dst := registrytest.Push(t, r.Hosts, r.Without.Host+"/mirror/"+slug(tc.name)+":latest", img)
			for _, c := range []*attachments.Copier{{Options: trio(r)}, {Options: trio(r), DryRun: true}} {
				c.Prefetch(ctx, reference.TrimNamed(src), []digest.Digest{src.Digest()})
				_, err := c.Copy(ctx, reference.TrimNamed(src), reference.TrimNamed(dst), src.Digest())
				var ie *errs.IntegrityError
				if !errors.As(err, &ie) || !strings.Contains(err.Error(), "entry") {
					t.Errorf("dry run %t: got %v, want an integrity error naming the entry", c.DryRun, err)
				}
			}
			if _, err := attachments.Read(ctx, trio(r), registrytest.Tagged(t, dst, tag)); !errors.Is(err, attachments.ErrAbsent) {
				t.Errorf("a tag-schema index was written on the mirror: %v", err)
			}
			if _, err := attachments.TagSchemaList(ctx, trio(r), registrytest.Tagged(t, src, tag)); !errors.Is(err, errs.ErrIntegrity) {
				t.Errorf("TagSchemaList: got %v, want an integrity error", err)
			}
			// A destination that already serves the same index (a second
			// run, or a mirror lying too): nothing is missing there, and
			// the entries are still refused rather than followed.
			both := registrytest.Push(t, r.Hosts, r.WithAPI.Host+"/mirror/"+slug(tc.name)+":latest", img)
			r.WithAPI.Intercept(serve)
			defer r.WithAPI.Intercept(nil)
			if _, err := copyAll(ctx, reference.TrimNamed(src), reference.TrimNamed(both), src.Digest(), trio(r)); !errors.Is(err, errs.ErrIntegrity) {
				t.Errorf("to a destination with the same index: got %v, want an integrity error", err)
			}
		})
	}
}
