package sign_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentforge/agentforge/builder/oci/ocitest"
	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/publisher/attachments"
	"github.com/agentforge/agentforge/publisher/registrytest"
	"github.com/agentforge/agentforge/publisher/sign"
	"github.com/agentforge/agentforge/publisher/sign/signtest"
	"go.podman.io/image/v5/docker/reference"
)

// layerDigests are the layer digests of ref's attachment with suffix.
func layerDigests(t *testing.T, o sign.Options, ref reference.Canonical, suffix string) []string {
	t.Helper()
	tag, err := attachments.TagRef(ref, ref.Digest(), suffix)
	if err != nil {
		t.Fatal(err)
	}
	a, err := attachments.Read(context.Background(), o, tag)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var out []string
	for _, l := range a.Manifest.Layers {
		out = append(out, l.Digest.String())
	}
	return out
}

// A registry that cannot serve a signature or attestation blob for a
// moment is retried like any blob; one that keeps failing leaves the
// question open: a runtime error ("could not tell", exit 1), never an
// integrity failure (exit 3 says the signature is bad or missing). The
// same holds for every check that reads such a blob: the signature, the
// SBOM attestation, and CheckImage (verify --key, register
// --require-signature).
func TestVerify_UnreadableBlobIsNotAVerdict(t *testing.T) {
	up := registrytest.New(t, registrytest.Options{})
	proxy := registrytest.NewProxy(t, up)
	o := sign.Options{Hosts: registrytest.Open(t, remote.Registries{Insecure: []string{proxy.Host}, Retry: remote.RetryPolicy{Delay: 5 * time.Millisecond}})}
	ctx := context.Background()
	key, _, _ := keyPair(t, "")
	ref := registrytest.Push(t, o.Hosts, proxy.Host+"/flaky/agent:latest", ocitest.Options{Layers: 1, Size: 256, Seed: 61})
	if _, err := sign.SignAll(ctx, []reference.Canonical{ref}, key, []byte(signtest.SBOM), o); err != nil {
		t.Fatal(err)
	}
	sigBlob := layerDigests(t, o, ref, attachments.SuffixSignature)[0]
	attBlob := layerDigests(t, o, ref, attachments.SuffixAttestation)[0]
	verify := func() error { _, err := sign.Verify(ctx, ref, key.Public(), o); return err }
	attest := func() error { _, err := sign.VerifyAttestation(ctx, ref, key.Public(), "spdxjson", o); return err }
	check := func() error { _, err := sign.CheckImage(ctx, ref, key.Public(), sign.SBOMIfPresent, o); return err }
	for _, tc := range []struct {
		name  string
		blob  string
		times int // 503s before the blob is served; -1: never served
		run   func() error
	}{
		{"signature, one 503", sigBlob, 1, verify},
		{"signature, three 503s", sigBlob, 3, verify},
		{"signature, always 503", sigBlob, -1, verify},
		{"attestation, one 503", attBlob, 1, attest},
		{"attestation, always 503", attBlob, -1, attest},
		{"check, signature always 503", sigBlob, -1, check},
		{"check, attestation always 503", attBlob, -1, check},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy.Set(registrytest.Faults{UnavailableBlobs: map[string]int{tc.blob: tc.times}})
			before := proxy.Unavailable()
			err := tc.run()
			if proxy.Unavailable() == before {
				t.Fatal("the fault was not met: the test checks nothing")
			}
			if tc.times > 0 {
				if err != nil {
					t.Fatalf("after %d 503s: %v, want the blob read again and verified", tc.times, err)
				}
				return
			}
			if err == nil {
				t.Fatal("verified without reading the blob")
			}
			if errors.Is(err, errs.ErrIntegrity) || sign.IsMissing(err) {
				t.Errorf("a blob that could not be read is reported as an integrity failure (exit 3): %v", err)
			}
			if !strings.Contains(err.Error(), "could not") || !strings.Contains(err.Error(), "503") {
				t.Errorf("the error does not say the check could not be made, and why: %v", err)
			}
		})
	}
}

// Signed means there, read back and verified: two signers appending to
// one .sig at once (registries have no compare-and-swap on tags) end
// either with both signatures there, each reported signed, or with the
// signer whose layer was lost told so, never reported signed.
func TestSign_ConcurrentSigners(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		// meanwhile runs, through o, right after the first signer's .sig
		// was written and before the registry's answer reaches it.
		meanwhile func(t *testing.T, o sign.Options, ref reference.Canonical)
		lost      bool
	}{
		{"the other appends to it", func(t *testing.T, o sign.Options, ref reference.Canonical) {
			other, _, _ := keyPair(t, "other")
			if _, err := sign.Sign(ctx, ref, other, o); err != nil {
				t.Error(err)
			}
		}, false},
		{"the other overwrites it", func(t *testing.T, o sign.Options, ref reference.Canonical) {
			other, _, _ := keyPair(t, "other")
			elsewhere := registrytest.Push(t, o.Hosts, reference.Domain(ref)+"/elsewhere:1", ocitest.Options{Layers: 1, Size: 256, Seed: 64})
			if _, err := sign.Sign(ctx, elsewhere, other, o); err != nil {
				t.Error(err)
			}
			copyTag(t, o, elsewhere, ref, attachments.SuffixSignature)
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := registrytest.New(t, registrytest.Options{})
			proxy := registrytest.NewProxy(t, up)
			hosts := registrytest.Open(t, remote.Registries{Insecure: []string{proxy.Host, up.Host}, Retry: remote.RetryPolicy{Delay: 5 * time.Millisecond}})
			o := sign.Options{Hosts: hosts}
			ref := registrytest.Push(t, hosts, up.Host+"/agents/tool:1", ocitest.Options{Layers: 1, Size: 256, Seed: 63})
			viaProxy, _ := reference.WithDigest(mustNamedRef(t, proxy.Host+"/agents/tool"), ref.Digest())
			var once sync.Once
			proxy.Set(registrytest.Faults{OnResponse: func(e registrytest.Entry) {
				if e.Method == "PUT" && strings.HasSuffix(e.Path, ".sig") && e.Status == 201 {
					once.Do(func() { tc.meanwhile(t, o, ref) })
				}
			}})
			key, _, _ := keyPair(t, "first")
			_, err := sign.Sign(ctx, viaProxy, key, o)
			if tc.lost {
				if err == nil || !strings.Contains(err.Error(), "does not serve") {
					t.Errorf("the first signer's layer was lost, and it got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("the first signer: %v", err)
			}
			if _, err := sign.Verify(ctx, ref, key.Public(), o); err != nil {
				t.Errorf("the first signature: %v", err)
			}
		})
	}
}

func mustNamedRef(t *testing.T, s string) reference.Named {
	t.Helper()
	n, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
