package attachments_test

import (
	"context"
	"errors"
	"fmt"
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

// A .sig with several signatures over one payload names that blob several
// times: it is sent once and counted once. And a blob the destination has
// already is not read from the source at all, so a source that can no
// longer serve it does not stop the copy.
func TestCopyAttachments_SharedAndPresentBlobs(t *testing.T) {
	a := registrytest.New(t, registrytest.Options{})
	b := registrytest.New(t, registrytest.Options{})
	proxy := registrytest.NewProxy(t, a)
	o := attachments.Options{Hosts: registrytest.Hosts(t, a, b, proxy)}
	ctx := context.Background()
	src := registrytest.Push(t, o.Hosts, a.Host+"/team/agent:latest", ocitest.Options{Layers: 1, Size: 256, Seed: 23})
	for _, pass := range []string{"one", "two", "three"} {
		k, _, _ := signtest.KeyPair(t, pass)
		mustSign(t, src, k, o)
	}
	tag, _ := attachments.TagRef(src, src.Digest(), "sig")
	sig, err := attachments.Read(ctx, o, tag)
	if err != nil {
		t.Fatal(err)
	}
	distinct := map[digest.Digest]int64{sig.Manifest.Config.Digest: sig.Manifest.Config.Size}
	for _, l := range sig.Manifest.Layers {
		distinct[l.Digest] = l.Size
	}
	var bytes int64
	for _, n := range distinct {
		bytes += n
	}
	if len(sig.Manifest.Layers) != 3 || len(distinct) != 2 {
		t.Fatalf("test set-up: %d layers, %d distinct blobs; want 3 signatures over one payload", len(sig.Manifest.Layers), len(distinct))
	}
	for i := range 3 {
		dst, _ := reference.ParseNormalizedNamed(fmt.Sprintf("%s/mirror%d/agent", b.Host, i))
		rep, err := copyAll(ctx, src, dst, src.Digest(), o)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Copied) != 1 || rep.Copied[0].Blobs != 2 || rep.Copied[0].Bytes != bytes {
			t.Fatalf("run %d: %+v, want the 2 distinct blobs (%d bytes) sent once each", i, rep.Copied, bytes)
		}
	}

	// A destination repository that has the .sig's blobs but not its
	// manifest (an interrupted earlier copy), and a source (through the
	// proxy) that can no longer serve them: the copy reads none of them
	// and completes.
	dst, _ := reference.ParseNormalizedNamed(b.Host + "/present/agent")
	dtag, _ := attachments.TagRef(dst, src.Digest(), "sig")
	w, err := attachments.NewWriter(ctx, o, dtag)
	if err != nil {
		t.Fatal(err)
	}
	unavailable := map[string]int{}
	for _, desc := range append(sig.Manifest.Layers, sig.Manifest.Config) {
		data, err := sig.Blob(ctx, desc)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := w.Put(ctx, desc.MediaType, data); err != nil {
			t.Fatal(err)
		}
		unavailable[desc.Digest.String()] = -1
	}
	w.Close()
	proxy.Set(registrytest.Faults{UnavailableBlobs: unavailable})
	viaProxy, _ := reference.ParseNormalizedNamed(proxy.Host + "/team/agent")
	rep, err := copyAll(ctx, viaProxy, dst, src.Digest(), o)
	if err != nil {
		t.Fatalf("a copy whose blobs the destination has read them from the source: %v", err)
	}
	if len(rep.Copied) != 1 || rep.Copied[0].Blobs != 0 || proxy.Unavailable() != 0 {
		t.Errorf("%+v, %d blob reads refused: want the manifest only, no blob read", rep.Copied, proxy.Unavailable())
	}
}

// A merge's dry run counts the blobs the real merge sends: the layers the
// destination lacks and the config each append writes.
func TestCopyAttachments_MergeDryRunCountsAsItSends(t *testing.T) {
	a := registrytest.New(t, registrytest.Options{})
	b := registrytest.New(t, registrytest.Options{})
	o := attachments.Options{Hosts: registrytest.Hosts(t, a, b)}
	ctx := context.Background()
	src := registrytest.Push(t, o.Hosts, a.Host+"/team/agent:latest", ocitest.Options{Layers: 1, Size: 256, Seed: 31})
	dst := registrytest.Push(t, o.Hosts, b.Host+"/mirror/agent:latest", ocitest.Options{Layers: 1, Size: 256, Seed: 31})
	for _, p := range []string{"one", "two"} {
		k, _, _ := signtest.KeyPair(t, p)
		mustSign(t, src, k, o)
	}
	k3, _, _ := signtest.KeyPair(t, "three")
	mustSign(t, dst, k3, o) // the mirror's own: the source's are merged in
	plan, err := planAll(ctx, src, reference.TrimNamed(dst), src.Digest(), o)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := copyAll(ctx, src, reference.TrimNamed(dst), src.Digest(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Copied) != 1 || len(rep.Copied) != 1 || !rep.Copied[0].Merged || plan.Copied[0].Blobs != rep.Copied[0].Blobs {
		t.Errorf("dry run %+v, real run %+v: want one merge with the same blob count", plan.Copied, rep.Copied)
	}
}

// A read-back judges what the registry serves, read and hashed, not a
// HEAD's Docker-Content-Digest: a cache in front of the registry (or a
// registry that lies) can answer the HEAD of a signature tag with the
// digest just written while a pull gets another manifest, and the
// signature would be reported written while nobody can read it.
func TestReadBack_JudgesTheServedBytesNotAHead(t *testing.T) {
	reg := registrytest.New(t, registrytest.Options{})
	proxy := registrytest.NewProxy(t, reg)
	o := attachments.Options{Hosts: registrytest.Hosts(t, reg, proxy)}
	old := registrytest.Push(t, o.Hosts, reg.Host+"/team/agent:sha256-x.sig", ocitest.Options{Layers: 1, Seed: 51})
	ours := registrytest.Push(t, o.Hosts, reg.Host+"/team/agent:other", ocitest.Options{Layers: 1, Seed: 52})
	ref, err := reference.ParseNormalizedNamed(proxy.Host + "/team/agent:sha256-x.sig")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		head   map[string]string // the proxy's lying HEADs
		want   digest.Digest
		serves digest.Digest // "" for no error
	}{
		{"the tag serves what was written", nil, old.Digest(), ""},
		{"the tag serves another manifest", nil, ours.Digest(), old.Digest()},
		{"a HEAD says what was written, a pull gets another", map[string]string{"sha256-x.sig": ours.Digest().String()}, ours.Digest(), old.Digest()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy.Set(registrytest.Faults{HeadDigest: tc.head})
			err := attachments.ReadBack(context.Background(), o.Uncached(), ref, tc.want)
			var replaced *attachments.ReplacedError
			switch {
			case tc.serves == "" && err != nil:
				t.Errorf("ReadBack: %v, want no error", err)
			case tc.serves != "" && (!errors.As(err, &replaced) || replaced.Serves != tc.serves):
				t.Errorf("ReadBack: %v, want a ReplacedError serving %s", err, tc.serves)
			}
		})
	}
}
