package sign

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/builder/oci/ocitest"
	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/publisher/registrytest"
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
			res, err := Sign(ctx, ref, key, e.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Added || res.Layers != 1 {
				t.Fatalf("first Sign: %+v, want one new layer", res)
			}
			if want := "sha256-" + ref.Digest().Encoded() + ".sig"; !strings.HasSuffix(res.Attachment, ":"+want) {
				t.Errorf("attachment %s, want tag %s", res.Attachment, want)
			}
			v, err := Verify(ctx, ref, key.Public(), e.opts)
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
		key       *PrivateKey
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
		res, err := Sign(ctx, ref, s.key, e.opts)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if res.Added != s.wantAdded || res.Layers != s.wantN {
			t.Fatalf("step %d: added=%v layers=%d, want %v %d", i, res.Added, res.Layers, s.wantAdded, s.wantN)
		}
	}
	for _, k := range []*PrivateKey{k1, k2} {
		if v, err := Verify(ctx, ref, k.Public(), e.opts); err != nil || v.Verified != 1 || v.Total != 2 {
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
			copyTag(t, e.opts, otherRef, ref, SuffixSignature)
		}, "signed digest mismatch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref := e.push(t, "victim-"+strings.ReplaceAll(tc.name, " ", "-"), ocitest.Options{Layers: 1, Size: 256, Seed: 7})
			tc.prepare(t, ref)
			_, err := Verify(ctx, ref, key.Public(), e.opts)
			if err == nil {
				t.Fatal("Verify accepted it")
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
	_, err := Sign(context.Background(), wrong, key, e.opts)
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
	o := Options{Hosts: openHosts(t, regs)}
	ctx := context.Background()
	key, _, _ := keyPair(t, "")
	a := push(t, up.Host, "lying", regs, ocitest.Options{Layers: 1, Size: 256, Seed: 41})
	b := push(t, up.Host, "lying", regs, ocitest.Options{Layers: 1, Size: 256, Seed: 42})
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
		{"Sign", bIsA, func() error { _, err := Sign(ctx, viaProxy(b), key, o); return err }},
		{"Attest", bIsA, func() error {
			_, err := Attest(ctx, viaProxy(b), key, "spdxjson", []byte(testSBOM), o)
			return err
		}},
		{"Verify", aIsB, func() error { _, err := Verify(ctx, viaProxy(a), key.Public(), o); return err }},
	} {
		proxy.Set(tc.faults)
		err := tc.run()
		var ie *errs.IntegrityError
		if !errors.As(err, &ie) || ie.Check != "digest" {
			t.Errorf("%s through a lying registry: %v, want a digest integrity failure", tc.name, err)
		}
	}
	proxy.Set(registrytest.Faults{})
	tag, _ := attachmentRef(b, b.Digest(), SuffixSignature)
	if _, err := readAttachment(ctx, o, tag); !errors.Is(err, errAbsent) {
		t.Errorf("a signature was written for %s: %v", b, err)
	}
}

func mustSign(t *testing.T, ref reference.Canonical, k Signer, o Options) {
	t.Helper()
	if _, err := Sign(context.Background(), ref, k, o); err != nil {
		t.Fatal(err)
	}
}

// rewriteSignature replaces the only signature of ref by what edit makes of
// its payload and base64 signature.
func rewriteSignature(t *testing.T, o Options, ref reference.Canonical, edit func([]byte, string) ([]byte, string)) {
	t.Helper()
	ctx := context.Background()
	tag, _ := attachmentRef(ref, ref.Digest(), SuffixSignature)
	a, err := readAttachment(ctx, o, tag)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	l := a.manifest.Layers[0]
	payload, err := a.blob(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	payload, sig := edit(payload, l.Annotations[AnnotationSignature])
	if _, err := appendLayer(ctx, o, tag, nil, MediaTypeSimpleSigning, payload, map[string]string{AnnotationSignature: sig}); err != nil {
		t.Fatal(err)
	}
}

// copyTag puts from's attachment manifest, unchanged, under to's tag.
func copyTag(t *testing.T, o Options, from, to reference.Canonical, suffix string) {
	t.Helper()
	ctx := context.Background()
	fromTag, _ := attachmentRef(from, from.Digest(), suffix)
	toTag, _ := attachmentRef(to, to.Digest(), suffix)
	a, err := readAttachment(ctx, o, fromTag)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var m json.RawMessage = a.raw
	w, err := newWriter(ctx, o, toTag)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, d := range append(a.manifest.Layers, a.manifest.Config) {
		data, err := a.blob(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := w.put(ctx, d.MediaType, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.manifest(ctx, m); err != nil {
		t.Fatal(err)
	}
}
