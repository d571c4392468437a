package publisher

import (
	"context"
	"errors"
	"testing"

	"github.com/agentforge/agentforge/builder/oci/ocitest"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/publisher/registrytest"
	"github.com/agentforge/agentforge/publisher/sign"
	"github.com/agentforge/agentforge/publisher/sign/signtest"
	"go.podman.io/image/v5/docker/reference"
)

// A mirror that signs with its own key (the README's scenario): what must
// verify under a key is that key's signature and that key's attestations.
// The upstream's SBOM attestation, copied byte for byte, stays the
// upstream key's: it verifies under the upstream key on the mirror, and
// neither passes nor fails the mirror's key, which verifies on its own
// signature (and, once the mirror attests one, its own SBOM). cosign
// agrees on each.
func TestMirror_OwnKeyVerifiesAlongsideUpstreamAttestations(t *testing.T) {
	signtest.Cosign(t) // first: the short tier skips it before any setup
	up := registrytest.New(t, registrytest.Options{Auth: true, TLS: true})
	mir := registrytest.New(t, registrytest.Options{Auth: true, TLS: true})
	regs := registriesFor(t, up, mir)
	hosts := registrytest.Open(t, regs)
	so := sign.Options{Hosts: hosts}
	ctx := context.Background()
	upKey, _, upPub := signtest.KeyPair(t, "up")
	mirKey, _, mirPub := signtest.KeyPair(t, "mirror")
	src := registrytest.Push(t, hosts, up.Host+"/agents/tool:1", ocitest.Options{Layers: 1, Size: 1024, Seed: 91})
	if _, err := sign.SignAll(ctx, []reference.Canonical{src}, upKey, []byte(signtest.SBOM), so); err != nil {
		t.Fatal(err)
	}
	onMirror := canonicalAt(t, mir.Host+"/mirror/tool", src.Digest())
	env := signtest.Env{AuthFile: regs.AuthFile, CAFile: regs.CAFile}
	mirror := func(sbom []byte) {
		t.Helper()
		s := &Signing{Signer: mirKey, SBOM: sbom}
		if _, err := Mirror(ctx, mustRef(t, "docker://"+up.Host+"/agents/tool:1"), []Destination{dest(t, mir.Host+"/mirror/tool", "1")},
			MirrorOptions{Options: Options{Hosts: registrytest.Open(t, regs), WorkDir: t.TempDir(), Sign: s}}); err != nil {
			t.Fatal(err)
		}
	}

	mirror(nil)
	c, err := sign.CheckImage(ctx, onMirror, mirKey.Public(), sign.SBOMIfPresent, so)
	if err != nil {
		t.Fatalf("verify --key mirror.pub on the mirror: %v", err)
	}
	if !c.SBOMAbsent || c.SBOMByOtherKeys != 1 {
		t.Errorf("mirror key: %+v, want no SBOM by this key and one by another", c)
	}
	if _, err := sign.CheckImage(ctx, onMirror, upKey.Public(), sign.SBOMRequired, so); err != nil {
		t.Errorf("verify --key upstream.pub --require-sbom on the mirror: %v", err)
	}
	// The mirror's key attested nothing: demanding its SBOM fails (exit 3).
	if _, err := sign.CheckImage(ctx, onMirror, mirKey.Public(), sign.SBOMRequired, so); !sign.IsMissing(err) || !errors.Is(err, errs.ErrIntegrity) {
		t.Errorf("--require-sbom with the mirror's key: %v, want not attested", err)
	}
	for _, pub := range []string{mirPub, upPub} {
		if code, out := signtest.Verify(t, env, pub, onMirror.String()); code != 0 {
			t.Errorf("cosign verify --key %s: exit %d\n%s", pub, code, out)
		}
	}
	if code, out := signtest.VerifyAttestation(t, env, upPub, "spdxjson", onMirror.String()); code != 0 {
		t.Errorf("cosign verify-attestation --key upstream.pub: exit %d\n%s", code, out)
	}

	// The mirror attests an SBOM of its own: each key now verifies its own.
	mirror([]byte(signtest.SBOM))
	for name, k := range map[string]*sign.PrivateKey{"mirror": mirKey, "upstream": upKey} {
		c, err := sign.CheckImage(ctx, onMirror, k.Public(), sign.SBOMRequired, so)
		if err != nil || c.SBOM == nil || c.SBOM.Verified != 1 || c.SBOM.OtherKeys != 1 {
			t.Errorf("%s key, --require-sbom: %+v %v, want its own attestation verified and the other key's left alone", name, c, err)
		}
	}
	for _, pub := range []string{mirPub, upPub} {
		if code, out := signtest.VerifyAttestation(t, env, pub, "spdxjson", onMirror.String()); code != 0 {
			t.Errorf("cosign verify-attestation --key %s: exit %d\n%s", pub, code, out)
		}
	}
}
