package attachments_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/builder/oci/ocitest"
	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/publisher/attachments"
	"github.com/agentforge/agentforge/publisher/registrytest"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker/reference"
)

// A referrer that only the source's referrers API lists (no tag-schema
// index: the registry answered its push with OCI-Subject) travels with a
// mirror: to a registry with the API by digest, which then lists it; to
// one without (distribution), by digest plus a tag-schema index naming it,
// so that clients there find it. A second run copies nothing.
func TestCopyAttachments_ReferrersAPI(t *testing.T) {
	r := registrytest.NewTrio(t)
	ctx := context.Background()
	img := ocitest.Options{Layers: 1, Size: 256, Seed: 41}
	src, srcRaw := pushSource(t, r.Src.Host, r.Config, trio(r), img)
	ref, _ := putReferrerManifest(t, trio(r), src, srcRaw, []byte(`{"spdxVersion":"SPDX-2.3","name":"agent"}`))
	tag, err := attachments.ReferrersTag(src.Digest())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := attachments.Read(ctx, trio(r), registrytest.Tagged(t, src, tag)); !errors.Is(err, attachments.ErrAbsent) {
		t.Fatalf("test set-up: the source has a tag-schema index (%v): the API would not be what is tested", err)
	}
	if list, ok, err := attachments.ListReferrers(ctx, trio(r), src, src.Digest()); err != nil || !ok || len(list) != 1 || list[0].Digest != ref {
		t.Fatalf("the source's referrers API: %v %v %v, want %s", list, ok, err, ref)
	}
	if r.Src.TokensIssued() == 0 {
		t.Error("the source issued no bearer token: the client did not go through the token flow")
	}

	t.Run("to a registry without the API", func(t *testing.T) {
		dst := registrytest.Push(t, r.Hosts, r.Without.Host+"/mirror/agent:latest", img)
		if _, ok, err := attachments.ListReferrers(ctx, trio(r), dst, dst.Digest()); ok || err != nil {
			t.Fatalf("distribution's referrers API: supported=%v err=%v, want neither", ok, err)
		}
		rep, err := copyAll(ctx, src, reference.TrimNamed(dst), src.Digest(), trio(r))
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Copied) != 1 || rep.Copied[0].Tag != tag || rep.Copied[0].Blobs != 2 || rep.Copied[0].Referrer {
			t.Fatalf("copy: %+v, want a new tag-schema index, sent with the referrer's two blobs", rep)
		}
		var idx imgspecv1.Index
		if err := json.Unmarshal([]byte(attachmentRaw(t, trio(r), dst, tag)), &idx); err != nil {
			t.Fatal(err)
		}
		if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != ref || idx.MediaType != imgspecv1.MediaTypeImageIndex {
			t.Fatalf("the mirror's tag-schema index: %+v, want %s", idx, ref)
		}
		onMirror, _ := reference.WithDigest(reference.TrimNamed(dst), ref)
		if _, err := attachments.ImageManifest(ctx, trio(r), onMirror); err != nil {
			t.Errorf("the referrer on the mirror: %v", err)
		}
		rep, err = copyAll(ctx, src, reference.TrimNamed(dst), src.Digest(), trio(r))
		if err != nil || len(rep.Copied) != 0 || rep.Unchanged != 1 {
			t.Fatalf("second copy: %+v %v, want nothing copied", rep, err)
		}
	})

	t.Run("to a registry with the API", func(t *testing.T) {
		dst := registrytest.Push(t, r.Hosts, r.WithAPI.Host+"/mirror/agent:latest", img)
		plan, err := planAll(ctx, src, reference.TrimNamed(dst), src.Digest(), trio(r))
		if err != nil || len(plan.Copied) != 1 || !plan.Copied[0].Referrer || plan.Copied[0].Blobs != 2 {
			t.Fatalf("plan: %+v %v, want the referrer with two blobs", plan, err)
		}
		if list, _, err := attachments.ListReferrers(ctx, trio(r), dst, dst.Digest()); err != nil || len(list) != 0 {
			t.Fatalf("after the plan, the mirror lists %v (%v), want nothing", list, err)
		}
		calls := r.WithAPI.ReferrersCalls()
		rep, err := copyAll(ctx, src, reference.TrimNamed(dst), src.Digest(), trio(r))
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Copied) != 1 || !rep.Copied[0].Referrer || rep.Copied[0].Digest != ref.String() || rep.Copied[0].Blobs != 2 {
			t.Fatalf("copy: %+v, want the referrer by digest with its two blobs", rep)
		}
		if r.WithAPI.ReferrersCalls() == calls {
			t.Error("the destination's referrers API was not asked")
		}
		list, ok, err := attachments.ListReferrers(ctx, trio(r), dst, dst.Digest())
		if err != nil || !ok || len(list) != 1 || list[0].Digest != ref {
			t.Fatalf("the mirror's referrers API: %v %v %v, want %s", list, ok, err, ref)
		}
		if _, err := attachments.Read(ctx, trio(r), registrytest.Tagged(t, dst, tag)); !errors.Is(err, attachments.ErrAbsent) {
			t.Errorf("a tag-schema index was written on a registry with the API: %v", err)
		}
		rep, err = copyAll(ctx, src, reference.TrimNamed(dst), src.Digest(), trio(r))
		if err != nil || len(rep.Copied) != 0 || rep.Unchanged != 1 {
			t.Fatalf("second copy: %+v %v, want nothing copied", rep, err)
		}
	})
}

