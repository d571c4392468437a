package sign

import (
	"context"
	"testing"

	"github.com/agentforge/agentforge/builder/oci/ocitest"
	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/publisher/registrytest"
	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker/reference"
)

// twoRegistries starts two registries with auth and TLS and returns
// options that reach both.
func twoRegistries(t *testing.T) (a, b *registrytest.Registry, regs remote.Registries, o Options) {
	t.Helper()
	a = registrytest.New(t, registrytest.Options{Auth: true, TLS: true})
	b = registrytest.New(t, registrytest.Options{Auth: true, TLS: true})
	regs = remote.Registries{
		AuthFile: registrytest.WriteAuthFile(t, map[string][2]string{a.Host: {a.User, a.Password}, b.Host: {b.User, b.Password}}),
		CAFile:   caBundle(t, a.CAFile, b.CAFile),
	}
	return a, b, regs, Options{Hosts: openHosts(t, regs)}
}

func TestCopyAttachments_ByteIdentical_SecondRunCopiesNothing(t *testing.T) {
	a, b, regs, o := twoRegistries(t)
	ctx := context.Background()
	key, _, _ := keyPair(t, "pass")
	src := push(t, a.Host, "team/agent", regs, ocitest.Options{Layers: 1, Size: 256, Seed: 21})
	dst := push(t, b.Host, "mirror/agent", regs, ocitest.Options{Layers: 1, Size: 256, Seed: 21})
	if src.Digest() != dst.Digest() {
		t.Fatalf("test set-up: digests differ: %s %s", src.Digest(), dst.Digest())
	}
	mustSign(t, src, key, o)
	if _, err := Attest(ctx, src, key, "spdxjson", []byte(testSBOM), o); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(ctx, dst, key.Public(), o); err == nil {
		t.Fatal("test set-up: destination verifies before the copy")
	}

	rep, err := CopyAttachments(ctx, src, reference.TrimNamed(dst), src.Digest(), o)
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
	for _, suffix := range []string{SuffixSignature, SuffixAttestation} {
		if s, d := attachmentDigest(t, o, src, suffix), attachmentDigest(t, o, dst, suffix); s != d {
			t.Errorf(".%s: source manifest %s, destination %s", suffix, s, d)
		}
	}
	if _, err := Verify(ctx, dst, key.Public(), o); err != nil {
		t.Errorf("destination after the copy: %v", err)
	}
	if _, err := VerifyAttestation(ctx, dst, key.Public(), "spdxjson", o); err != nil {
		t.Errorf("destination after the copy: %v", err)
	}

	rep, err = CopyAttachments(ctx, src, reference.TrimNamed(dst), src.Digest(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Copied) != 0 || rep.Unchanged != 2 {
		t.Fatalf("second copy: %+v, want nothing copied, two unchanged", rep)
	}

	// A new signature at the source (another key) travels on the next run,
	// added to the destination's .sig.
	k2, _, _ := keyPair(t, "two")
	mustSign(t, src, k2, o)
	rep, err = CopyAttachments(ctx, src, reference.TrimNamed(dst), src.Digest(), o)
	if err != nil {
		t.Fatal(err)
	}
	// The payload names the same repository and digest: only the new
	// config is sent (the signature itself is an annotation).
	if len(rep.Copied) != 1 || !rep.Copied[0].Merged || rep.Copied[0].Blobs != 1 || rep.Unchanged != 1 {
		t.Fatalf("third copy: %+v, want the new signature added", rep)
	}
	for _, k := range []*PrivateKey{key, k2} {
		if _, err := Verify(ctx, dst, k.Public(), o); err != nil {
			t.Errorf("destination after the third copy: %v", err)
		}
	}

	// The mirror's own signature (key 3, made there only) survives a
	// mirror run: the source's are added to it, none dropped.
	k3, _, _ := keyPair(t, "three")
	mustSign(t, dst, k3, o)
	if _, err := CopyAttachments(ctx, src, reference.TrimNamed(dst), src.Digest(), o); err != nil {
		t.Fatal(err)
	}
	for _, k := range []*PrivateKey{key, k2, k3} {
		if _, err := Verify(ctx, dst, k.Public(), o); err != nil {
			t.Errorf("destination's signatures after a mirror run: %v", err)
		}
	}
}

func attachmentDigest(t *testing.T, o Options, ref reference.Canonical, suffix string) string {
	t.Helper()
	tag, _ := attachmentRef(ref, ref.Digest(), suffix)
	a, err := readAttachment(context.Background(), o, tag)
	if err != nil {
		t.Fatalf("%s: %v", tag, err)
	}
	defer a.Close()
	return digest.FromBytes(a.raw).String()
}
