package sign

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/agentforge/agentforge/builder/image"
	"github.com/agentforge/agentforge/builder/image/imagetest"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/publisher/registrytest"
	"github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker/reference"
)

// apiRegistries are a source with the referrers API (bearer tokens, TLS),
// a destination without it (distribution) and one with it, all with auth
// and TLS, and the options that reach the three.
type apiRegistries struct {
	src, withAPI *registrytest.OCI
	without      *registrytest.Registry
	regs         image.Registries
	o            Options
}

func newAPIRegistries(t *testing.T) *apiRegistries {
	t.Helper()
	r := &apiRegistries{
		src:     registrytest.NewOCI(t, registrytest.Options{Auth: true, TLS: true}),
		withAPI: registrytest.NewOCI(t, registrytest.Options{Auth: true, TLS: true}),
		without: registrytest.New(t, registrytest.Options{Auth: true, TLS: true}),
	}
	r.regs = image.Registries{
		AuthFile: registrytest.WriteAuthFile(t, map[string][2]string{
			r.src.Host: {r.src.User, r.src.Password}, r.withAPI.Host: {r.withAPI.User, r.withAPI.Password}, r.without.Host: {r.without.User, r.without.Password},
		}),
		CAFile: caBundle(t, r.src.CAFile, r.withAPI.CAFile, r.without.CAFile),
	}
	r.o = Options{Hosts: openHosts(t, r.regs)}
	return r
}

// A referrer that only the source's referrers API lists (no tag-schema
// index: the registry answered its push with OCI-Subject) travels with a
// mirror: to a registry with the API by digest, which then lists it; to
// one without (distribution), by digest plus a tag-schema index naming it,
// so that clients there find it. A second run copies nothing.
func TestCopyAttachments_ReferrersAPI(t *testing.T) {
	r := newAPIRegistries(t)
	ctx := context.Background()
	img := imagetest.Options{Layers: 1, Size: 256, Seed: 41}
	src := push(t, r.src.Host, "up/agent", r.regs, img)
	srcRaw, err := imageManifest(ctx, r.o, src)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := putReferrerManifest(t, r.o, src, srcRaw, []byte(`{"spdxVersion":"SPDX-2.3","name":"agent"}`))
	tag, err := ReferrersTag(src.Digest())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := readAttachment(ctx, r.o, mustTag(t, src, tag)); !errors.Is(err, errAbsent) {
		t.Fatalf("test set-up: the source has a tag-schema index (%v): the API would not be what is tested", err)
	}
	if list, ok, err := listReferrers(ctx, r.o, src, src.Digest()); err != nil || !ok || len(list) != 1 || list[0].Digest != ref {
		t.Fatalf("the source's referrers API: %v %v %v, want %s", list, ok, err, ref)
	}
	if r.src.TokensIssued() == 0 {
		t.Error("the source issued no bearer token: the client did not go through the token flow")
	}

	t.Run("to a registry without the API", func(t *testing.T) {
		dst := push(t, r.without.Host, "mirror/agent", r.regs, img)
		if _, ok, err := listReferrers(ctx, r.o, dst, dst.Digest()); ok || err != nil {
			t.Fatalf("distribution's referrers API: supported=%v err=%v, want neither", ok, err)
		}
		rep, err := CopyAttachments(ctx, src, reference.TrimNamed(dst), src.Digest(), r.o)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Copied) != 1 || rep.Copied[0].Tag != tag || rep.Copied[0].Blobs != 2 || rep.Copied[0].Referrer {
			t.Fatalf("copy: %+v, want a new tag-schema index, sent with the referrer's two blobs", rep)
		}
		var idx imgspecv1.Index
		if err := json.Unmarshal([]byte(attachmentRaw(t, r.o, dst, tag)), &idx); err != nil {
			t.Fatal(err)
		}
		if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != ref || idx.MediaType != imgspecv1.MediaTypeImageIndex {
			t.Fatalf("the mirror's tag-schema index: %+v, want %s", idx, ref)
		}
		onMirror, _ := reference.WithDigest(reference.TrimNamed(dst), ref)
		if _, err := imageManifest(ctx, r.o, onMirror); err != nil {
			t.Errorf("the referrer on the mirror: %v", err)
		}
		rep, err = CopyAttachments(ctx, src, reference.TrimNamed(dst), src.Digest(), r.o)
		if err != nil || len(rep.Copied) != 0 || rep.Unchanged != 1 {
			t.Fatalf("second copy: %+v %v, want nothing copied", rep, err)
		}
	})

	t.Run("to a registry with the API", func(t *testing.T) {
		dst := push(t, r.withAPI.Host, "mirror/agent", r.regs, img)
		plan, err := PlanAttachments(ctx, src, reference.TrimNamed(dst), src.Digest(), r.o)
		if err != nil || len(plan.Copied) != 1 || !plan.Copied[0].Referrer || plan.Copied[0].Blobs != 2 {
			t.Fatalf("plan: %+v %v, want the referrer with two blobs", plan, err)
		}
		if list, _, err := listReferrers(ctx, r.o, dst, dst.Digest()); err != nil || len(list) != 0 {
			t.Fatalf("after the plan, the mirror lists %v (%v), want nothing", list, err)
		}
		calls := r.withAPI.ReferrersCalls()
		rep, err := CopyAttachments(ctx, src, reference.TrimNamed(dst), src.Digest(), r.o)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Copied) != 1 || !rep.Copied[0].Referrer || rep.Copied[0].Digest != ref.String() || rep.Copied[0].Blobs != 2 {
			t.Fatalf("copy: %+v, want the referrer by digest with its two blobs", rep)
		}
		if r.withAPI.ReferrersCalls() == calls {
			t.Error("the destination's referrers API was not asked")
		}
		list, ok, err := listReferrers(ctx, r.o, dst, dst.Digest())
		if err != nil || !ok || len(list) != 1 || list[0].Digest != ref {
			t.Fatalf("the mirror's referrers API: %v %v %v, want %s", list, ok, err, ref)
		}
		if _, err := readAttachment(ctx, r.o, mustTag(t, dst, tag)); !errors.Is(err, errAbsent) {
			t.Errorf("a tag-schema index was written on a registry with the API: %v", err)
		}
		rep, err = CopyAttachments(ctx, src, reference.TrimNamed(dst), src.Digest(), r.o)
		if err != nil || len(rep.Copied) != 0 || rep.Unchanged != 1 {
			t.Fatalf("second copy: %+v %v, want nothing copied", rep, err)
		}
	})
}

