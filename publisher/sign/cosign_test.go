package sign

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/agentforge/agentforge/builder/oci/ocitest"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/publisher/sign/signtest"
	"github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker/reference"
)

// What agentforge signs and attests, the real cosign verifies, on a
// registry with auth and TLS; an image, and a multi-platform index.
func TestCosign_VerifiesAgentforgeSignatures(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	key, _, pub := keyPair(t, "pass")
	env := signtest.Env{AuthFile: e.reg.AuthFile, CAFile: e.reg.CAFile}
	for _, tc := range []struct {
		name string
		img  ocitest.Options
	}{
		{"image", ocitest.Options{Layers: 1, Size: 1024, Seed: 31}},
		{"index", ocitest.Options{Layers: 1, Size: 1024, Seed: 32, Platforms: []string{"linux/amd64", "linux/arm64"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref := e.push(t, "cosign/"+tc.name, tc.img)
			if code, out := signtest.Verify(t, env, pub, ref.String()); code == 0 {
				t.Fatalf("cosign verified an unsigned image:\n%s", out)
			}
			mustSign(t, ref, key, e.opts)
			code, out := signtest.Verify(t, env, pub, ref.String())
			if code != 0 {
				t.Fatalf("cosign verify: exit %d\n%s", code, out)
			}
			if !strings.Contains(out, `"docker-manifest-digest":"`+ref.Digest().String()+`"`) {
				t.Errorf("cosign's output does not name the digest:\n%s", out)
			}
			if _, err := Attest(ctx, ref, key, "spdxjson", []byte(testSBOM), e.opts); err != nil {
				t.Fatal(err)
			}
			if code, out := signtest.VerifyAttestation(t, env, pub, "spdxjson", ref.String()); code != 0 {
				t.Fatalf("cosign verify-attestation: exit %d\n%s", code, out)
			}
			// Another key: cosign refuses, as Verify does.
			_, _, otherPub := keyPair(t, "other")
			if code, out := signtest.Verify(t, env, otherPub, ref.String()); code == 0 {
				t.Fatalf("cosign verified with another key:\n%s", out)
			}
		})
	}
}

// What cosign signs and attests (with a key cosign generated), agentforge
// verifies: the formats agree both ways.
func TestCosign_AgentforgeVerifiesCosignSignatures(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	dir := t.TempDir()
	env := signtest.Env{AuthFile: e.reg.AuthFile, CAFile: e.reg.CAFile, Passphrase: "cosign-pass"}
	run := func(args ...string) {
		t.Helper()
		if code, out := signtest.Run(t, env, args...); code != 0 {
			t.Fatalf("cosign %s: exit %d\n%s", strings.Join(args, " "), code, out)
		}
	}
	run("generate-key-pair", "--output-key-prefix", filepath.Join(dir, "cosign"))
	priv, err := LoadPrivateKey(filepath.Join(dir, "cosign.key"), []byte("cosign-pass"))
	if err != nil {
		t.Fatalf("cosign's private key: %v", err)
	}
	pub, err := LoadPublicKey(filepath.Join(dir, "cosign.pub"))
	if err != nil {
		t.Fatal(err)
	}
	ref := e.push(t, "cosign/signed-by-cosign", ocitest.Options{Layers: 1, Size: 512, Seed: 33})
	run("sign", "--key", filepath.Join(dir, "cosign.key"), "--tlog-upload=false", "--yes", ref.String())
	if _, err := Verify(ctx, ref, pub, e.opts); err != nil {
		t.Fatalf("cosign's signature: %v", err)
	}
	sbom := filepath.Join(dir, "sbom.spdx.json")
	if err := os.WriteFile(sbom, []byte(testSBOM), 0o644); err != nil {
		t.Fatal(err)
	}
	run("attest", "--key", filepath.Join(dir, "cosign.key"), "--type", "spdxjson", "--predicate", sbom, "--tlog-upload=false", "--yes", ref.String())
	v, err := VerifyAttestation(ctx, ref, pub, "spdxjson", e.opts)
	if err != nil {
		t.Fatalf("cosign's attestation: %v", err)
	}
	if !strings.Contains(string(v.Predicates[0]), "SPDX-2.3") {
		t.Errorf("predicate: %s", v.Predicates[0])
	}
	// The key cosign generated signs with agentforge too: the signature is
	// already there (cosign's), so nothing is added.
	res, err := Sign(ctx, ref, priv, e.opts)
	if err != nil || res.Added {
		t.Errorf("Sign after cosign sign with the same key: %+v, %v", res, err)
	}
}

// cosign's OCI 1.1 mode on a registry with the referrers API writes its
// signature as a referrer and no tag at all; a mirror copies it (to
// distribution, which has no referrers API, as a tag-schema index), and the
// real cosign verifies the mirrored image with the same key.
func TestCosign_ReferrersAPISignatureSurvivesMirror(t *testing.T) {
	r := newAPIRegistries(t)
	ctx := context.Background()
	dir := t.TempDir()
	env := signtest.Env{AuthFile: r.regs.AuthFile, CAFile: r.regs.CAFile, Passphrase: "cosign-pass", Experimental: true}
	run := func(args ...string) string {
		t.Helper()
		code, out := signtest.Run(t, env, args...)
		if code != 0 {
			t.Fatalf("cosign %s: exit %d\n%s", strings.Join(args, " "), code, out)
		}
		return out
	}
	verify := func(ref string) (int, string) {
		return signtest.Run(t, env, "verify", "--experimental-oci11", "--key", filepath.Join(dir, "cosign.pub"), "--insecure-ignore-tlog=true", "--output", "json", ref)
	}
	run("generate-key-pair", "--output-key-prefix", filepath.Join(dir, "cosign"))
	img := ocitest.Options{Layers: 1, Size: 512, Seed: 45}
	src := push(t, r.src.Host, "up/agent", r.regs, img)
	run("sign", "--registry-referrers-mode=oci-1-1", "--key", filepath.Join(dir, "cosign.key"), "--tlog-upload=false", "--yes", src.String())
	list, ok, err := listReferrers(ctx, r.o, src, src.Digest())
	if err != nil || !ok || len(list) != 1 {
		t.Fatalf("cosign's referrer on the source: %v %v %v", list, ok, err)
	}
	sigTag, _ := AttachmentTag(src.Digest(), SuffixSignature)
	refTag, _ := ReferrersTag(src.Digest())
	for _, tag := range []string{sigTag, refTag} {
		if _, err := readAttachment(ctx, r.o, mustTag(t, src, tag)); !errors.Is(err, errAbsent) {
			t.Fatalf("test set-up: cosign wrote the tag %s (%v): the referrers API would not be what is tested", tag, err)
		}
	}
	if code, out := verify(src.String()); code != 0 {
		t.Fatalf("cosign verify on the source: exit %d\n%s", code, out)
	}
	pub, err := LoadPublicKey(filepath.Join(dir, "cosign.pub"))
	if err != nil {
		t.Fatal(err)
	}
	// agentforge verifies cosign's OCI 1.1 signature too (verify --key,
	// register --require-signature), and not with another key.
	if v, err := Verify(ctx, src, pub, r.o); err != nil || v.Verified != 1 || v.Attachment != src.Name()+"@"+list[0].Digest.String() {
		t.Fatalf("Verify of cosign's referrer signature: %+v %v", v, err)
	}
	other, _, _ := keyPair(t, "other")
	if _, err := Verify(ctx, src, other.Public(), r.o); !errors.Is(err, errs.ErrIntegrity) || IsMissing(err) {
		t.Fatalf("Verify with another key: %v, want an integrity error (not missing)", err)
	}
	for _, dstHost := range []string{r.without.Host, r.withAPI.Host} {
		dst := push(t, dstHost, "mirror/agent", r.regs, img)
		if code, _ := verify(dst.String()); code == 0 {
			t.Fatalf("%s: cosign verified before the mirror copied the signature", dstHost)
		}
		if _, err := CopyAttachments(ctx, src, reference.TrimNamed(dst), src.Digest(), r.o); err != nil {
			t.Fatal(err)
		}
		code, out := verify(dst.String())
		if code != 0 {
			t.Fatalf("%s: cosign verify after the mirror: exit %d\n%s", dstHost, code, out)
		}
		if !strings.Contains(out, `"docker-manifest-digest":"`+dst.Digest().String()+`"`) {
			t.Errorf("cosign's output does not name the digest:\n%s", out)
		}
		if _, err := Verify(ctx, dst, pub, r.o); err != nil {
			t.Errorf("%s: Verify after the mirror: %v", dstHost, err)
		}
	}
}

// A registry cannot pass off a signature as this image's: a cosign OCI 1.1
// signature of another image, listed by the referrers API for this one, or
// re-pointed at this one (its payload still names the other digest), is
// an integrity failure, and an unsigned image is "not signed".
func TestVerify_ReferrerSignatureLies(t *testing.T) {
	r := newAPIRegistries(t)
	ctx := context.Background()
	dir := t.TempDir()
	env := signtest.Env{AuthFile: r.regs.AuthFile, CAFile: r.regs.CAFile, Passphrase: "pass", Experimental: true}
	if code, out := signtest.Run(t, env, "generate-key-pair", "--output-key-prefix", filepath.Join(dir, "cosign")); code != 0 {
		t.Fatal(out)
	}
	pub, err := LoadPublicKey(filepath.Join(dir, "cosign.pub"))
	if err != nil {
		t.Fatal(err)
	}
	a := push(t, r.src.Host, "up/agent", r.regs, ocitest.Options{Layers: 1, Size: 256, Seed: 46})
	b := push(t, r.src.Host, "up/agent", r.regs, ocitest.Options{Layers: 1, Size: 256, Seed: 47})
	if _, err := Verify(ctx, a, pub, r.o); !IsMissing(err) {
		t.Fatalf("unsigned: %v, want not signed", err)
	}
	if code, out := signtest.Run(t, env, "sign", "--registry-referrers-mode=oci-1-1", "--key", filepath.Join(dir, "cosign.key"), "--tlog-upload=false", "--yes", b.String()); code != 0 {
		t.Fatal(out)
	}
	list, _, err := listReferrers(ctx, r.o, b, b.Digest())
	if err != nil || len(list) != 1 {
		t.Fatalf("b's referrers: %v %v", list, err)
	}
	sigOfB := list[0]

	// The API lists b's signature for a.
	r.src.RewriteReferrers(func(string, []byte) []byte {
		raw, _ := json.Marshal(imgspecv1.Index{MediaType: imgspecv1.MediaTypeImageIndex, Manifests: []imgspecv1.Descriptor{sigOfB}})
		return raw
	})
	if _, err := Verify(ctx, a, pub, r.o); !errors.Is(err, errs.ErrIntegrity) || !strings.Contains(err.Error(), "subject") {
		t.Errorf("b's signature listed for a: %v, want a subject integrity error", err)
	}
	r.src.RewriteReferrers(nil)

	// b's signature manifest re-pointed at a: the registry lists it for a,
	// but the signed payload names b.
	at, _ := reference.WithDigest(reference.TrimNamed(b), sigOfB.Digest)
	sig, err := readAttachment(ctx, r.o, at)
	if err != nil {
		t.Fatal(err)
	}
	defer sig.Close()
	aRaw, err := imageManifest(ctx, r.o, a)
	if err != nil {
		t.Fatal(err)
	}
	m := sig.manifest
	m.Subject = &imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageManifest, Digest: a.Digest(), Size: int64(len(aRaw))}
	raw, _ := json.Marshal(m)
	byDigest, _ := reference.WithDigest(reference.TrimNamed(a), digest.FromBytes(raw))
	w, err := newWriter(ctx, r.o, byDigest)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.manifest(ctx, raw); err != nil {
		t.Fatal(err)
	}
	_, err = Verify(ctx, a, pub, r.o)
	var ie *errs.IntegrityError
	if !errors.As(err, &ie) || ie.Check != "signed digest" || ie.Actual != b.Digest().String() {
		t.Errorf("b's signature re-pointed at a: %v, want the signed digest (%s) reported", err, b.Digest())
	}
}

