package publisher

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/builder/oci/ocitest"
	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/publisher/registrytest"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/types"
)

// seed publishes two different synthetic images (or indexes) to reg and
// returns their digests.
func seed(t *testing.T, reg *registrytest.Registry, o ocitest.Options) (a, b string) {
	t.Helper()
	opts := Options{Hosts: registrytest.Open(t, remote.Registries{Insecure: []string{reg.Host}}), WorkDir: t.TempDir(), Verify: VerifyNone}
	var out []string
	for i, tag := range []string{"a", "b"} {
		o.Seed = uint64(100 + i)
		src := ocitest.Layout(t, t.TempDir(), tag, o)
		rep, err := Publish(context.Background(), src, []Destination{dest(t, reg.Host+"/app/x:"+tag)}, opts)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rep.Digest)
	}
	return out[0], out[1]
}

// A source registry that serves another manifest for the digest asked for
// is caught before anything is sent: the mirror is refused with an
// integrity error naming the digest, and the destination stays empty.
func TestMirror_SourceLyingAboutADigest(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     ocitest.Options
		platform string
	}{
		{"image by digest", ocitest.Options{Layers: 1}, ""},
		{"index by digest", ocitest.Options{Layers: 1, Platforms: []string{"linux/amd64", "linux/arm64"}}, ""},
		{"platform child of an index", ocitest.Options{Layers: 1, Platforms: []string{"linux/amd64", "linux/arm64"}}, "linux/arm64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := registrytest.New(t, registrytest.Options{})
			a, b := seed(t, reg, tc.opts)
			proxy := registrytest.NewProxy(t, reg)
			asked := a
			if tc.platform != "" {
				// Lie about the arm64 child of index a: serve b's arm64 child.
				ca := childDigest(t, reg, a, "arm64")
				cb := childDigest(t, reg, b, "arm64")
				proxy.Set(registrytest.Faults{SwapManifest: map[string]string{ca: cb}})
				asked = ca
			} else {
				proxy.Set(registrytest.Faults{SwapManifest: map[string]string{a: b}})
			}
			dst := registrytest.New(t, registrytest.Options{})
			src, err := oci.ParseReference("docker://"+proxy.Host+"/app/x@"+a, nil)
			if err != nil {
				t.Fatal(err)
			}
			opts := Options{Hosts: registrytest.Open(t, remote.Registries{Insecure: []string{proxy.Host, dst.Host}}), WorkDir: t.TempDir()}
			_, err = Mirror(context.Background(), src, []Destination{dest(t, dst.Host+"/app/x", "v1")}, MirrorOptions{Options: opts, Platform: tc.platform})
			if !errors.Is(err, errs.ErrIntegrity) || !strings.Contains(err.Error(), asked) {
				t.Fatalf("want an integrity error naming %s, got %v", asked, err)
			}
			repo, _ := reference.ParseNormalizedNamed(dst.Host + "/app/x")
			c, err := opts.Hosts.Client(repo)
			if err != nil {
				t.Fatal(err)
			}
			for _, ref := range []string{"v1", b} {
				if _, err := c.ManifestDigest(context.Background(), ref); err == nil {
					t.Errorf("%s:%s exists on the destination", repo, ref)
				}
			}

			// verify names the mismatch too, before reading anything else.
			if tc.platform == "" {
				_, err = oci.Verify(context.Background(), src, oci.VerifyOptions{SystemContext: hostsFor(t, opts, proxy.Host)})
				if !errors.Is(err, errs.ErrIntegrity) || !strings.Contains(err.Error(), "expected "+a) {
					t.Fatalf("verify: want an integrity error expecting %s, got %v", a, err)
				}
			}
		})
	}
}

func childDigest(t *testing.T, reg *registrytest.Registry, index, arch string) string {
	t.Helper()
	ref, _ := oci.ParseReference("docker://"+reg.Host+"/app/x@"+index, nil)
	rep, err := oci.Verify(context.Background(), ref, oci.VerifyOptions{SystemContext: hostsFor(t, Options{Hosts: registrytest.Open(t, remote.Registries{Insecure: []string{reg.Host}})}, reg.Host)})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range rep.Manifests {
		if m.Platform == "linux/"+arch {
			return m.Digest
		}
	}
	t.Fatalf("no %s child in %s", arch, index)
	return ""
}

func hostsFor(t *testing.T, opts Options, host string) *types.SystemContext {
	t.Helper()
	return opts.Hosts.For(host)
}
