package attachments_test

import (
	"context"
	"testing"

	"github.com/agentforge/agentforge/builder/oci/ocitest"
	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/publisher/attachments"
	"github.com/agentforge/agentforge/publisher/registrytest"
	"github.com/agentforge/agentforge/publisher/sign"
	"github.com/agentforge/agentforge/publisher/sign/signtest"
	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker/reference"
)

// twoRegistries starts two registries with auth and TLS and returns
// options that reach both.
func twoRegistries(t *testing.T) (a, b *registrytest.Registry, regs remote.Registries, o attachments.Options) {
	t.Helper()
	a = registrytest.New(t, registrytest.Options{Auth: true, TLS: true})
	b = registrytest.New(t, registrytest.Options{Auth: true, TLS: true})
	regs = registrytest.Config(t, a, b)
	return a, b, regs, attachments.Options{Hosts: registrytest.Open(t, regs)}
}

func TestCopyAttachments_ByteIdentical_SecondRunCopiesNothing(t *testing.T) {
	a, b, regs, o := twoRegistries(t)
	ctx := context.Background()
	key, _, _ := signtest.KeyPair(t, "pass")
	src := registrytest.Push(t, registrytest.Open(t, regs), a.Host+"/team/agent:latest", ocitest.Options{Layers: 1, Size: 256, Seed: 21})
	dst := registrytest.Push(t, registrytest.Open(t, regs), b.Host+"/mirror/agent:latest", ocitest.Options{Layers: 1, Size: 256, Seed: 21})
	if src.Digest() != dst.Digest() {
		t.Fatalf("test set-up: digests differ: %s %s", src.Digest(), dst.Digest())
	}
	mustSign(t, src, key, o)
	if _, err := sign.Attest(ctx, src, key, "spdxjson", []byte(signtest.SBOM), o); err != nil {
		t.Fatal(err)
	}
	if _, err := sign.Verify(ctx, dst, key.Public(), o); err == nil {
		t.Fatal("test set-up: destination verifies before the copy")
	}

	rep, err := copyAll(ctx, src, reference.TrimNamed(dst), src.Digest(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Copied) != 2 || rep.Unchanged != 0 {
		t.Fatalf("first copy: %+v, want .sig and .att copied", rep)
	}
	for _, c := range rep.Copied {
		if c.Blobs != 2 || c.Bytes == 0 || c.Merged {
			t.Errorf("copied %+v, want two blobs sent", c)
		}
	}
	for _, suffix := range []string{attachments.SuffixSignature, attachments.SuffixAttestation} {
		if s, d := attachmentDigest(t, o, src, suffix), attachmentDigest(t, o, dst, suffix); s != d {
			t.Errorf(".%s: source manifest %s, destination %s", suffix, s, d)
		}
	}
	if _, err := sign.Verify(ctx, dst, key.Public(), o); err != nil {
		t.Errorf("destination after the copy: %v", err)
	}
	if _, err := sign.VerifyAttestation(ctx, dst, key.Public(), "spdxjson", o); err != nil {
		t.Errorf("destination after the copy: %v", err)
	}

	rep, err = copyAll(ctx, src, reference.TrimNamed(dst), src.Digest(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Copied) != 0 || rep.Unchanged != 2 {
		t.Fatalf("second copy: %+v, want nothing copied, two unchanged", rep)
	}

	// A new signature at the source (another key) travels on the next run,
	// added to the destination's .sig.
	k2, _, _ := signtest.KeyPair(t, "two")
	mustSign(t, src, k2, o)
	rep, err = copyAll(ctx, src, reference.TrimNamed(dst), src.Digest(), o)
	if err != nil {
		t.Fatal(err)
	}
	// The payload names the same repository and digest: only the new
	// config is sent (the signature itself is an annotation).
	if len(rep.Copied) != 1 || !rep.Copied[0].Merged || rep.Copied[0].Blobs != 1 || rep.Unchanged != 1 {
		t.Fatalf("third copy: %+v, want the new signature added", rep)
	}
	for _, k := range []*sign.PrivateKey{key, k2} {
		if _, err := sign.Verify(ctx, dst, k.Public(), o); err != nil {
			t.Errorf("destination after the third copy: %v", err)
		}
	}

	// The mirror's own signature (key 3, made there only) survives a
	// mirror run: the source's are added to it, none dropped.
	k3, _, _ := signtest.KeyPair(t, "three")
	mustSign(t, dst, k3, o)
	if _, err := copyAll(ctx, src, reference.TrimNamed(dst), src.Digest(), o); err != nil {
		t.Fatal(err)
	}
	for _, k := range []*sign.PrivateKey{key, k2, k3} {
		if _, err := sign.Verify(ctx, dst, k.Public(), o); err != nil {
			t.Errorf("destination's signatures after a mirror run: %v", err)
		}
	}
}

func attachmentDigest(t *testing.T, o attachments.Options, ref reference.Canonical, suffix string) string {
	t.Helper()
	tag, _ := attachments.TagRef(ref, ref.Digest(), suffix)
	a, err := attachments.Read(context.Background(), o, tag)
	if err != nil {
		t.Fatalf("%s: %v", tag, err)
	}
	defer a.Close()
	return digest.FromBytes(a.Raw).String()
}
