package sign_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/builder/oci/ocitest"
	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/publisher/attachments"
	"github.com/agentforge/agentforge/publisher/registrytest"
	"github.com/agentforge/agentforge/publisher/sign"
	"github.com/agentforge/agentforge/publisher/sign/signtest"
	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker/reference"
)

func TestSignVerify_RoundTrip(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	key, _, _ := keyPair(t, "pass")
	for _, tc := range []struct {
		name string
		img  ocitest.Options
	}{
		{"image", ocitest.Options{Layers: 1, Size: 1024, Seed: 1}},
		{"index", ocitest.Options{Layers: 1, Size: 1024, Seed: 2, Platforms: []string{"linux/amd64", "linux/arm64"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref := e.push(t, "tool-"+tc.name, tc.img)
			res, err := sign.Sign(ctx, ref, key, e.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Added || res.Layers != 1 {
				t.Fatalf("first Sign: %+v, want one new layer", res)
			}
			if want := "sha256-" + ref.Digest().Encoded() + ".sig"; !strings.HasSuffix(res.Attachment, ":"+want) {
				t.Errorf("attachment %s, want tag %s", res.Attachment, want)
			}
			v, err := sign.Verify(ctx, ref, key.Public(), e.opts)
			if err != nil {
				t.Fatal(err)
			}
			if v.Verified != 1 || v.Total != 1 {
				t.Errorf("Verify: %+v", v)
			}
		})
	}
}

func TestSign_AgainAddsNothing_OtherKeysKept(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ref := e.push(t, "again", ocitest.Options{Layers: 1, Size: 512, Seed: 3})
	k1, _, _ := keyPair(t, "one")
	k2, _, _ := keyPair(t, "two")
	steps := []struct {
		key       *sign.PrivateKey
		wantAdded bool
		wantN     int
	}{
		{k1, true, 1},
		{k1, false, 1},
		{k2, true, 2},
		{k2, false, 2},
		{k1, false, 2},
	}
	for i, s := range steps {
		res, err := sign.Sign(ctx, ref, s.key, e.opts)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if res.Added != s.wantAdded || res.Layers != s.wantN {
			t.Fatalf("step %d: added=%v layers=%d, want %v %d", i, res.Added, res.Layers, s.wantAdded, s.wantN)
		}
	}
	for _, k := range []*sign.PrivateKey{k1, k2} {
		if v, err := sign.Verify(ctx, ref, k.Public(), e.opts); err != nil || v.Verified != 1 || v.Total != 2 {
			t.Errorf("Verify: %+v, %v", v, err)
		}
	}
}

func TestVerify_Refusals(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	key, _, _ := keyPair(t, "pass")
	other, _, _ := keyPair(t, "other")
	for _, tc := range []struct {
		name string
		// prepare signs (or not) the image at ref and returns what to verify.
		prepare func(t *testing.T, ref reference.Canonical)
		want    string
	}{
		{"unsigned", func(t *testing.T, ref reference.Canonical) {}, "not signed"},
		{"another key", func(t *testing.T, ref reference.Canonical) {
			mustSign(t, ref, other, e.opts)
		}, "none of 1 verifies"},
		{"tampered payload", func(t *testing.T, ref reference.Canonical) {
			mustSign(t, ref, key, e.opts)
			rewriteSignature(t, e.opts, ref, func(payload []byte, sig string) ([]byte, string) {
				return []byte(strings.Replace(string(payload), "cosign container image signature", "cosign container image signature ", 1)), sig
			})
		}, "does not verify"},
		{"tampered signature", func(t *testing.T, ref reference.Canonical) {
			mustSign(t, ref, key, e.opts)
			rewriteSignature(t, e.opts, ref, func(payload []byte, sig string) ([]byte, string) {
				return payload, "MEUCIQDmHnQ0DuMRnMqtpX0kc2/wqcJLNfAH2vBGv2cl2Rwv7QIgZ3xVc1Hfg2XvhsC01aiX4nXIKIWvrD3e7uEl8ro2N0I="
			})
		}, "does not verify"},
		{"signature of another digest", func(t *testing.T, ref reference.Canonical) {
			// A valid signature of another image, placed under this image's tag.
			otherRef := e.push(t, "victim-other", ocitest.Options{Layers: 1, Size: 256, Seed: 99})
			mustSign(t, otherRef, key, e.opts)
			copyTag(t, e.opts, otherRef, ref, attachments.SuffixSignature)
		}, "signed digest mismatch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref := e.push(t, "victim-"+strings.ReplaceAll(tc.name, " ", "-"), ocitest.Options{Layers: 1, Size: 256, Seed: 7})
			tc.prepare(t, ref)
			_, err := sign.Verify(ctx, ref, key.Public(), e.opts)
			if err == nil {
				t.Fatal("sign.Verify accepted it")
			}
			if !errors.Is(err, errs.ErrIntegrity) {
				t.Errorf("error is not an integrity failure (exit 3): %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

func TestSign_DigestTheRegistryDoesNotServe(t *testing.T) {
	e := newEnv(t)
	key, _, _ := keyPair(t, "")
	ref := e.push(t, "missing", ocitest.Options{Layers: 1, Size: 256, Seed: 5})
	wrong, _ := reference.WithDigest(reference.TrimNamed(ref), digest.FromString("something else"))
	_, err := sign.Sign(context.Background(), wrong, key, e.opts)
	if err == nil {
		t.Fatal("signed a digest the registry does not have")
	}
	if !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("want not found, got %v", err)
	}
}

// A registry that answers a digest with another manifest: nothing is
// signed, and Verify fails, both as integrity failures.
func TestSign_LyingRegistry(t *testing.T) {
	up := registrytest.New(t, registrytest.Options{})
	proxy := registrytest.NewProxy(t, up)
	regs := remote.Registries{Insecure: []string{up.Host, proxy.Host}}
	o := sign.Options{Hosts: registrytest.Open(t, regs)}
	ctx := context.Background()
	key, _, _ := keyPair(t, "")
	a := registrytest.Push(t, registrytest.Open(t, regs), up.Host+"/lying:latest", ocitest.Options{Layers: 1, Size: 256, Seed: 41})
	b := registrytest.Push(t, registrytest.Open(t, regs), up.Host+"/lying:latest", ocitest.Options{Layers: 1, Size: 256, Seed: 42})
	mustSign(t, a, key, o) // signed for real, upstream
	viaProxy := func(r reference.Canonical) reference.Canonical {
		named, _ := reference.ParseNormalizedNamed(proxy.Host + "/lying")
		c, _ := reference.WithDigest(named, r.Digest())
		return c
	}
	// b is answered with a's manifest (for Verify: a with b's).
	bIsA := registrytest.Faults{SwapManifest: map[string]string{b.Digest().String(): a.Digest().String()}}
	aIsB := registrytest.Faults{SwapManifest: map[string]string{a.Digest().String(): b.Digest().String()}}
	for _, tc := range []struct {
		name   string
		faults registrytest.Faults
		run    func() error
	}{
		{"sign.Sign", bIsA, func() error { _, err := sign.Sign(ctx, viaProxy(b), key, o); return err }},
		{"sign.Attest", bIsA, func() error {
			_, err := sign.Attest(ctx, viaProxy(b), key, "spdxjson", []byte(signtest.SBOM), o)
			return err
		}},
		{"sign.Verify", aIsB, func() error { _, err := sign.Verify(ctx, viaProxy(a), key.Public(), o); return err }},
	} {
		proxy.Set(tc.faults)
		err := tc.run()
		var ie *errs.IntegrityError
		if !errors.As(err, &ie) || ie.Check != "digest" {
			t.Errorf("%s through a lying registry: %v, want a digest integrity failure", tc.name, err)
		}
	}
	proxy.Set(registrytest.Faults{})
	tag, _ := attachments.TagRef(b, b.Digest(), attachments.SuffixSignature)
	if _, err := attachments.Read(ctx, o, tag); !errors.Is(err, attachments.ErrAbsent) {
		t.Errorf("a signature was written for %s: %v", b, err)
	}
}

func mustSign(t *testing.T, ref reference.Canonical, k sign.Signer, o sign.Options) {
	t.Helper()
	if _, err := sign.Sign(context.Background(), ref, k, o); err != nil {
		t.Fatal(err)
	}
}

// rewriteSignature replaces the only signature of ref by what edit makes of
// its payload and base64 signature.
func rewriteSignature(t *testing.T, o sign.Options, ref reference.Canonical, edit func([]byte, string) ([]byte, string)) {
	t.Helper()
	ctx := context.Background()
	tag, _ := attachments.TagRef(ref, ref.Digest(), attachments.SuffixSignature)
	a, err := attachments.Read(ctx, o, tag)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	l := a.Manifest.Layers[0]
	payload, err := a.Blob(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	payload, sig := edit(payload, l.Annotations[attachments.AnnotationSignature])
	if _, err := attachments.Append(ctx, o, tag, nil, attachments.MediaTypeSimpleSigning, payload, map[string]string{attachments.AnnotationSignature: sig}); err != nil {
		t.Fatal(err)
	}
}

// copyTag puts from's attachment manifest, unchanged, under to's tag.
func copyTag(t *testing.T, o sign.Options, from, to reference.Canonical, suffix string) {
	t.Helper()
	ctx := context.Background()
	fromTag, _ := attachments.TagRef(from, from.Digest(), suffix)
	toTag, _ := attachments.TagRef(to, to.Digest(), suffix)
	a, err := attachments.Read(ctx, o, fromTag)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var m json.RawMessage = a.Raw
	w, err := attachments.NewWriter(ctx, o, toTag)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, d := range append(a.Manifest.Layers, a.Manifest.Config) {
		data, err := a.Blob(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := w.Put(ctx, d.MediaType, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.PutManifest(ctx, m); err != nil {
		t.Fatal(err)
	}
}

// Claims ride in the signed payload: a signature counts for the claims it
// carries only, a signature of the same digest by the same key with other
// claims is another signature (added, not "already signed"), and Sign and
// Verify without claims take any of them.
func TestSignClaims(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	key, _, _ := keyPair(t, "pass")
	ref := e.push(t, "claims", ocitest.Options{Layers: 1, Size: 512, Seed: 5})
	one, two := sign.Claims{"agentforge.io/cache-key": "one"}, sign.Claims{"agentforge.io/cache-key": "two"}
	for i, s := range []struct {
		claims    sign.Claims
		wantAdded bool
		wantN     int
	}{{one, true, 1}, {one, false, 1}, {two, true, 2}, {nil, false, 2}} {
		res, err := sign.SignClaims(ctx, ref, key, s.claims, e.opts)
		if err != nil || res.Added != s.wantAdded || res.Layers != s.wantN {
			t.Fatalf("sign %d (%v): %+v, %v; want added=%v layers=%d", i, s.claims, res, err, s.wantAdded, s.wantN)
		}
	}
	for _, c := range []sign.Claims{one, two, nil} {
		if v, err := sign.VerifyClaims(ctx, ref, key.Public(), c, e.opts); err != nil || v.Verified < 1 {
			t.Errorf("verify %v: %+v, %v; want it signed", c, v, err)
		}
	}
	other := e.push(t, "claims-other", ocitest.Options{Layers: 1, Size: 512, Seed: 6})
	if _, err := sign.SignClaims(ctx, other, key, one, e.opts); err != nil {
		t.Fatal(err)
	}
	_, err := sign.VerifyClaims(ctx, other, key.Public(), two, e.opts)
	if !errors.Is(err, errs.ErrIntegrity) || !strings.Contains(err.Error(), `signed with agentforge.io/cache-key "one", not "two"`) {
		t.Errorf("verify with another claim: %v, want an integrity error naming the claim", err)
	}
	// A claim the signature does not carry is not there, even asked for
	// with an empty value.
	if _, err := sign.VerifyClaims(ctx, other, key.Public(), sign.Claims{"other": ""}, e.opts); !errors.Is(err, errs.ErrIntegrity) {
		t.Errorf("verify with a claim the signature lacks: %v, want an integrity error", err)
	}
}