// An unsigned image stays "not signed" (exit 3) when the registry's
// referrers route fails: the failure is said, the verdict kept. And a
// registry listing thousands of referrers makes Verify read at most
// maxReferrerCandidates of them.
func TestVerify_ReferrersTroubleKeepsTheVerdict(t *testing.T) {
	r := newAPIRegistries(t)
	ctx := context.Background()
	key, _, _ := keyPair(t, "p")
	img := push(t, r.src.Host, "up/agent", r.regs, ocitest.Options{Layers: 1, Size: 256, Seed: 51})

	r.src.Intercept(func(w http.ResponseWriter, req *http.Request) bool {
		if strings.Contains(req.URL.Path, "/referrers/") {
			http.Error(w, `{"errors":[{"code":"DENIED"}]}`, http.StatusForbidden)
			return true
		}
		return false
	})
	_, err := Verify(ctx, img, key.Public(), r.o)
	r.src.Intercept(nil)
	if !IsMissing(err) || !errors.Is(err, errs.ErrIntegrity) || !strings.Contains(err.Error(), "referrers") {
		t.Fatalf("got %v, want not signed (exit 3), saying the referrers could not be read", err)
	}

	var manifestGets atomic.Int64
	r.src.RewriteReferrers(func(string, []byte) []byte {
		idx := imgspecv1.Index{MediaType: imgspecv1.MediaTypeImageIndex}
		for i := range 5000 {
			idx.Manifests = append(idx.Manifests, imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageManifest, Digest: digest.FromString(fmt.Sprint(i)), Size: 500, ArtifactType: ArtifactTypeSignature})
		}
		raw, _ := json.Marshal(idx)
		return raw
	})
	r.src.Intercept(func(w http.ResponseWriter, req *http.Request) bool {
		if strings.Contains(req.URL.Path, "/manifests/sha256:") {
			manifestGets.Add(1)
		}
		return false
	})
	defer r.src.RewriteReferrers(nil)
	defer r.src.Intercept(nil)
	if _, err := Verify(ctx, img, key.Public(), r.o); !IsMissing(err) {
		t.Errorf("5000 listed, none there: %v, want not signed", err)
	}
	if n := manifestGets.Load(); n > 2*maxReferrerCandidates+8 {
		t.Errorf("%d manifest reads for 5000 listed referrers, want at most about %d", n, maxReferrerCandidates)
	}
}
