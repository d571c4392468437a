package sign_test

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
	"github.com/agentforge/agentforge/publisher/attachments"
	"github.com/agentforge/agentforge/publisher/registrytest"
	"github.com/agentforge/agentforge/publisher/sign"
	"github.com/agentforge/agentforge/publisher/sign/signtest"
	"github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker/reference"
)

// What agentforge signs and attests, the real cosign verifies, on a
// registry with auth and TLS; an image, and a multi-platform index.
func TestCosign_VerifiesAgentforgeSignatures(t *testing.T) {
	signtest.Cosign(t) // first: the short tier skips it before any setup
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
			if _, err := sign.Attest(ctx, ref, key, "spdxjson", []byte(signtest.SBOM), e.opts); err != nil {
				t.Fatal(err)
			}
			if code, out := signtest.VerifyAttestation(t, env, pub, "spdxjson", ref.String()); code != 0 {
				t.Fatalf("cosign verify-attestation: exit %d\n%s", code, out)
			}
			// A claim is cosign's annotation (sign -a, verify -a).
			claimed := e.push(t, "cosign/claims-"+tc.name, tc.img)
			if _, err := sign.SignClaims(ctx, claimed, key, sign.Claims{"agentforge.io/cache-key": "k1"}, e.opts); err != nil {
				t.Fatal(err)
			}
			if code, out := signtest.Run(t, env, "verify", "--key", pub, "--insecure-ignore-tlog=true", "-a", "agentforge.io/cache-key=k1", claimed.String()); code != 0 {
				t.Errorf("cosign verify -a with the claim: exit %d\n%s", code, out)
			}
			if code, out := signtest.Run(t, env, "verify", "--key", pub, "--insecure-ignore-tlog=true", "-a", "agentforge.io/cache-key=k2", claimed.String()); code == 0 {
				t.Errorf("cosign verify -a took another claim:\n%s", out)
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
	signtest.Cosign(t) // first: the short tier skips it before any setup
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
	priv, err := sign.LoadPrivateKey(filepath.Join(dir, "cosign.key"), []byte("cosign-pass"))
	if err != nil {
		t.Fatalf("cosign's private key: %v", err)
	}
	pub, err := sign.LoadPublicKey(filepath.Join(dir, "cosign.pub"))
	if err != nil {
		t.Fatal(err)
	}
	ref := e.push(t, "cosign/signed-by-cosign", ocitest.Options{Layers: 1, Size: 512, Seed: 33})
	run("sign", "--key", filepath.Join(dir, "cosign.key"), "--tlog-upload=false", "--yes", ref.String())
	if _, err := sign.Verify(ctx, ref, pub, e.opts); err != nil {
		t.Fatalf("cosign's signature: %v", err)
	}
	sbom := filepath.Join(dir, "sbom.spdx.json")
	if err := os.WriteFile(sbom, []byte(signtest.SBOM), 0o644); err != nil {
		t.Fatal(err)
	}
	run("attest", "--key", filepath.Join(dir, "cosign.key"), "--type", "spdxjson", "--predicate", sbom, "--tlog-upload=false", "--yes", ref.String())
	v, err := sign.VerifyAttestation(ctx, ref, pub, "spdxjson", e.opts)
	if err != nil {
		t.Fatalf("cosign's attestation: %v", err)
	}
	if !strings.Contains(string(v.Predicate), "SPDX-2.3") {
		t.Errorf("predicate: %s", v.Predicate)
	}
	// The key cosign generated signs with agentforge too: the signature is
	// already there (cosign's), so nothing is added.
	res, err := sign.Sign(ctx, ref, priv, e.opts)
	if err != nil || res.Added {
		t.Errorf("sign.Sign after cosign sign with the same key: %+v, %v", res, err)
	}
}

// cosign's OCI 1.1 mode on a registry with the referrers API writes its
// signature as a referrer and no tag at all; a mirror copies it (to
// distribution, which has no referrers API, as a tag-schema index), and the
// real cosign verifies the mirrored image with the same key.
func TestCosign_ReferrersAPISignatureSurvivesMirror(t *testing.T) {
	signtest.Cosign(t) // first: the short tier skips it before any setup
	r := registrytest.NewTrio(t)
	ctx := context.Background()
	dir := t.TempDir()
	env := signtest.Env{AuthFile: r.Config.AuthFile, CAFile: r.Config.CAFile, Passphrase: "cosign-pass", Experimental: true}
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
	src := registrytest.Push(t, r.Hosts, r.Src.Host+"/up/agent:latest", img)
	run("sign", "--registry-referrers-mode=oci-1-1", "--key", filepath.Join(dir, "cosign.key"), "--tlog-upload=false", "--yes", src.String())
	list, ok, err := attachments.ListReferrers(ctx, trio(r), src, src.Digest())
	if err != nil || !ok || len(list) != 1 {
		t.Fatalf("cosign's referrer on the source: %v %v %v", list, ok, err)
	}
	sigTag, _ := attachments.AttachmentTag(src.Digest(), attachments.SuffixSignature)
	refTag, _ := attachments.ReferrersTag(src.Digest())
	for _, tag := range []string{sigTag, refTag} {
		if _, err := attachments.Read(ctx, trio(r), registrytest.Tagged(t, src, tag)); !errors.Is(err, attachments.ErrAbsent) {
			t.Fatalf("test set-up: cosign wrote the tag %s (%v): the referrers API would not be what is tested", tag, err)
		}
	}
	if code, out := verify(src.String()); code != 0 {
		t.Fatalf("cosign verify on the source: exit %d\n%s", code, out)
	}
	pub, err := sign.LoadPublicKey(filepath.Join(dir, "cosign.pub"))
	if err != nil {
		t.Fatal(err)
	}
	// agentforge verifies cosign's OCI 1.1 signature too (verify --key,
	// register --require-signature), and not with another key.
	if v, err := sign.Verify(ctx, src, pub, trio(r)); err != nil || v.Verified != 1 || v.Attachment != src.Name()+"@"+list[0].Digest.String() {
		t.Fatalf("sign.Verify of cosign's referrer signature: %+v %v", v, err)
	}
	other, _, _ := keyPair(t, "other")
	if _, err := sign.Verify(ctx, src, other.Public(), trio(r)); !errors.Is(err, errs.ErrIntegrity) || sign.IsMissing(err) {
		t.Fatalf("sign.Verify with another key: %v, want an integrity error (not missing)", err)
	}
	for _, dstHost := range []string{r.Without.Host, r.WithAPI.Host} {
		dst := registrytest.Push(t, r.Hosts, dstHost+"/mirror/agent:latest", img)
		if code, _ := verify(dst.String()); code == 0 {
			t.Fatalf("%s: cosign verified before the mirror copied the signature", dstHost)
		}
		if _, err := copyAll(ctx, src, reference.TrimNamed(dst), src.Digest(), trio(r)); err != nil {
			t.Fatal(err)
		}
		code, out := verify(dst.String())
		if code != 0 {
			t.Fatalf("%s: cosign verify after the mirror: exit %d\n%s", dstHost, code, out)
		}
		if !strings.Contains(out, `"docker-manifest-digest":"`+dst.Digest().String()+`"`) {
			t.Errorf("cosign's output does not name the digest:\n%s", out)
		}
		if _, err := sign.Verify(ctx, dst, pub, trio(r)); err != nil {
			t.Errorf("%s: sign.Verify after the mirror: %v", dstHost, err)
		}
	}
}

// A registry cannot pass off a signature as this image's: a cosign OCI 1.1
// signature of another image, listed by the referrers API for this one, or
// re-pointed at this one (its payload still names the other digest), is
// an integrity failure, and an unsigned image is "not signed".
func TestVerify_ReferrerSignatureLies(t *testing.T) {
	signtest.Cosign(t) // first: the short tier skips it before any setup
	r := registrytest.NewTrio(t)
	ctx := context.Background()
	dir := t.TempDir()
	env := signtest.Env{AuthFile: r.Config.AuthFile, CAFile: r.Config.CAFile, Passphrase: "pass", Experimental: true}
	if code, out := signtest.Run(t, env, "generate-key-pair", "--output-key-prefix", filepath.Join(dir, "cosign")); code != 0 {
		t.Fatal(out)
	}
	pub, err := sign.LoadPublicKey(filepath.Join(dir, "cosign.pub"))
	if err != nil {
		t.Fatal(err)
	}
	a := registrytest.Push(t, r.Hosts, r.Src.Host+"/up/agent:latest", ocitest.Options{Layers: 1, Size: 256, Seed: 46})
	b := registrytest.Push(t, r.Hosts, r.Src.Host+"/up/agent:latest", ocitest.Options{Layers: 1, Size: 256, Seed: 47})
	if _, err := sign.Verify(ctx, a, pub, trio(r)); !sign.IsMissing(err) {
		t.Fatalf("unsigned: %v, want not signed", err)
	}
	if code, out := signtest.Run(t, env, "sign", "--registry-referrers-mode=oci-1-1", "--key", filepath.Join(dir, "cosign.key"), "--tlog-upload=false", "--yes", b.String()); code != 0 {
		t.Fatal(out)
	}
	list, _, err := attachments.ListReferrers(ctx, trio(r), b, b.Digest())
	if err != nil || len(list) != 1 {
		t.Fatalf("b's referrers: %v %v", list, err)
	}
	sigOfB := list[0]

	// The API lists b's signature for a.
	r.Src.RewriteReferrers(func(string, []byte) []byte {
		raw, _ := json.Marshal(imgspecv1.Index{MediaType: imgspecv1.MediaTypeImageIndex, Manifests: []imgspecv1.Descriptor{sigOfB}})
		return raw
	})
	if _, err := sign.Verify(ctx, a, pub, trio(r)); !errors.Is(err, errs.ErrIntegrity) || !strings.Contains(err.Error(), "subject") {
		t.Errorf("b's signature listed for a: %v, want a subject integrity error", err)
	}
	r.Src.RewriteReferrers(nil)

	// b's signature manifest re-pointed at a: the registry lists it for a,
	// but the signed payload names b.
	at, _ := reference.WithDigest(reference.TrimNamed(b), sigOfB.Digest)
	sig, err := attachments.Read(ctx, trio(r), at)
	if err != nil {
		t.Fatal(err)
	}
	defer sig.Close()
	aRaw, err := attachments.ImageManifest(ctx, trio(r), a)
	if err != nil {
		t.Fatal(err)
	}
	m := sig.Manifest
	m.Subject = &imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageManifest, Digest: a.Digest(), Size: int64(len(aRaw))}
	raw, _ := json.Marshal(m)
	byDigest, _ := reference.WithDigest(reference.TrimNamed(a), digest.FromBytes(raw))
	w, err := attachments.NewWriter(ctx, trio(r), byDigest)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.PutManifest(ctx, raw); err != nil {
		t.Fatal(err)
	}
	_, err = sign.Verify(ctx, a, pub, trio(r))
	var ie *errs.IntegrityError
	if !errors.As(err, &ie) || ie.Check != "signed digest" || ie.Actual != b.Digest().String() {
		t.Errorf("b's signature re-pointed at a: %v, want the signed digest (%s) reported", err, b.Digest())
	}
}

