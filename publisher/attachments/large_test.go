package attachments_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
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
	"go.podman.io/image/v5/docker/reference"
)

// bigFile is more than attachments.MaxSize: what a memory-bound read
// refused (a large file attached with oras).
func bigFile(t *testing.T) []byte {
	t.Helper()
	b := make([]byte, attachments.MaxSize+4096)
	if _, err := rand.Read(b[:1<<20]); err != nil {
		t.Fatal(err)
	}
	return b
}

// A referrer holding a blob larger than what is read into memory is
// copied, streamed from one registry to the other with its digest and size
// checked on the way, wherever the source keeps it (the tag schema, the
// referrers API) and wherever it goes (a registry with the API, one
// without); it never fails the image's copy.
func TestCopyAttachments_LargeReferrerIsStreamed(t *testing.T) {
	r := registrytest.NewTrio(t)
	ctx := context.Background()
	img := ocitest.Options{Layers: 1, Size: 256, Seed: 111}
	big := bigFile(t)
	bigDigest := digest.FromBytes(big)

	// Under the tag schema on a registry without the API.
	a, b, regs, o := twoRegistries(t)
	src, srcRaw := pushSource(t, a.Host, regs, o, img)
	ref := putReferrer(t, o, src, srcRaw, big)
	dst := registrytest.Push(t, registrytest.Open(t, regs), b.Host+"/mirror/agent:latest", img)
	rep, err := copyAll(ctx, src, reference.TrimNamed(dst), src.Digest(), o)
	if err != nil {
		t.Fatalf("tag schema: %v", err)
	}
	if len(rep.Copied) != 1 || rep.Copied[0].Bytes < int64(len(big)) || len(rep.Skipped) != 0 {
		t.Errorf("tag schema: %+v, want the referrer copied with its large blob", rep)
	}
	hasBlob(t, o, dst, bigDigest)
	onMirror, _ := reference.WithDigest(reference.TrimNamed(dst), ref)
	if _, err := attachments.ImageManifest(ctx, o, onMirror); err != nil {
		t.Errorf("tag schema: the referrer on the mirror: %v", err)
	}

	// Behind the referrers API, to both kinds of destination.
	apiSrc := registrytest.Push(t, r.Hosts, r.Src.Host+"/up/agent:latest", img)
	apiRaw, _ := attachments.ImageManifest(ctx, trio(r), apiSrc)
	apiRef, _ := putReferrerManifest(t, trio(r), apiSrc, apiRaw, big)
	for _, host := range []string{r.WithAPI.Host, r.Without.Host} {
		dst := registrytest.Push(t, r.Hosts, host+"/mirror/agent:latest", img)
		rep, err := copyAll(ctx, apiSrc, reference.TrimNamed(dst), apiSrc.Digest(), trio(r))
		if err != nil || len(rep.Skipped) != 0 {
			t.Fatalf("referrers API to %s: %+v %v", host, rep, err)
		}
		hasBlob(t, trio(r), dst, bigDigest)
		onMirror, _ := reference.WithDigest(reference.TrimNamed(dst), apiRef)
		if _, err := attachments.ImageManifest(ctx, trio(r), onMirror); err != nil {
			t.Errorf("referrers API to %s: the referrer on the mirror: %v", host, err)
		}
	}

	// A source that streams other bytes for the large blob: an integrity
	// failure, and the referrer is not written.
	r.Src.Intercept(func(w http.ResponseWriter, req *http.Request) bool {
		if req.Method != http.MethodGet || !strings.HasSuffix(req.URL.Path, "/blobs/"+bigDigest.String()) {
			return false
		}
		bad := bytes.Clone(big)
		bad[len(bad)-1] ^= 1
		w.Write(bad)
		return true
	})
	defer r.Src.Intercept(nil)
	dst = registrytest.Push(t, r.Hosts, r.Without.Host+"/mirror/lied:latest", img)
	if _, err := copyAll(ctx, apiSrc, reference.TrimNamed(dst), apiSrc.Digest(), trio(r)); !errors.Is(err, errs.ErrIntegrity) {
		t.Errorf("a large blob with other bytes: %v, want an integrity failure", err)
	}
	onMirror, _ = reference.WithDigest(reference.TrimNamed(dst), apiRef)
	if _, err := attachments.ImageManifest(ctx, trio(r), onMirror); err == nil {
		t.Error("the referrer was written although its blob did not match")
	}
}

// A referrer holding a blob past MaxReferrerBlob is skipped and reported,
// left out of the mirror's tag-schema index; the image's other referrers
// and attachments are copied, and the copy succeeds.
func TestCopyAttachments_OversizedReferrerIsSkipped(t *testing.T) {
	a, b, regs, o := twoRegistries(t)
	ctx := context.Background()
	img := ocitest.Options{Layers: 1, Size: 256, Seed: 112}
	src, srcRaw := pushSource(t, a.Host, regs, o, img)
	small := putReferrer(t, o, src, srcRaw, []byte(`{"spdxVersion":"SPDX-2.3"}`))
	large, largeRaw := putReferrerManifest(t, o, src, srcRaw, bytes.Repeat([]byte("x"), 3<<20))
	tag, _ := attachments.ReferrersTag(src.Digest())
	tagged := registrytest.Tagged(t, src, tag)
	list, err := attachments.TagSchemaList(ctx, o, tagged)
	if err != nil {
		t.Fatal(err)
	}
	list = append(list, imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageManifest, Digest: large, Size: int64(len(largeRaw))})
	putRaw(t, o, tagged, indexOf(t, list))
	defer func(n int64) { attachments.MaxReferrerBlob = n }(attachments.MaxReferrerBlob)
	attachments.MaxReferrerBlob = 2 << 20

	dst := registrytest.Push(t, registrytest.Open(t, regs), b.Host+"/mirror/agent:latest", img)
	rep, err := copyAll(ctx, src, reference.TrimNamed(dst), src.Digest(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Skipped) != 1 || rep.Skipped[0].Digest != large.String() || !strings.Contains(rep.Skipped[0].Reason, "more than") {
		t.Errorf("skipped %+v, want %s for its size", rep.Skipped, large)
	}
	got, err := attachments.TagSchemaList(ctx, o, registrytest.Tagged(t, dst, tag))
	if err != nil || len(got) != 1 || got[0].Digest != small {
		t.Errorf("the mirror's index %+v (%v), want %s only", got, err, small)
	}
}

// hasBlob fails unless ref's repository serves the blob d.
func hasBlob(t *testing.T, o attachments.Options, ref reference.Named, d digest.Digest) {
	t.Helper()
	c, err := o.Hosts.Client(ref)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := c.OpenBlob(context.Background(), d)
	if err != nil {
		t.Fatalf("%s: blob %s: %v", ref, d, err)
	}
	defer rc.Close()
	vr := d.Verifier()
	if _, err := io.Copy(vr, rc); err != nil || !vr.Verified() {
		t.Errorf("%s: blob %s does not match its digest (%v)", ref, d, err)
	}
}

// indexOf is a tag-schema index listing list.
func indexOf(t *testing.T, list []imgspecv1.Descriptor) []byte {
	t.Helper()
	raw, err := json.Marshal(imgspecv1.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageIndex, Manifests: list})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
