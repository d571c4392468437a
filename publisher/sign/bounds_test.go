package sign_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/builder/oci/ocitest"
	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/publisher/registrytest"
	"github.com/agentforge/agentforge/publisher/sign"
	"go.podman.io/image/v5/docker/reference"
)

// An .att manifest can hold any number of attestations: verify --key reads
// the newest 64 of them, one at a time, keeps the newest verified
// predicate only, and says how many it did not read. An SBOM by the key
// among the newest verifies; one buried under 66 newer ones is not found,
// and that is said (and refused with --require-sbom), rather than read.
func TestVerifyAttestation_ReadsABoundedNumber(t *testing.T) {
	up := registrytest.New(t, registrytest.Options{})
	proxy := registrytest.NewProxy(t, up)
	o := sign.Options{Hosts: registrytest.Open(t, remote.Registries{Insecure: []string{proxy.Host}})}
	ctx := context.Background()
	key, _, _ := keyPair(t, "")
	other, _, _ := keyPair(t, "other")
	const flood = 66
	attest := func(ref reference.Canonical, k *sign.PrivateKey, n int) {
		t.Helper()
		if _, err := sign.Attest(ctx, ref, k, "spdxjson", []byte(fmt.Sprintf(`{"spdxVersion":"SPDX-2.3","name":"n%d"}`, n)), o); err != nil {
			t.Fatal(err)
		}
	}
	blobReads := func(during func()) int {
		before := len(proxy.Log())
		during()
		n := 0
		for _, e := range proxy.Log()[before:] {
			if e.Method == "GET" && strings.Contains(e.Path, "/blobs/") {
				n++
			}
		}
		return n
	}

	// The key's SBOM first, then a flood of another key's on top.
	buried := registrytest.Push(t, o.Hosts, proxy.Host+"/agents/buried:1", ocitest.Options{Layers: 1, Size: 256, Seed: 101})
	attest(buried, key, 0)
	for i := 1; i <= flood; i++ {
		attest(buried, other, i)
	}
	var v *sign.Verification
	var err error
	if n := blobReads(func() { v, err = sign.VerifyAttestation(ctx, buried, key.Public(), "spdxjson", o) }); n > 64 {
		t.Errorf("%d blobs read to check %d attestations, want at most 64", n, flood+1)
	}
	if !sign.IsMissing(err) || v == nil || v.NotRead != flood+1-64 || !strings.Contains(err.Error(), "not read") {
		t.Errorf("buried: %+v %v, want not attested, saying %d were not read", v, err, flood+1-64)
	}

	// Another key's flood first, the key's SBOM newest: found, and the
	// rest still bounded.
	fresh := registrytest.Push(t, o.Hosts, proxy.Host+"/agents/fresh:1", ocitest.Options{Layers: 1, Size: 256, Seed: 102})
	for i := 1; i <= flood; i++ {
		attest(fresh, other, i)
	}
	attest(fresh, key, 0)
	if n := blobReads(func() { v, err = sign.VerifyAttestation(ctx, fresh, key.Public(), "spdxjson", o) }); n > 64 {
		t.Errorf("%d blobs read, want at most 64", n)
	}
	if err != nil || v.Verified != 1 || v.NotRead != flood+1-64 || !strings.Contains(string(v.Predicate), `"n0"`) {
		t.Errorf("fresh: %+v %v", v, err)
	}
}