// An unsigned image stays "not signed" (exit 3) when the registry's
// referrers route fails: the failure is said, the verdict kept. And a
// registry listing thousands of referrers makes Verify read at most
// attachments.MaxReferrerCandidates of them.
func TestVerify_ReferrersTroubleKeepsTheVerdict(t *testing.T) {
	r := registrytest.NewTrio(t)
	ctx := context.Background()
	key, _, _ := keyPair(t, "p")
	img := registrytest.Push(t, r.Hosts, r.Src.Host+"/up/agent:latest", ocitest.Options{Layers: 1, Size: 256, Seed: 51})

	r.Src.Intercept(func(w http.ResponseWriter, req *http.Request) bool {
		if strings.Contains(req.URL.Path, "/referrers/") {
			http.Error(w, `{"errors":[{"code":"DENIED"}]}`, http.StatusForbidden)
			return true
		}
		return false
	})
	_, err := sign.Verify(ctx, img, key.Public(), trio(r))
	r.Src.Intercept(nil)
	if !sign.IsMissing(err) || !errors.Is(err, errs.ErrIntegrity) || !strings.Contains(err.Error(), "referrers") {
		t.Fatalf("got %v, want not signed (exit 3), saying the referrers could not be read", err)
	}

	var manifestGets atomic.Int64
	r.Src.RewriteReferrers(func(string, []byte) []byte {
		idx := imgspecv1.Index{MediaType: imgspecv1.MediaTypeImageIndex}
		for i := range 5000 {
			idx.Manifests = append(idx.Manifests, imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageManifest, Digest: digest.FromString(fmt.Sprint(i)), Size: 500, ArtifactType: sign.ArtifactTypeSignature})
		}
		raw, _ := json.Marshal(idx)
		return raw
	})
	r.Src.Intercept(func(w http.ResponseWriter, req *http.Request) bool {
		if strings.Contains(req.URL.Path, "/manifests/sha256:") {
			manifestGets.Add(1)
		}
		return false
	})
	defer r.Src.RewriteReferrers(nil)
	defer r.Src.Intercept(nil)
	if _, err := sign.Verify(ctx, img, key.Public(), trio(r)); !sign.IsMissing(err) {
		t.Errorf("5000 listed, none there: %v, want not signed", err)
	}
	if n := manifestGets.Load(); n > 2*attachments.MaxReferrerCandidates+8 {
		t.Errorf("%d manifest reads for 5000 listed referrers, want at most about %d", n, attachments.MaxReferrerCandidates)
	}
}
