package publisher

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/agentforge/agentforge/builder/oci/ocitest"
	"github.com/agentforge/agentforge/publisher/registrytest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// A destination that answers one read of the verification 503 (a load
// balancer's hiccup) does not fail a push that went through: the
// verification is tried again, as every push request is, and the image
// is verified and tagged.
func TestMirror_VerificationRetriedAfterATemporaryFailure(t *testing.T) {
	src, dst := registrytest.New(t, registrytest.Options{}), registrytest.New(t, registrytest.Options{})
	dp := registrytest.NewProxy(t, dst)
	hosts := registrytest.Hosts(t, src, dst, dp)
	ref := registrytest.Push(t, hosts, src.Host+"/agents/tool:1", ocitest.Options{Layers: 2, Seed: 75})
	from := mustRef(t, "docker://"+src.Host+"/agents/tool:1")
	// The first read of the image's config on the destination, which only
	// the verification makes, is refused once.
	c, err := hosts.Client(ref)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := c.Manifest(context.Background(), ref.Digest().String(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	cfg := configOf(t, raw)
	dp.Set(registrytest.Faults{UnavailableBlobs: map[string]int{cfg: 1}})
	rep, err := Mirror(context.Background(), from, []Destination{dest(t, dp.Host+"/m/tool", "1")}, MirrorOptions{Options: Options{Hosts: hosts, WorkDir: t.TempDir()}})
	if err != nil {
		t.Fatalf("one 503 during verification failed the mirror: %v", err)
	}
	if d := rep.Destinations[0]; !d.Verified || len(d.Tags) != 1 {
		t.Errorf("%+v: want verified and tagged", d)
	}
	if dp.Unavailable() != 1 {
		t.Errorf("%d reads refused, want 1", dp.Unavailable())
	}
}

// configOf is the config digest of an image manifest.
func configOf(t *testing.T, raw []byte) string {
	t.Helper()
	var m imgspecv1.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m.Config.Digest.String()
}