// A referrer of a referrer (a signature of the SBOM) travels too.
func TestCopyAttachments_ReferrersAPI_Nested(t *testing.T) {
	r := registrytest.NewTrio(t)
	ctx := context.Background()
	img := ocitest.Options{Layers: 1, Size: 256, Seed: 42}
	src, srcRaw := pushSource(t, r.Src.Host, r.Config, trio(r), img)
	dst := registrytest.Push(t, r.Hosts, r.Without.Host+"/mirror/agent:latest", img)
	sbom, sbomRaw := putReferrerManifest(t, trio(r), src, srcRaw, []byte(`{"spdxVersion":"SPDX-2.3"}`))
	onSBOM, _ := reference.WithDigest(reference.TrimNamed(src), sbom)
	sig, _ := putReferrerManifest(t, trio(r), onSBOM, sbomRaw, []byte(`{"signature":"of the SBOM"}`))
	if _, err := copyAll(ctx, src, reference.TrimNamed(dst), src.Digest(), trio(r)); err != nil {
		t.Fatal(err)
	}
	tag, _ := attachments.ReferrersTag(sbom)
	var idx imgspecv1.Index
	if err := json.Unmarshal([]byte(attachmentRaw(t, trio(r), dst, tag)), &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != sig {
		t.Fatalf("the SBOM's referrers on the mirror: %+v, want %s", idx, sig)
	}
}

// A source registry whose referrers API lies is caught before anything is
// written: an entry that is another image's referrer, a listed digest
// served with other bytes, an answer that is no index. A listed referrer
// the source does not serve is skipped and reported.
func TestCopyAttachments_ReferrersAPI_LyingRegistry(t *testing.T) {
	r := registrytest.NewTrio(t)
	ctx := context.Background()
	img := ocitest.Options{Layers: 1, Size: 256, Seed: 43}
	src := registrytest.Push(t, r.Hosts, r.Src.Host+"/up/agent:latest", img)
	other := registrytest.Push(t, r.Hosts, r.Src.Host+"/up/agent:latest", ocitest.Options{Layers: 1, Size: 256, Seed: 44})
	otherRaw, err := attachments.ImageManifest(ctx, trio(r), other)
	if err != nil {
		t.Fatal(err)
	}
	foreign, foreignRaw := putReferrerManifest(t, trio(r), other, otherRaw, []byte(`{"spdxVersion":"SPDX-2.3","name":"another image"}`))
	entry := func(d digest.Digest, size int64) []byte {
		b, _ := json.Marshal(imgspecv1.Index{MediaType: imgspecv1.MediaTypeImageIndex, Manifests: []imgspecv1.Descriptor{{MediaType: imgspecv1.MediaTypeImageManifest, Digest: d, Size: size}}})
		return b
	}
	forged := digest.FromString("forged")
	for _, tc := range []struct {
		name      string
		body      []byte
		intercept func(http.ResponseWriter, *http.Request) bool
		want      error  // errs.ErrIntegrity, or nil
		check     string // the integrity check named
		skipped   digest.Digest
	}{
		{name: "another image's referrer", body: entry(foreign, int64(len(foreignRaw))), want: errs.ErrIntegrity, check: "subject"},
		{name: "other bytes for a listed digest", body: entry(forged, int64(len(foreignRaw))), want: errs.ErrIntegrity, check: "digest",
			intercept: func(w http.ResponseWriter, r *http.Request) bool {
				if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/manifests/"+forged.String()) {
					return false
				}
				w.Header().Set("Content-Type", imgspecv1.MediaTypeImageManifest)
				w.Header().Set("Docker-Content-Digest", forged.String())
				w.Write(foreignRaw)
				return true
			}},
		{name: "listed, not served", body: entry(forged, 100), skipped: forged},
		{name: "not an index", body: []byte(`{"mediaType":"application/vnd.oci.image.Manifest.v1+json"}`), want: errs.ErrIntegrity, check: "media type"},
		{name: "an invalid digest", body: []byte(`{"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"digest":"sha256:../../etc","size":1}]}`), want: errs.ErrIntegrity, check: "entry"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := registrytest.Push(t, r.Hosts, r.Without.Host+"/mirror/"+slug(tc.name)+":latest", img)
			r.Src.RewriteReferrers(func(string, []byte) []byte { return tc.body })
			r.Src.Intercept(tc.intercept)
			defer r.Src.RewriteReferrers(nil)
			defer r.Src.Intercept(nil)
			rep, err := copyAll(ctx, src, reference.TrimNamed(dst), src.Digest(), trio(r))
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			var ie *errs.IntegrityError
			if tc.check != "" && (!errors.As(err, &ie) || !strings.Contains(ie.Check, tc.check)) {
				t.Errorf("got %v, want the %s check to fail", err, tc.check)
			}
			if tc.skipped != "" && (rep == nil || len(rep.Skipped) != 1 || rep.Skipped[0].Digest != tc.skipped.String()) {
				t.Errorf("report %+v, want %s skipped", rep, tc.skipped)
			}
			tag, _ := attachments.ReferrersTag(src.Digest())
			if _, err := attachments.Read(ctx, trio(r), registrytest.Tagged(t, dst, tag)); !errors.Is(err, attachments.ErrAbsent) {
				t.Errorf("a tag-schema index was written on the mirror: %v", err)
			}
			onMirror, _ := reference.WithDigest(reference.TrimNamed(dst), foreign)
			if _, err := attachments.ImageManifest(ctx, trio(r), onMirror); err == nil {
				t.Error("the other image's referrer was copied to the mirror")
			}
		})
	}
}

