package publisher

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/builder/oci/ocitest"
	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/builder/sbom"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/publisher/attachments"
	"github.com/agentforge/agentforge/publisher/registrytest"
	"github.com/agentforge/agentforge/publisher/sign"
	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/types"
)

const testSBOM = `{"spdxVersion":"SPDX-2.3","SPDXID":"SPDXRef-DOCUMENT","name":"tool"}`

func testKey(t *testing.T) *sign.PrivateKey {
	t.Helper()
	priv, _, err := sign.GenerateKeyPair([]byte("p"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := sign.ParsePrivateKey(priv, []byte("p"))
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// manifestPuts lists, in order, the references (digest or tag) under which
// manifests were written to repo through the proxy.
func manifestPuts(log []registrytest.Entry, repo string) []string {
	prefix := "/v2/" + repo + "/manifests/"
	var out []string
	for _, e := range log {
		if e.Method == "PUT" && strings.HasPrefix(e.Path, prefix) && e.Status < 300 {
			out = append(out, strings.TrimPrefix(e.Path, prefix))
		}
	}
	return out
}

func attachmentTag(t *testing.T, d digest.Digest, suffix string) string {
	t.Helper()
	tag, err := attachments.AttachmentTag(d, suffix)
	if err != nil {
		t.Fatal(err)
	}
	return tag
}

func canonicalAt(t *testing.T, repo string, d digest.Digest) reference.Canonical {
	t.Helper()
	c, err := reference.WithDigest(mustNamed(t, repo), d)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// With a signer, every destination gets its signature (and SBOM
// attestation) after the manifest by digest and its verification, and
// before the tag: the registry sees the .sig and .att manifests written
// before the tag, and, for an index, every platform image's before the
// index's.
func TestPublish_SignsBeforeTagging(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		// publish publishes to repo:1 on host with opts and returns the
		// digest and the platform images' digests.
		publish func(t *testing.T, reg *registrytest.Registry, host, repo string, opts Options) (digest.Digest, []digest.Digest)
		// platformSBOM is attached to the linux/arm64 image.
		platformSBOM bool
	}{
		{name: "image", publish: func(t *testing.T, _ *registrytest.Registry, host, repo string, opts Options) (digest.Digest, []digest.Digest) {
			src := ocitest.Layout(t, t.TempDir(), "1", ocitest.Options{Layers: 2, Size: 4 << 10, Seed: 11})
			rep, err := Publish(ctx, src, []Destination{dest(t, host+"/"+repo+":1")}, opts)
			if err != nil {
				t.Fatal(err)
			}
			return digest.Digest(rep.Digest), nil
		}},
		{name: "oci index", platformSBOM: true, publish: func(t *testing.T, _ *registrytest.Registry, host, repo string, opts Options) (digest.Digest, []digest.Digest) {
			src := ocitest.Layout(t, t.TempDir(), "1", ocitest.Options{Layers: 1, Size: 4 << 10, Seed: 12, Platforms: []string{"linux/amd64", "linux/arm64"}})
			rep, err := Publish(ctx, src, []Destination{dest(t, host+"/"+repo+":1")}, opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Signatures) != 1 || rep.Signatures[0].Signature == nil {
				t.Fatalf("signatures %+v", rep.Signatures)
			}
			if ps := rep.PlatformSignatures; len(ps) != 2 || ps[0].Signature == nil || ps[1].Signature == nil || ps[1].SBOM == nil {
				t.Errorf("platform signatures %+v, want both platforms signed, linux/arm64 with its SBOM", ps)
			}
			return digest.Digest(rep.Digest), childDigests(t, host, repo, rep.Digest, opts.Hosts)
		}},
		{name: "index of published platforms", platformSBOM: true, publish: func(t *testing.T, reg *registrytest.Registry, host, repo string, opts Options) (digest.Digest, []digest.Digest) {
			// Published unsigned and untagged where the index goes, as
			// PublishList does, straight to the registry.
			amd := publishPlatform(t, reg, repo, "linux/amd64", 13)
			arm := publishPlatform(t, reg, repo, "linux/arm64", 14)
			rep, err := Index(ctx, []types.ImageReference{arm, amd}, []Destination{dest(t, host+"/"+repo+":1")}, opts)
			if err != nil {
				t.Fatal(err)
			}
			var children []digest.Digest
			for _, m := range rep.Manifests {
				if len(m.Signatures) != 1 || m.Signatures[0].Signature == nil || !m.Signatures[0].Signature.Added {
					t.Errorf("%s: signatures %+v", m.Platform, m.Signatures)
				}
				if sbom := m.Signatures[0].SBOM; (m.Platform == "linux/arm64") != (sbom != nil) {
					t.Errorf("%s: SBOM %+v, want one for linux/arm64 only", m.Platform, sbom)
				}
				children = append(children, digest.Digest(m.Digest))
			}
			return digest.Digest(rep.Digest), children
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := registrytest.New(t, registrytest.Options{})
			proxy := registrytest.NewProxy(t, reg)
			regs := remote.Registries{Insecure: []string{reg.Host, proxy.Host}}
			key := testKey(t)
			signing := &Signing{Signer: key, SBOM: []byte(testSBOM)}
			if tc.platformSBOM {
				signing.PlatformSBOMs = map[string][]byte{"linux/arm64": []byte(testSBOM)}
			}
			const repo = "agents/tool"
			d, children := tc.publish(t, reg, proxy.Host, repo, Options{Hosts: registrytest.Open(t, regs), WorkDir: t.TempDir(), Sign: signing})

			puts := manifestPuts(proxy.Log(), repo)
			at := func(ref string) int {
				i := slices.Index(puts, ref)
				if i < 0 {
					t.Fatalf("%s was never written; manifests written: %v", ref, puts)
				}
				return i
			}
			sig, att, tag := at(attachmentTag(t, d, "sig")), at(attachmentTag(t, d, "att")), at("1")
			if byDigest := at(d.String()); !(byDigest < sig && sig < att && att < tag) {
				t.Errorf("order of manifest writes %v: want %s, its .sig, its .att, then the tag", puts, d)
			}
			if tag != len(puts)-1 || slices.Index(puts[tag+1:], "1") >= 0 {
				t.Errorf("the tag is not the last write: %v", puts)
			}
			for _, c := range children {
				if cs := at(attachmentTag(t, c, "sig")); cs > sig {
					t.Errorf("platform image %s signed after the index: %v", c, puts)
				}
			}
			// Verified (every blob of the image downloaded) before anything
			// is signed. (Signing reads its own signature's blobs back
			// afterwards: those are not the image's.)
			imageBlobs := map[string]bool{}
			for _, dg := range append([]digest.Digest{d}, children...) {
				raw, err := oci.Manifest(ctx, mustRef(t, "docker://"+reg.Host+"/"+repo+"@"+dg.String()), registrytest.Open(t, regs).For(reg.Host))
				if err != nil {
					t.Fatal(err)
				}
				if manifest.MIMETypeIsMultiImage(manifest.GuessMIMEType(raw)) {
					continue
				}
				m, _ := manifest.FromBlob(raw, manifest.GuessMIMEType(raw))
				imageBlobs[m.ConfigInfo().Digest.String()] = true
				for _, l := range layerDigests(t, raw) {
					imageBlobs[l] = true
				}
			}
			var firstSig, lastBlobGet time.Time
			for _, e := range proxy.Log() {
				if e.Method == "PUT" && strings.HasSuffix(e.Path, ".sig") && firstSig.IsZero() {
					firstSig = e.At
				}
				if _, b, ok := strings.Cut(e.Path, "/blobs/"); ok && e.Method == "GET" && imageBlobs[b] {
					lastBlobGet = e.At
				}
			}
			if lastBlobGet.IsZero() || !lastBlobGet.Before(firstSig) {
				t.Errorf("blob downloaded (verification) at %v, first signature at %v", lastBlobGet, firstSig)
			}

			// What was written verifies with the key.
			hosts, err := regs.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			so := sign.Options{Hosts: hosts}
			for _, dg := range append([]digest.Digest{d}, children...) {
				if _, err := sign.Verify(ctx, canonicalAt(t, reg.Host+"/"+repo, dg), key.Verifier(), so); err != nil {
					t.Errorf("%s: %v", dg, err)
				}
			}
			if _, err := sign.VerifyAttestation(ctx, canonicalAt(t, reg.Host+"/"+repo, d), key.Verifier(), "spdxjson", so); err != nil {
				t.Errorf("SBOM of %s: %v", d, err)
			}
		})
	}
}

// childDigests are the platform images of the index repo@d on host.
func childDigests(t *testing.T, host, repo, d string, hosts *remote.Hosts) []digest.Digest {
	t.Helper()
	raw, err := oci.Manifest(context.Background(), mustRef(t, "docker://"+host+"/"+repo+"@"+d), hosts.For(host))
	if err != nil {
		t.Fatal(err)
	}
	list, err := manifest.ListFromBlob(raw, manifest.GuessMIMEType(raw))
	if err != nil || len(list.Instances()) != 2 {
		t.Fatalf("index %s: %v %s", d, err, raw)
	}
	return list.Instances()
}

// refusingSigner signs like its key, except payloads that name a
// repository on host: a signing service that refuses one of them.
type refusingSigner struct {
	*sign.PrivateKey
	host string
}

func (s refusingSigner) SignMessage(ctx context.Context, msg []byte) ([]byte, error) {
	if bytes.Contains(msg, []byte(s.host+"/")) {
		return nil, errors.New("signing service refused")
	}
	return s.PrivateKey.SignMessage(ctx, msg)
}

// When signing fails on one destination, that destination gets no tag
// (its image stays reachable only by digest) and fails with the error's
// class kept; the other destination is signed and tagged.
func TestPublish_SigningFailureLeavesThatDestinationUntagged(t *testing.T) {
	ctx := context.Background()
	// afterManifest arms fault once the image's manifest is written by
	// digest through the proxy.
	afterManifest := func(proxy *registrytest.Proxy, fault registrytest.Faults) {
		proxy.Set(registrytest.Faults{OnResponse: func(e registrytest.Entry) {
			if _, dg, ok := strings.Cut(e.Path, "/manifests/sha256:"); ok && e.Method == "PUT" && e.Status == 201 {
				f := fault
				if f.SwapManifest != nil {
					f.SwapManifest = map[string]string{"sha256:" + dg: f.SwapManifest["digest"]}
				}
				proxy.Set(f)
			}
		}})
	}
	for _, tc := range []struct {
		name          string
		arm           func(proxy *registrytest.Proxy)
		refuse        bool
		sbom          bool
		wantIntegrity bool
		want          string
	}{
		{name: "the signer refuses", refuse: true, want: "signing service refused"},
		{name: "the signature upload fails", want: "500", arm: func(proxy *registrytest.Proxy) {
			afterManifest(proxy, registrytest.Faults{FailEveryNthUpload: 1})
		}},
		// The registry serves other bytes for the digest once it was
		// written (not verified here: --verify none): nothing is signed
		// that does not hash to the digest, and that is an integrity
		// failure (exit 3).
		{name: "the registry lies to the signer", wantIntegrity: true, want: "integrity", arm: func(proxy *registrytest.Proxy) {
			afterManifest(proxy, registrytest.Faults{SwapManifest: map[string]string{"digest": "other"}})
		}},
		// Signed before tagged means read back and verified before the
		// tag: a registry that acknowledges what it then does not serve
		// (the signature, its payload, the attestation) gets no tag.
		{name: "the registry drops the signature", want: "does not serve", arm: func(proxy *registrytest.Proxy) {
			afterManifest(proxy, registrytest.Faults{AcceptWithoutStoring: []string{".sig?"}})
		}},
		{name: "the registry drops the signature's payload", want: "does not", arm: func(proxy *registrytest.Proxy) {
			afterManifest(proxy, registrytest.Faults{AcceptWithoutStoring: []string{"/blobs/uploads/"}})
		}},
		{name: "the registry drops the attestation", sbom: true, want: "does not serve", arm: func(proxy *registrytest.Proxy) {
			afterManifest(proxy, registrytest.Faults{AcceptWithoutStoring: []string{".att?"}})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			good := registrytest.New(t, registrytest.Options{Auth: true, TLS: true})
			bad := registrytest.New(t, registrytest.Options{})
			proxy := registrytest.NewProxy(t, bad)
			regs := remote.Registries{Insecure: []string{bad.Host, proxy.Host}, CAFile: good.CAFile, AuthFile: good.AuthFile,
				Retry: remote.RetryPolicy{Attempts: 2, Delay: 10 * time.Millisecond}}
			// Another image under bad's tag "other": what the lying
			// registry serves instead.
			other := ocitest.Layout(t, t.TempDir(), "other", ocitest.Options{Layers: 1, Size: 1024, Seed: 99})
			if _, err := Publish(ctx, other, []Destination{dest(t, bad.Host+"/agents/tool:other")}, Options{Hosts: registrytest.Open(t, regs), WorkDir: t.TempDir()}); err != nil {
				t.Fatal(err)
			}
			if tc.arm != nil {
				tc.arm(proxy)
			}
			key := testKey(t)
			opts := Options{Hosts: registrytest.Open(t, regs), WorkDir: t.TempDir(), Sign: &Signing{Signer: key}}
			if tc.sbom {
				opts.Sign.SBOM = []byte(testSBOM)
			}
			if tc.refuse {
				opts.Sign.Signer = refusingSigner{PrivateKey: key, host: proxy.Host}
			}
			if tc.wantIntegrity {
				opts.Verify = VerifyNone
			}
			src := ocitest.Layout(t, t.TempDir(), "1", ocitest.Options{Layers: 2, Size: 4 << 10, Seed: 21})
			rep, err := Publish(ctx, src, []Destination{dest(t, good.Host+"/agents/tool:1"), dest(t, proxy.Host+"/agents/tool:1")}, opts)
			if err == nil || !strings.Contains(err.Error(), proxy.Host+"/agents/tool:1") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error naming %s and %q, got %v", proxy.Host+"/agents/tool:1", tc.want, err)
			}
			if errors.Is(err, errs.ErrIntegrity) != tc.wantIntegrity {
				t.Errorf("integrity failure: %t, want %t (%v)", errors.Is(err, errs.ErrIntegrity), tc.wantIntegrity, err)
			}
			if rep == nil || len(rep.Signatures) != 2 || rep.Destinations[0].Error != "" || rep.Destinations[1].Error == "" {
				t.Fatalf("report %+v", rep)
			}
			if s := rep.Signatures[0]; s.Signature == nil || !s.Signature.Added || s.Error != "" {
				t.Errorf("the good destination's signature: %+v", s)
			}
			if s := rep.Signatures[1]; s.Error == "" || s.SBOM != nil || s.Signature != nil && !tc.sbom {
				t.Errorf("the failed destination's signature: %+v", s)
			}
			hosts, err := regs.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if got := tagDigest(t, opts, good.Host, "agents/tool:1"); got != rep.Digest {
				t.Errorf("the good destination's tag names %q, want %s", got, rep.Digest)
			}
			if _, err := sign.Verify(ctx, canonicalAt(t, good.Host+"/agents/tool", digest.Digest(rep.Digest)), key.Verifier(), sign.Options{Hosts: hosts}); err != nil {
				t.Errorf("the good destination: %v", err)
			}
			// Asked of the registry itself, not the proxy: no tag; the
			// image is there by digest.
			if got := tagDigest(t, opts, bad.Host, "agents/tool:1"); got != "" {
				t.Errorf("the failed destination was tagged: %s", got)
			}
			if _, err := oci.Manifest(ctx, mustRef(t, "docker://"+bad.Host+"/agents/tool@"+rep.Digest), hosts.For(bad.Host)); err != nil {
				t.Errorf("the failed destination's image by digest: %v", err)
			}
		})
	}
}

// Bad signing input is refused before anything is pushed.
func TestPublish_BadSigningInputChangesNothing(t *testing.T) {
	reg := registrytest.New(t, registrytest.Options{})
	proxy := registrytest.NewProxy(t, reg)
	src := ocitest.Layout(t, t.TempDir(), "1", ocitest.Options{Layers: 1, Size: 1024, Seed: 5})
	for name, s := range map[string]*Signing{
		"no signer":         {},
		"SBOM not JSON":     {Signer: testKey(t), SBOM: []byte("SPDXVersion: SPDX-2.3")},
		"platform SBOM bad": {Signer: testKey(t), PlatformSBOMs: map[string][]byte{"linux/arm64": []byte("{")}},
	} {
		opts := Options{Hosts: registrytest.Open(t, remote.Registries{Insecure: []string{proxy.Host}}), WorkDir: t.TempDir(), Sign: s}
		if _, err := Publish(context.Background(), src, []Destination{dest(t, proxy.Host+"/agents/tool:1")}, opts); !errors.Is(err, errs.ErrInput) {
			t.Errorf("%s: want bad input, got %v", name, err)
		}
	}
	if n := len(proxy.Log()); n != 0 {
		t.Errorf("%d requests reached the registry", n)
	}
}

// agentforgeSBOM is an SBOM as builder/sbom writes it for the image with
// the (local) manifest digest local.
func agentforgeSBOM(t *testing.T, local digest.Digest, tool string) []byte {
	t.Helper()
	doc := &sbom.Document{
		SPDXVersion: sbom.SPDXVersion, DataLicense: sbom.DataLicense, SPDXID: sbom.DocumentID, Name: "tool-1",
		DocumentNamespace: "https://agentforge.invalid/spdx/tool/" + local.Encoded(),
		CreationInfo:      sbom.CreationInfo{Created: "2023-11-14T22:13:20Z", Creators: []string{"Tool: " + tool}},
		Packages: []sbom.Package{{Name: "tool", SPDXID: "SPDXRef-Image-tool", VersionInfo: "1", DownloadLocation: sbom.NoAssertion,
			LicenseConcluded: sbom.NoAssertion, LicenseDeclared: sbom.NoAssertion, CopyrightText: sbom.NoAssertion,
			Checksums:             []sbom.Checksum{{Algorithm: "SHA256", ChecksumValue: local.Encoded()}},
			ExternalRefs:          []sbom.ExternalRef{{ReferenceCategory: "PACKAGE-MANAGER", ReferenceType: "purl", ReferenceLocator: "pkg:oci/tool@sha256%3A" + local.Encoded()}},
			PrimaryPackagePurpose: sbom.PurposeContainer, Comment: "manifest digest " + local.String() + ", 2 layers"}},
		Relationships: []sbom.Relationship{{SPDXElementID: sbom.DocumentID, RelationshipType: sbom.RelDescribes, RelatedSPDXElement: "SPDXRef-Image-tool"}},
	}
	raw, err := doc.JSON()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// compactJSON is raw without indentation, its keys sorted.
func compactJSON(t *testing.T, raw []byte) []byte {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// End to end: the attestation on the registry carries the SBOM rebound to
// the registry's digest (publishing compressed the layers).
func TestPublish_AttestsSBOMForThePublishedDigest(t *testing.T) {
	ctx := context.Background()
	reg := registrytest.New(t, registrytest.Options{})
	regs := remote.Registries{Insecure: []string{reg.Host}}
	src := ocitest.Layout(t, t.TempDir(), "1", ocitest.Options{Layers: 1, Size: 4 << 10, Seed: 13, Uncompressed: true})
	localRaw, err := oci.Manifest(ctx, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	local := digest.FromBytes(localRaw)
	key := testKey(t)
	rep, err := Publish(ctx, src, []Destination{dest(t, reg.Host+"/agents/tool:1")}, Options{Hosts: registrytest.Open(t, regs), WorkDir: t.TempDir(),
		Sign: &Signing{Signer: key, SBOM: agentforgeSBOM(t, local, "agentforge")}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Digest == local.String() {
		t.Fatal("test set-up: the published digest is the local one; nothing to rebind")
	}
	hosts, err := regs.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	v, err := sign.VerifyAttestation(ctx, canonicalAt(t, reg.Host+"/agents/tool", digest.Digest(rep.Digest)), key.Verifier(), "spdxjson", sign.Options{Hosts: hosts})
	if err != nil {
		t.Fatal(err)
	}
	var doc sbom.Document
	if err := json.Unmarshal(v.Predicate, &doc); err != nil {
		t.Fatal(err)
	}
	if got := doc.Packages[0].Checksums[0].ChecksumValue; "sha256:"+got != rep.Digest {
		t.Errorf("the attested SBOM names %s, the registry serves %s", got, rep.Digest)
	}
}

// An SBOM agentforge made for another image, one image's SBOM on an
// index, or an SBOM for a platform the index lacks is refused before
// anything reaches a registry (exit 2): attested, it would pass another
// image's packages off as this one's. A platform spelled another way
// (linux/arm64/v8) is the same platform.
func TestPublish_SBOMMustDescribeWhatIsPublished(t *testing.T) {
	ctx := context.Background()
	single := ocitest.Layout(t, t.TempDir(), "1", ocitest.Options{Layers: 1, Size: 4 << 10, Seed: 14})
	index := ocitest.Layout(t, t.TempDir(), "1", ocitest.Options{Layers: 1, Size: 4 << 10, Seed: 15, Uncompressed: true, Platforms: []string{"linux/amd64", "linux/arm64"}})
	singleRaw, err := oci.Manifest(ctx, single, nil)
	if err != nil {
		t.Fatal(err)
	}
	indexRaw, err := oci.Manifest(ctx, index, nil)
	if err != nil {
		t.Fatal(err)
	}
	children, err := platformDigests(indexRaw)
	if err != nil || len(children) != 2 {
		t.Fatalf("test set-up: %v %v", children, err)
	}
	key := testKey(t)
	for _, tc := range []struct {
		name string
		src  types.ImageReference
		sign *Signing
		want string // in the error; "" for a publish that goes through
	}{
		{"another image's SBOM", single, &Signing{Signer: key, SBOM: agentforgeSBOM(t, digest.FromString("another image"), "agentforge")}, "not " + digest.FromBytes(singleRaw).String()},
		{"one image's SBOM on an index", index, &Signing{Signer: key, SBOM: agentforgeSBOM(t, children["linux/arm64"], "agentforge")}, "multi-platform index"},
		{"a platform the index lacks", index, &Signing{Signer: key, PlatformSBOMs: map[string][]byte{"linux/s390x": []byte(testSBOM)}}, "not among the platforms"},
		{"another platform's SBOM", index, &Signing{Signer: key, PlatformSBOMs: map[string][]byte{"linux/amd64": agentforgeSBOM(t, children["linux/arm64"], "agentforge")}}, "not that platform's"},
		{"a platform on a single image", single, &Signing{Signer: key, PlatformSBOMs: map[string][]byte{"linux/amd64": []byte(testSBOM)}}, "not among the platforms"},
		{"arm64/v8 is arm64", index, &Signing{Signer: key, PlatformSBOMs: map[string][]byte{"linux/arm64/v8": agentforgeSBOM(t, children["linux/arm64"], "agentforge")}}, ""},
		// Another image's SBOM re-encoded (what jq, an editor or another
		// tool does to a file) is still another image's.
		{"another image's SBOM, compacted", single, &Signing{Signer: key, SBOM: compactJSON(t, agentforgeSBOM(t, digest.FromString("another image"), "agentforge"))}, "not " + digest.FromBytes(singleRaw).String()},
		{"another image's SBOM, escaped", single, &Signing{Signer: key, SBOM: []byte(strings.ReplaceAll(string(agentforgeSBOM(t, digest.FromString("another image"), "agentforge")), `"DESCRIBES"`, `"\u0044ESCRIBES"`))}, "not " + digest.FromBytes(singleRaw).String()},
		{"another platform's SBOM, CRLF", index, &Signing{Signer: key, PlatformSBOMs: map[string][]byte{"linux/amd64": []byte(strings.ReplaceAll(string(agentforgeSBOM(t, children["linux/arm64"], "agentforge-0.6.0")), "\n", "\r\n"))}}, "not that platform's"},
		{"one image's SBOM on an index, with a field added", index, &Signing{Signer: key, SBOM: []byte(strings.Replace(string(agentforgeSBOM(t, children["linux/arm64"], "agentforge")), "{", `{"x-note": "reviewed",`, 1))}, "multi-platform index"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := registrytest.New(t, registrytest.Options{})
			proxy := registrytest.NewProxy(t, reg)
			regs := remote.Registries{Insecure: []string{proxy.Host}}
			rep, err := Publish(ctx, tc.src, []Destination{dest(t, proxy.Host+"/agents/tool:1")}, Options{Hosts: registrytest.Open(t, regs), WorkDir: t.TempDir(), Sign: tc.sign})
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := rep.Destinations[0].children; len(got) != 2 || got[1].SBOM == nil || got[0].SBOM != nil {
					t.Errorf("platform signatures %+v, want the SBOM on linux/arm64 only", got)
				}
				return
			}
			if !errors.Is(err, errs.ErrInput) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an input error saying %q", err, tc.want)
			}
			if n := len(proxy.Log()); n != 0 {
				t.Errorf("%d requests reached the registry", n)
			}
		})
	}
}

// A registry that takes a push and then has nothing under the digest is
// failing (exit 1), not naming nothing (exit 2); integrity stays integrity.
func TestAfterPush(t *testing.T) {
	if err := afterPush(errs.NotFoundf("manifest unknown")); err == nil || errors.Is(err, errs.ErrNotFound) || !strings.Contains(err.Error(), "does not serve it") {
		t.Errorf("not found after a push: %v", err)
	}
	integrity := &errs.IntegrityError{What: "x", Check: "digest"}
	if err := afterPush(integrity); err != integrity {
		t.Errorf("integrity: %v", err)
	}
	if afterPush(nil) != nil {
		t.Error("nil became an error")
	}
}

// A tag that already named the digest (an earlier unsigned publish) is
// not this run's to remove: when signing fails, the error says that it
// still names the unsigned image.
func TestPublish_SigningFailureNamesTagsThatAlreadyPointedThere(t *testing.T) {
	ctx := context.Background()
	reg := registrytest.New(t, registrytest.Options{})
	regs := remote.Registries{Insecure: []string{reg.Host}}
	src := ocitest.Layout(t, t.TempDir(), "1", ocitest.Options{Layers: 1, Size: 4 << 10, Seed: 16})
	to := []Destination{dest(t, reg.Host+"/agents/tool:1")}
	if _, err := Publish(ctx, src, to, Options{Hosts: registrytest.Open(t, regs), WorkDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	rep, err := Publish(ctx, src, to, Options{Hosts: registrytest.Open(t, regs), WorkDir: t.TempDir(), Sign: &Signing{Signer: refusingSigner{testKey(t), reg.Host}}})
	if err == nil || !strings.Contains(err.Error(), "the tags 1 already named this digest before this run and still do, unsigned") {
		t.Fatalf("got %v, want the tag that still names the unsigned image named", err)
	}
	if rep == nil || len(rep.Destinations) != 1 || !slices.Equal(rep.Destinations[0].Tags, []string{"1"}) {
		t.Errorf("report %+v, want the tag that names the digest there listed", rep)
	}
}

// A destination where signing failed gets, for the index and for each
// platform image, an entry that names the image and says why it is not
// signed (not an empty one that reads as signed).
func TestIndex_UnsignedEntriesSayWhy(t *testing.T) {
	ctx := context.Background()
	a := registrytest.New(t, registrytest.Options{})
	b := registrytest.New(t, registrytest.Options{})
	amd := publishPlatform(t, a, "agents/tool", "linux/amd64", 21)
	arm := publishPlatform(t, a, "agents/tool", "linux/arm64", 22)
	regs := remote.Registries{Insecure: []string{a.Host, b.Host}}
	rep, err := Index(ctx, []types.ImageReference{amd, arm}, []Destination{dest(t, a.Host+"/agents/tool:1"), dest(t, b.Host+"/agents/tool:1")},
		Options{Hosts: registrytest.Open(t, regs), WorkDir: t.TempDir(), Sign: &Signing{Signer: refusingSigner{testKey(t), b.Host}}})
	if err == nil {
		t.Fatal("signing refused on one registry, and no error")
	}
	if s := rep.Signatures; len(s) != 2 || s[0].Error != "" || s[1].Ref == "" || !strings.Contains(s[1].Error, "not signed") {
		t.Errorf("index signatures %+v, want the second to name its image and say it is not signed", s)
	}
	for _, m := range rep.Manifests {
		if s := m.Signatures; len(s) != 2 || s[0].Signature == nil || s[1].Ref != b.Host+"/agents/tool@"+m.Digest || s[1].Signature != nil || s[1].Error == "" {
			t.Errorf("%s: signatures %+v", m.Platform, s)
		}
	}
}

// Two SBOMs for one platform spelled two ways are refused.
func TestSigning_OnePlatformTwice(t *testing.T) {
	s := &Signing{Signer: testKey(t), PlatformSBOMs: map[string][]byte{"linux/arm64": []byte(testSBOM), "linux/arm64/v8": []byte(testSBOM)}}
	err := s.checkSBOMs(digest.FromString("x"), true, map[string]digest.Digest{"linux/arm64": digest.FromString("y")})
	if !errors.Is(err, errs.ErrInput) || !strings.Contains(err.Error(), "one platform") {
		t.Errorf("got %v", err)
	}
}
