package publisher

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/builder/oci/ocitest"
	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/publisher/attachments"
	"github.com/agentforge/agentforge/publisher/registrytest"
	"github.com/agentforge/agentforge/publisher/sign"
	"github.com/agentforge/agentforge/publisher/sign/signtest"
	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/oci/layout"
)

// A signed index mirrored DaoCloud-style stays verifiable with the same
// key: the index's signature and SBOM attestation, and a child's
// signature, travel with it byte for byte; cosign verifies on both
// registries; a second mirror copies nothing.
func TestMirror_CopiesSignaturesAndAttestations(t *testing.T) {
	signtest.Cosign(t) // first: the short tier skips it before any setup
	up := registrytest.New(t, registrytest.Options{Auth: true, TLS: true})
	mir := registrytest.New(t, registrytest.Options{Auth: true, TLS: true})
	regs := registriesFor(t, up, mir)
	authFile, caFile := regs.AuthFile, regs.CAFile
	ctx := context.Background()
	seed, hosts := publishIndex(t, up.Host, regs)
	sopts := sign.Options{Hosts: hosts}
	privPEM, pubPEM, err := sign.GenerateKeyPair([]byte("pass"))
	if err != nil {
		t.Fatal(err)
	}
	pubFile := filepath.Join(t.TempDir(), "cosign.pub")
	if err := os.WriteFile(pubFile, pubPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	key, err := sign.ParsePrivateKey(privPEM, []byte("pass"))
	if err != nil {
		t.Fatal(err)
	}
	upRepo, _ := reference.ParseNormalizedNamed(up.Host + "/agents/tool")
	mirRepo, _ := reference.ParseNormalizedNamed(mir.Host + "/mirror/agents/tool")
	idx := digest.Digest(seed.Digest)
	at := func(repo reference.Named, d digest.Digest) reference.Canonical {
		c, err := reference.WithDigest(repo, d)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// The index signed and attested upstream, and one child signed.
	children := childDigests(t, up.Host, "agents/tool", idx.String(), registrytest.Open(t, regs))
	child := children[1]
	for _, d := range []digest.Digest{idx, child} {
		if _, err := sign.Sign(ctx, at(upRepo, d), key, sopts); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := sign.Attest(ctx, at(upRepo, idx), key, "spdxjson", []byte(`{"spdxVersion":"SPDX-2.3","SPDXID":"SPDXRef-DOCUMENT","name":"tool"}`), sopts); err != nil {
		t.Fatal(err)
	}

	env := signtest.Env{AuthFile: authFile, CAFile: caFile}
	srcRef := mustRef(t, "docker://"+up.Host+"/agents/tool:2.0")
	dests := []Destination{dest(t, mir.Host+"/mirror/agents/tool", "2.0")}
	plan, err := Mirror(ctx, srcRef, dests, MirrorOptions{Options: Options{Hosts: registrytest.Open(t, regs), WorkDir: t.TempDir()}, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := plan.Destinations[0].Attachments; got == nil || len(got.Copied) != 3 {
		t.Fatalf("dry run: attachments %+v, want three to copy", got)
	}
	sigTag, _ := attachments.AttachmentTag(idx, attachments.SuffixSignature)
	mc, err := hosts.Client(mirRepo)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mc.ManifestDigest(ctx, sigTag); !remote.IsNotFound(err) {
		t.Fatalf("after the dry run, %s:%s: %v, want not found", mirRepo, sigTag, err)
	}
	rep, err := Mirror(ctx, srcRef, dests, MirrorOptions{Options: Options{Hosts: registrytest.Open(t, regs), WorkDir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	got := rep.Destinations[0].Attachments
	if got == nil || len(got.Copied) != 3 || got.Unchanged != 0 {
		t.Fatalf("first mirror: attachments %+v, want the index's .sig and .att and the child's .sig", got)
	}
	for _, c := range []struct {
		repo reference.Named
		d    digest.Digest
	}{{upRepo, idx}, {mirRepo, idx}, {upRepo, child}, {mirRepo, child}} {
		if code, out := signtest.Verify(t, env, pubFile, at(c.repo, c.d).String()); code != 0 {
			t.Errorf("cosign verify %s: exit %d\n%s", at(c.repo, c.d), code, out)
		}
	}
	if code, out := signtest.VerifyAttestation(t, env, pubFile, "spdxjson", at(mirRepo, idx).String()); code != 0 {
		t.Errorf("cosign verify-attestation on the mirror: exit %d\n%s", code, out)
	}
	// The other child was never signed: not on the mirror either.
	if _, err := sign.Verify(ctx, at(mirRepo, children[0]), key.Public(), sopts); !sign.IsMissing(err) {
		t.Errorf("unsigned child on the mirror: %v, want not signed", err)
	}

	again, err := Mirror(ctx, srcRef, dests, MirrorOptions{Options: Options{Hosts: registrytest.Open(t, regs), WorkDir: t.TempDir(), Verify: VerifyFast}})
	if err != nil {
		t.Fatal(err)
	}
	d := again.Destinations[0]
	if d.BlobsPushed != 0 || d.Attachments == nil || len(d.Attachments.Copied) != 0 || d.Attachments.Unchanged != 3 {
		t.Fatalf("second mirror copied something: %+v attachments %+v", d, d.Attachments)
	}
}

// The referrers API case, end to end with the real cosign: upstream is a
// registry with the API (bearer tokens, TLS), where cosign's OCI 1.1 mode
// signs the index and a child as referrers, with no tag at all. Mirroring
// DaoCloud-style to distribution (no API) carries both signatures (as
// tag-schema indexes), cosign verifies them there, and a second mirror
// copies nothing.
func TestMirror_CopiesReferrersAPISignatures(t *testing.T) {
	signtest.Cosign(t) // first: the short tier skips it before any setup
	up := registrytest.NewOCI(t, registrytest.Options{Auth: true, TLS: true})
	mir := registrytest.New(t, registrytest.Options{Auth: true, TLS: true})
	regs := registriesFor(t, up.Registry, mir)
	authFile, caFile := regs.AuthFile, regs.CAFile
	ctx := context.Background()
	seed, _ := publishIndex(t, up.Host, regs)
	idx := digest.Digest(seed.Digest)
	children := childDigests(t, up.Host, "agents/tool", idx.String(), registrytest.Open(t, regs))
	child := children[1]

	dir := t.TempDir()
	env := signtest.Env{AuthFile: authFile, CAFile: caFile, Passphrase: "pass", Experimental: true}
	cosign := func(args ...string) (int, string) { return signtest.Run(t, env, args...) }
	if code, out := cosign("generate-key-pair", "--output-key-prefix", filepath.Join(dir, "cosign")); code != 0 {
		t.Fatalf("cosign generate-key-pair: %s", out)
	}
	verify := func(ref string) (int, string) {
		return cosign("verify", "--experimental-oci11", "--key", filepath.Join(dir, "cosign.pub"), "--insecure-ignore-tlog=true", ref)
	}
	for _, d := range []digest.Digest{idx, child} {
		ref := up.Host + "/agents/tool@" + d.String()
		if code, out := cosign("sign", "--registry-referrers-mode=oci-1-1", "--key", filepath.Join(dir, "cosign.key"), "--tlog-upload=false", "--yes", ref); code != 0 {
			t.Fatalf("cosign sign %s: %s", ref, out)
		}
	}

	srcRef := mustRef(t, "docker://"+up.Host+"/agents/tool:2.0")
	dests := []Destination{dest(t, mir.Host+"/mirror/agents/tool", "2.0")}
	rep, err := Mirror(ctx, srcRef, dests, MirrorOptions{Options: Options{Hosts: registrytest.Open(t, regs), WorkDir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	got := rep.Destinations[0].Attachments
	if got == nil || len(got.Copied) != 2 {
		t.Fatalf("first mirror: attachments %+v, want the tag-schema indexes of the index and the child", got)
	}
	for _, d := range []digest.Digest{idx, child} {
		ref := mir.Host + "/mirror/agents/tool@" + d.String()
		if code, out := verify(ref); code != 0 {
			t.Errorf("cosign verify --experimental-oci11 %s on the mirror: exit %d\n%s", ref, code, out)
		}
	}
	// The other child was never signed: cosign finds nothing on the mirror.
	if code, _ := verify(mir.Host + "/mirror/agents/tool@" + children[0].String()); code == 0 {
		t.Error("cosign verified the unsigned child on the mirror")
	}
	again, err := Mirror(ctx, srcRef, dests, MirrorOptions{Options: Options{Hosts: registrytest.Open(t, regs), WorkDir: t.TempDir(), Verify: VerifyFast}})
	if err != nil {
		t.Fatal(err)
	}
	if a := again.Destinations[0].Attachments; a == nil || len(a.Copied) != 0 || a.Unchanged != 2 {
		t.Fatalf("second mirror: attachments %+v, want nothing copied", a)
	}
}

// registriesFor is the configuration that reaches regs (with auth and
// TLS): one auth file with every registry's credentials, one CA bundle.
func registriesFor(t *testing.T, regs ...*registrytest.Registry) remote.Registries {
	t.Helper()
	creds := map[string][2]string{}
	var cas []byte
	for _, r := range regs {
		creds[r.Host] = [2]string{r.User, r.Password}
		b, err := os.ReadFile(r.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		cas = append(cas, b...)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, cas, 0o644); err != nil {
		t.Fatal(err)
	}
	return remote.Registries{AuthFile: registrytest.WriteAuthFile(t, creds), CAFile: caFile}
}

// publishIndex publishes writeIndexLayout's two-platform index to
// host/agents/tool:2.0 and opens regs for the test.
func publishIndex(t *testing.T, host string, regs remote.Registries) (*Report, *remote.Hosts) {
	t.Helper()
	layoutRef, err := layout.NewReference(writeIndexLayout(t), "multi")
	if err != nil {
		t.Fatal(err)
	}
	seed, err := Publish(context.Background(), layoutRef, []Destination{dest(t, host+"/agents/tool:2.0")}, Options{Hosts: registrytest.Open(t, regs), WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	hosts, err := regs.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return seed, hosts
}

// A mirror's signatures under cosign's tags go alongside the image, not
// after it: they need nothing of the image on the destination. Here the
// upload of the image's layer is held until the signature is written (5 s
// at most), and the signature's manifest must reach the destination
// before the image's manifest does; the tag comes after both.
func TestMirror_SignaturesGoAlongsideTheImage(t *testing.T) {
	up := registrytest.New(t, registrytest.Options{})
	mir := registrytest.New(t, registrytest.Options{})
	proxy := registrytest.NewProxy(t, mir)
	regs := remote.Registries{Insecure: []string{up.Host, mir.Host, proxy.Host}}
	hosts := registrytest.Open(t, regs)
	ctx := context.Background()
	ref := registrytest.Push(t, hosts, up.Host+"/up/agent:1", ocitest.Options{Layers: 1, Size: 4096, Seed: 91})
	if _, err := sign.SignAll(ctx, []reference.Canonical{ref}, testKey(t), nil, sign.Options{Hosts: hosts}); err != nil {
		t.Fatal(err)
	}
	layer := imageLayer(t, hosts, ref)
	signed := make(chan struct{})
	var once sync.Once
	var held atomic.Bool
	proxy.Set(registrytest.Faults{OnResponse: func(e registrytest.Entry) {
		q, _ := url.ParseQuery(e.Query) // the digest is escaped there: sha256%3A…
		switch {
		case e.Method == http.MethodPut && strings.HasSuffix(e.Path, ".sig"):
			once.Do(func() { close(signed) })
		case e.Method == http.MethodPut && q.Get("digest") == layer.String():
			held.Store(true)
			select {
			case <-signed:
			case <-time.After(5 * time.Second):
			}
		}
	}})
	if _, err := Mirror(ctx, mustRef(t, "docker://"+up.Host+"/up/agent:1"), []Destination{dest(t, proxy.Host+"/mirror/agent", "1")},
		MirrorOptions{Options: Options{Hosts: registrytest.Open(t, regs), WorkDir: t.TempDir()}}); err != nil {
		t.Fatal(err)
	}
	if !held.Load() {
		t.Fatal("the layer's upload was never held: the order below would prove nothing")
	}
	at := map[string]int{}
	for i, e := range proxy.Log() {
		if e.Method != http.MethodPut || !strings.Contains(e.Path, "/manifests/") {
			continue
		}
		switch name := e.Path[strings.LastIndex(e.Path, "/")+1:]; {
		case strings.HasSuffix(name, ".sig"):
			at["sig"] = i
		case name == ref.Digest().String():
			at["image"] = i
		case name == "1":
			at["tag"] = i
		}
	}
	if len(at) != 3 || at["sig"] > at["image"] || at["image"] > at["tag"] {
		t.Errorf("manifest writes in the order %v: want the signature before the image, the tag last", at)
	}
}

// imageLayer is the (first) layer of the image ref names, as its registry
// serves it.
func imageLayer(t *testing.T, hosts *remote.Hosts, ref reference.Canonical) digest.Digest {
	t.Helper()
	raw, err := oci.Manifest(context.Background(), mustRef(t, "docker://"+ref.String()), hosts.For(reference.Domain(ref)))
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest.OCI1FromManifest(raw)
	if err != nil || len(m.Layers) == 0 {
		t.Fatalf("manifest of %s: %v", ref, err)
	}
	return m.Layers[0].Digest
}
