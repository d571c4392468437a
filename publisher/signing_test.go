package publisher

import (
	"context"
	"testing"

	"github.com/agentforge/agentforge/builder/image"
	"github.com/agentforge/agentforge/publisher/registrytest"
	"github.com/agentforge/agentforge/publisher/sign"
	"go.podman.io/image/v5/oci/layout"
)

// Sign signs what each destination of a publish serves, skips failed
// destinations, and attaches the SBOM.
func TestSign_PublishedDestinations(t *testing.T) {
	reg := registrytest.New(t, registrytest.Options{Auth: true, TLS: true})
	regs := image.Registries{AuthFile: reg.AuthFile, CAFile: reg.CAFile}
	ctx := context.Background()
	src, err := layout.NewReference(writeIndexLayout(t), "multi")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Publish(ctx, src, []Destination{dest(t, reg.Host+"/up/tool:1"), dest(t, reg.Host+"/mirror/tool:1")}, Options{Registries: regs, WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	results := []Result{rep.Destinations[0], {Ref: reg.Host + "/failed/tool@" + rep.Digest, Error: "push failed"}, rep.Destinations[1]}
	priv, _, err := sign.GenerateKeyPair([]byte("p"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := sign.ParsePrivateKey(priv, []byte("p"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := Sign(ctx, results, key, []byte(`{"spdxVersion":"SPDX-2.3"}`), Options{Registries: regs})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 3 || out[1].Signature != nil || out[1].Ref != "" {
		t.Fatalf("entries %+v: want three, the failed destination's empty", out)
	}
	hosts, err := regs.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 2} {
		if out[i].Ref != results[i].Ref || out[i].Signature == nil || !out[i].Signature.Added || out[i].SBOM == nil || !out[i].SBOM.Added {
			t.Errorf("entry %d: %+v", i, out[i])
		}
		ref, err := sign.ParseRef(results[i].Ref)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sign.Verify(ctx, ref, key.Public(), sign.Options{Hosts: hosts}); err != nil {
			t.Errorf("%s: %v", ref, err)
		}
		if _, err := sign.VerifyAttestation(ctx, ref, key.Public(), "spdxjson", sign.Options{Hosts: hosts}); err != nil {
			t.Errorf("%s: %v", ref, err)
		}
	}
	// The failed destination was not signed.
	failed, _ := sign.ParseRef(results[1].Ref)
	if _, err := sign.Verify(ctx, failed, key.Public(), sign.Options{Hosts: hosts}); err == nil {
		t.Error("the failed destination verifies")
	}
}