// A referrer of a referrer (a signature of the SBOM) travels too.
func TestCopyAttachments_ReferrersAPI_Nested(t *testing.T) {
	r := newAPIRegistries(t)
	ctx := context.Background()
	img := imagetest.Options{Layers: 1, Size: 256, Seed: 42}
	src := push(t, r.src.Host, "up/agent", r.regs, img)
	dst := push(t, r.without.Host, "mirror/agent", r.regs, img)
	srcRaw, err := imageManifest(ctx, r.o, src)
	if err != nil {
		t.Fatal(err)
	}
	sbom, sbomRaw := putReferrerManifest(t, r.o, src, srcRaw, []byte(`{"spdxVersion":"SPDX-2.3"}`))
	onSBOM, _ := reference.WithDigest(reference.TrimNamed(src), sbom)
	sig, _ := putReferrerManifest(t, r.o, onSBOM, sbomRaw, []byte(`{"signature":"of the SBOM"}`))
	if _, err := CopyAttachments(ctx, src, reference.TrimNamed(dst), src.Digest(), r.o); err != nil {
		t.Fatal(err)
	}
	tag, _ := ReferrersTag(sbom)
	var idx imgspecv1.Index
	if err := json.Unmarshal([]byte(attachmentRaw(t, r.o, dst, tag)), &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != sig {
		t.Fatalf("the SBOM's referrers on the mirror: %+v, want %s", idx, sig)
	}
}

// A source registry whose referrers API lies is caught before anything is
// written: an entry that is another image's referrer, an entry whose
// digest the manifest does not hash to, an answer that is no index.
func TestCopyAttachments_ReferrersAPI_LyingRegistry(t *testing.T) {
	r := newAPIRegistries(t)
	ctx := context.Background()
	img := imagetest.Options{Layers: 1, Size: 256, Seed: 43}
	src := push(t, r.src.Host, "up/agent", r.regs, img)
	other := push(t, r.src.Host, "up/agent", r.regs, imagetest.Options{Layers: 1, Size: 256, Seed: 44})
	otherRaw, err := imageManifest(ctx, r.o, other)
	if err != nil {
		t.Fatal(err)
	}
	foreign, foreignRaw := putReferrerManifest(t, r.o, other, otherRaw, []byte(`{"spdxVersion":"SPDX-2.3","name":"another image"}`))
	entry := func(d digest.Digest, size int64) []byte {
		b, _ := json.Marshal(imgspecv1.Index{MediaType: imgspecv1.MediaTypeImageIndex, Manifests: []imgspecv1.Descriptor{{MediaType: imgspecv1.MediaTypeImageManifest, Digest: d, Size: size}}})
		return b
	}
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"another image's referrer", entry(foreign, int64(len(foreignRaw)))},
		{"a digest the manifest does not hash to", entry(digest.FromString("forged"), int64(len(foreignRaw)))},
		{"not an index", []byte(`{"mediaType":"application/vnd.oci.image.manifest.v1+json"}`)},
		{"an invalid digest", []byte(`{"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"digest":"sha256:../../etc","size":1}]}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := push(t, r.without.Host, "mirror/"+slug(tc.name), r.regs, img)
			r.src.RewriteReferrers(func([]byte) []byte { return tc.body })
			defer r.src.RewriteReferrers(nil)
			_, err := CopyAttachments(ctx, src, reference.TrimNamed(dst), src.Digest(), r.o)
			if !errors.Is(err, errs.ErrIntegrity) && !errors.Is(err, errs.ErrNotFound) {
				t.Fatalf("got %v, want an integrity error (or, for the forged digest, not found)", err)
			}
			tag, _ := ReferrersTag(src.Digest())
			if _, err := readAttachment(ctx, r.o, mustTag(t, dst, tag)); !errors.Is(err, errAbsent) {
				t.Errorf("a tag-schema index was written on the mirror: %v", err)
			}
			onMirror, _ := reference.WithDigest(reference.TrimNamed(dst), foreign)
			if _, err := imageManifest(ctx, r.o, onMirror); err == nil {
				t.Error("the other image's referrer was copied to the mirror")
			}
		})
	}
}

func mustTag(t *testing.T, ref reference.Named, tag string) reference.NamedTagged {
	t.Helper()
	tagged, err := reference.WithTag(reference.TrimNamed(ref), tag)
	if err != nil {
		t.Fatal(err)
	}
	return tagged
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