// The mirror's tag-schema index describes each referrer from its own
// bytes, whatever size, type or annotations the source's listing claims.
func TestCopyAttachments_ReferrersAPI_DescriptorsFromBytes(t *testing.T) {
	r := registrytest.NewTrio(t)
	ctx := context.Background()
	img := ocitest.Options{Layers: 1, Size: 256, Seed: 48}
	src, srcRaw := pushSource(t, r.Src.Host, r.Config, trio(r), img)
	dst := registrytest.Push(t, r.Hosts, r.Without.Host+"/mirror/agent:latest", img)
	ref, raw := putReferrerManifest(t, trio(r), src, srcRaw, []byte(`{"spdxVersion":"SPDX-2.3"}`))
	r.Src.RewriteReferrers(func(subject string, body []byte) []byte {
		if subject != src.Digest().String() {
			return body
		}
		b, _ := json.Marshal(imgspecv1.Index{MediaType: imgspecv1.MediaTypeImageIndex, Manifests: []imgspecv1.Descriptor{{
			MediaType: imgspecv1.MediaTypeImageManifest, Digest: ref, Size: 999999, ArtifactType: "application/vnd.evil", Annotations: map[string]string{"forged": "yes"}}}})
		return b
	})
	defer r.Src.RewriteReferrers(nil)
	if _, err := copyAll(ctx, src, reference.TrimNamed(dst), src.Digest(), trio(r)); err != nil {
		t.Fatal(err)
	}
	tag, _ := attachments.ReferrersTag(src.Digest())
	var idx imgspecv1.Index
	if err := json.Unmarshal([]byte(attachmentRaw(t, trio(r), dst, tag)), &idx); err != nil {
		t.Fatal(err)
	}
	want := imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageManifest, Digest: ref, Size: int64(len(raw)), ArtifactType: "application/spdx+json"}
	if len(idx.Manifests) != 1 || !reflect.DeepEqual(idx.Manifests[0], want) {
		t.Fatalf("the mirror's index lists %+v, want %+v", idx.Manifests, want)
	}
}

