package publisher

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/builder/oci/ocitest"
	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/publisher/registrytest"
	"github.com/agentforge/agentforge/publisher/sign"
	"github.com/opencontainers/go-digest"
)

// localList is a two-platform list whose platform images are OCI layouts
// (PublishList takes any local reference for them).
func localList(t *testing.T, seed uint64) *oci.LocalList {
	t.Helper()
	list := &oci.LocalList{Digest: digest.FromString("the local list")}
	for i, p := range []string{"linux/amd64", "linux/arm64"} {
		ref := ocitest.Layout(t, t.TempDir(), "1", ocitest.Options{Layers: 2, Size: 4 << 10, Seed: seed + uint64(i), Platforms: []string{p}})
		raw, err := oci.Manifest(context.Background(), ref, nil)
		if err != nil {
			t.Fatal(err)
		}
		list.Children = append(list.Children, oci.LocalListChild{Platform: p, Digest: digest.FromBytes(raw), Ref: ref})
	}
	return list
}

// Publishing a multi-platform list behaves as publishing one image does:
// a destination that fails (from the start, or on the second platform)
// stops there, and only there; every healthy destination gets every
// platform, the index, its signature and its tags, and the report lists
// both destinations in order, the failed one with its error and unsigned.
func TestPublishList_OneBadDestinationDoesNotStopTheOthers(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		arm  func(p *registrytest.Proxy)
	}{
		{"fails from the start", func(p *registrytest.Proxy) { p.Set(registrytest.Faults{FailEveryNthUpload: 1}) }},
		{"fails on the second platform", func(p *registrytest.Proxy) {
			p.Set(registrytest.Faults{OnResponse: func(e registrytest.Entry) {
				if e.Method == "PUT" && strings.Contains(e.Path, "/manifests/sha256:") {
					p.Set(registrytest.Faults{FailEveryNthUpload: 1})
				}
			}})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			good := registrytest.New(t, registrytest.Options{})
			bad := registrytest.New(t, registrytest.Options{})
			proxy := registrytest.NewProxy(t, bad)
			tc.arm(proxy)
			regs := remote.Registries{Insecure: []string{good.Host, bad.Host, proxy.Host}, Retry: remote.RetryPolicy{Attempts: 2, Delay: 5 * time.Millisecond}}
			key := testKey(t)
			// The bad destination first: order must not matter.
			dests := []Destination{dest(t, proxy.Host+"/agents/multi:1"), dest(t, good.Host+"/agents/multi:1")}
			rep, err := PublishList(ctx, localList(t, 131), dests, Options{Hosts: registrytest.Open(t, regs), WorkDir: t.TempDir(), Sign: &Signing{Signer: key}})
			if err == nil || !strings.Contains(err.Error(), proxy.Host) || strings.Contains(err.Error(), good.Host) {
				t.Fatalf("got %v, want an error naming the bad destination only", err)
			}
			if rep == nil || len(rep.Destinations) != 2 || len(rep.Manifests) != 2 {
				t.Fatalf("report %+v, want both destinations and both platforms", rep)
			}
			b, g := rep.Destinations[0], rep.Destinations[1]
			if b.Error == "" || !strings.Contains(b.Error, "platform linux/") || g.Error != "" || !g.Verified || g.Digest != rep.Digest {
				t.Errorf("destinations: bad %+v, good %+v", b, g)
			}
			hosts := registrytest.Open(t, regs)
			if got := tagDigest(t, Options{Hosts: hosts}, good.Host, "agents/multi:1"); got != rep.Digest {
				t.Errorf("the healthy destination's tag names %q, want the index %s", got, rep.Digest)
			}
			if got := tagDigest(t, Options{Hosts: hosts}, bad.Host, "agents/multi:1"); got != "" {
				t.Errorf("the failed destination was tagged: %s", got)
			}
			onGood := canonicalAt(t, good.Host+"/agents/multi", digest.Digest(rep.Digest))
			if _, err := oci.Verify(ctx, mustRef(t, "docker://"+onGood.String()), oci.VerifyOptions{SystemContext: hosts.For(good.Host), ExpectDigest: onGood.Digest()}); err != nil {
				t.Errorf("the index on the healthy destination: %v", err)
			}
			if _, err := sign.Verify(ctx, onGood, key.Verifier(), sign.Options{Hosts: hosts}); err != nil {
				t.Errorf("the index on the healthy destination is not signed: %v", err)
			}
			if s := rep.Signatures; len(s) != 2 || s[1].Signature == nil || s[0].Signature != nil || !strings.Contains(s[0].Error, "not signed") {
				t.Errorf("signatures %+v, want the healthy destination's and a 'not signed' for the other", s)
			}
			for _, m := range rep.Manifests {
				if s := m.Signatures; len(s) != 2 || s[1].Signature == nil || s[0].Signature != nil || s[0].Error == "" {
					t.Errorf("%s: signatures %+v", m.Platform, s)
				}
			}
		})
	}
}