// A destination whose referrers API answers but does not list what it was
// given (it took the manifest without processing its subject, which the
// spec allows when it sends no OCI-Subject) gets the referrer in its tag
// schema; a second run copies nothing.
func TestCopyAttachments_ReferrersAPI_DestinationIgnoresSubject(t *testing.T) {
	r := registrytest.NewTrio(t)
	ctx := context.Background()
	img := ocitest.Options{Layers: 1, Size: 256, Seed: 49}
	src, srcRaw := pushSource(t, r.Src.Host, r.Config, trio(r), img)
	dst := registrytest.Push(t, r.Hosts, r.WithAPI.Host+"/mirror/agent:latest", img)
	ref, _ := putReferrerManifest(t, trio(r), src, srcRaw, []byte(`{"spdxVersion":"SPDX-2.3"}`))
	r.WithAPI.RewriteReferrers(func(string, []byte) []byte {
		return []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`)
	})
	defer r.WithAPI.RewriteReferrers(nil)
	rep, err := copyAll(ctx, src, reference.TrimNamed(dst), src.Digest(), trio(r))
	if err != nil {
		t.Fatal(err)
	}
	tag, _ := attachments.ReferrersTag(src.Digest())
	if len(rep.Copied) != 2 || !rep.Copied[0].Referrer || rep.Copied[1].Tag != tag {
		t.Fatalf("copy: %+v, want the referrer by digest, then a tag-schema index", rep)
	}
	var idx imgspecv1.Index
	if err := json.Unmarshal([]byte(attachmentRaw(t, trio(r), dst, tag)), &idx); err != nil || len(idx.Manifests) != 1 || idx.Manifests[0].Digest != ref {
		t.Fatalf("the mirror's tag schema: %+v %v, want %s", idx, err, ref)
	}
	rep, err = copyAll(ctx, src, reference.TrimNamed(dst), src.Digest(), trio(r))
	if err != nil || len(rep.Copied) != 0 {
		t.Fatalf("second copy: %+v %v, want nothing copied", rep, err)
	}
}

// A referrer may be an index (the spec allows it): its manifests go
// first, then the index, to a registry with the API and to one without.
func TestCopyAttachments_ReferrersAPI_IndexReferrer(t *testing.T) {
	r := registrytest.NewTrio(t)
	ctx := context.Background()
	img := ocitest.Options{Layers: 1, Size: 256, Seed: 50}
	src, srcRaw := pushSource(t, r.Src.Host, r.Config, trio(r), img)
	// The child: an SPDX artifact manifest of its own (no subject).
	w, err := attachments.NewWriter(ctx, trio(r), src)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, err := w.Put(ctx, "application/vnd.oci.empty.v1+json", []byte("{}"))
	if err != nil {
		t.Fatal(err)
	}
	layer, _, err := w.Put(ctx, "application/spdx+json", []byte(`{"spdxVersion":"SPDX-2.3","name":"child"}`))
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	childRaw, _ := json.Marshal(imgspecv1.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageManifest,
		ArtifactType: "application/spdx+json", Config: cfg, Layers: []imgspecv1.Descriptor{layer}})
	child := digest.FromBytes(childRaw)
	putRaw(t, trio(r), src, childRaw)
	idxRaw, _ := json.Marshal(imgspecv1.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageIndex, ArtifactType: "application/vnd.example.bundle",
		Manifests: []imgspecv1.Descriptor{{MediaType: imgspecv1.MediaTypeImageManifest, Digest: child, Size: int64(len(childRaw))}},
		Subject:   &imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageManifest, Digest: src.Digest(), Size: int64(len(srcRaw))}})
	bundle := digest.FromBytes(idxRaw)
	putRaw(t, trio(r), src, idxRaw)

	for _, host := range []string{r.WithAPI.Host, r.Without.Host} {
		dst := registrytest.Push(t, r.Hosts, host+"/mirror/agent:latest", img)
		if _, err := copyAll(ctx, src, reference.TrimNamed(dst), src.Digest(), trio(r)); err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		for _, d := range []digest.Digest{child, bundle} {
			at, _ := reference.WithDigest(reference.TrimNamed(dst), d)
			if _, err := attachments.ImageManifest(ctx, trio(r), at); err != nil {
				t.Errorf("%s: %s on the mirror: %v", host, d, err)
			}
		}
		list, _ := referrersOn(t, trio(r), dst)
		if !containsDigest(list, bundle) {
			t.Errorf("%s: the mirror's referrers %v do not include the index %s", host, list, bundle)
		}
	}
}

// referrersOn is what ref's registry gives for its referrers: its API's
// list, else its tag schema's.
func referrersOn(t *testing.T, o attachments.Options, ref reference.Canonical) ([]imgspecv1.Descriptor, bool) {
	t.Helper()
	list, ok, err := attachments.ListReferrers(context.Background(), o, ref, ref.Digest())
	if err != nil {
		t.Fatal(err)
	}
	if ok {
		return list, true
	}
	tag, _ := attachments.ReferrersTag(ref.Digest())
	list, err = attachments.TagSchemaList(context.Background(), o, registrytest.Tagged(t, ref, tag))
	if err != nil {
		t.Fatal(err)
	}
	return list, false
}

// putRaw writes a manifest by digest, or under ref's tag when it has one.
func putRaw(t *testing.T, o attachments.Options, ref reference.Named, raw []byte) {
	t.Helper()
	at := ref
	if _, tagged := ref.(reference.Tagged); !tagged {
		var err error
		if at, err = reference.WithDigest(reference.TrimNamed(ref), digest.FromBytes(raw)); err != nil {
			t.Fatal(err)
		}
	}
	w, err := attachments.NewWriter(context.Background(), o, at)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.PutManifest(context.Background(), raw); err != nil {
		t.Fatal(err)
	}
}

func slug(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !slices.Contains([]byte("abcdefghijklmnopqrstuvwxyz0123456789"), c) {
			b[i] = '-'
		}
	}
	return string(b)
}

// pushSource pushes the synthetic image img to host/up/agent and returns
// it with its manifest (the subject of the referrers a test writes).
func pushSource(t *testing.T, host string, regs remote.Registries, o attachments.Options, img ocitest.Options) (reference.Canonical, []byte) {
	t.Helper()
	src := registrytest.Push(t, registrytest.Open(t, regs), host+"/up/agent:latest", img)
	raw, err := attachments.ImageManifest(context.Background(), o, src)
	if err != nil {
		t.Fatal(err)
	}
	return src, raw
}

// Read by digest checks the bytes against the digest, for every caller: a
// registry that answers a digest with another manifest (and names the
// digest asked for in Docker-Content-Digest, as a lying one would) is
// refused as an integrity failure. The controls:
// the true answer by digest, and the same forged answer by tag, which
// has nothing to be checked against.
func TestRead_ByDigestChecksTheBytes(t *testing.T) {
	r := registrytest.NewTrio(t)
	ctx := context.Background()
	src := registrytest.Push(t, r.Hosts, r.Src.Host+"/up/agent:latest", ocitest.Options{Layers: 1, Size: 256, Seed: 43})
	other := registrytest.Push(t, r.Hosts, r.Src.Host+"/up/agent:other", ocitest.Options{Layers: 1, Size: 256, Seed: 44})
	otherAt, err := attachments.Read(ctx, trio(r), other)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		ref    reference.Named
		forged bool
		want   error
	}{
		{name: "the true answer by digest", ref: src},
		{name: "another manifest by digest", ref: src, forged: true, want: errs.ErrIntegrity},
		{name: "another manifest by tag", ref: registrytest.Tagged(t, src, "latest"), forged: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.forged {
				r.Src.Intercept(func(w http.ResponseWriter, req *http.Request) bool {
					if req.Method != http.MethodGet || !strings.Contains(req.URL.Path, "/up/agent/manifests/") || strings.HasSuffix(req.URL.Path, "/other") {
						return false
					}
					w.Header().Set("Content-Type", imgspecv1.MediaTypeImageManifest)
					w.Header().Set("Docker-Content-Digest", src.Digest().String())
					w.Write(otherAt.Raw)
					return true
				})
				defer r.Src.Intercept(nil)
			}
			a, err := attachments.Read(ctx, trio(r), tc.ref)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("got %v, want the manifest", err)
				}
				if want := map[bool]reference.Canonical{false: src, true: other}[tc.forged]; string(a.Raw) == "" || digest.FromBytes(a.Raw) != want.Digest() {
					t.Errorf("read %s, want %s", digest.FromBytes(a.Raw), want.Digest())
				}
				return
			}
			var ie *errs.IntegrityError
			if !errors.Is(err, tc.want) || !errors.As(err, &ie) || ie.Check != "digest" {
				t.Errorf("got %v, want the digest check to fail", err)
			}
		})
	}
}
