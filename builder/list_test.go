package builder_test

import (
	"bytes"
	"context"
	"encoding/json"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/builder"
	"github.com/agentforge/agentforge/builder/buildertest"
	"github.com/agentforge/agentforge/builder/source"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/storage"
)

// A multi-platform build: each platform built (the foreign one under qemu,
// which make deps sets up), joined into an OCI index in local storage that
// carries the definition's tags, the same bytes from a fresh store.
func TestBuild_MultiPlatformList(t *testing.T) {
	store := buildertest.NewStore(t, "overlay")
	res := buildertest.BusyboxFor(t, store, []string{"linux/arm64", "linux/amd64"}, nil)

	if got := strings.Join(res.Names, " "); got != "localhost/busybox-demo:1.0.0 localhost/busybox-demo:latest" {
		t.Errorf("list names = %s", got)
	}
	if len(res.Manifests) != 2 || res.Manifests[0].Platform != "linux/amd64" || res.Manifests[1].Platform != "linux/arm64" {
		t.Fatalf("manifests = %+v, want linux/amd64 then linux/arm64", res.Manifests)
	}
	if res.Base.Ref == "" || res.Base != res.Manifests[0].Base {
		t.Errorf("the list's base %+v, want the definition's (the platforms': %+v)", res.Base, res.Manifests[0].Base)
	}
	img, err := store.Image(res.Names[0])
	if err != nil || img.ID != res.ID || img.Digest.String() != res.Digest {
		t.Fatalf("storage has %v (%v), want list %s %s", img, err, res.ID, res.Digest)
	}
	raw, err := store.ImageBigData(res.ID, storage.ImageDigestBigDataKey)
	if err != nil {
		t.Fatal(err)
	}
	var idx imgspecv1.Index
	if err := json.Unmarshal(raw, &idx); err != nil || idx.MediaType != imgspecv1.MediaTypeImageIndex {
		t.Fatalf("list is not an OCI index (%v): %s", err, raw)
	}
	uname := map[string]string{"amd64": "x86_64", "arm64": "aarch64"}
	for i, m := range res.Manifests {
		d := idx.Manifests[i]
		arch := strings.TrimPrefix(m.Platform, "linux/")
		if d.Digest.String() != m.Digest || d.Platform == nil || d.Platform.Architecture != arch {
			t.Errorf("index entry %d = %+v, want %s for %s", i, d, m.Digest, m.Platform)
		}
		if want := "localhost/busybox-demo:1.0.0-linux-" + arch; !slices.Contains(m.Names, want) {
			t.Errorf("%s names = %v, want %s", m.Platform, m.Names, want)
		}
		// The platform's own busybox runs (natively or under qemu) and
		// reports the platform's machine.
		var out, errOut bytes.Buffer
		if err := builder.Run(context.Background(), store, m.ID, []string{"uname", "-m"}, &out, &errOut); err != nil {
			t.Fatalf("run in %s: %v\n%s", m.Platform, err, errOut.String())
		}
		if got := strings.TrimSpace(out.String()); got != uname[arch] {
			t.Errorf("uname -m in the %s image = %q, want %q (host %s)", m.Platform, got, uname[arch], runtime.GOARCH)
		}
	}

	// Built again in the same store, the names move to the new list and
	// the old one goes; from a fresh store, the same bytes.
	again := buildertest.BusyboxFor(t, store, []string{"linux/amd64", "linux/arm64"}, nil)
	fresh := buildertest.BusyboxFor(t, buildertest.NewStore(t, "vfs"), []string{"linux/amd64", "linux/arm64"}, nil)
	for _, r := range []*builder.Result{again, fresh} {
		if r.Digest != res.Digest || r.Manifests[0].Digest != res.Manifests[0].Digest || r.Manifests[1].Digest != res.Manifests[1].Digest {
			t.Errorf("rebuild gave list %s (%s, %s), want %s (%s, %s)", r.Digest, r.Manifests[0].Digest, r.Manifests[1].Digest,
				res.Digest, res.Manifests[0].Digest, res.Manifests[1].Digest)
		}
	}
	all, err := store.Images()
	if err != nil {
		t.Fatal(err)
	}
	lists := 0
	for _, i := range all {
		raw, err := store.ImageBigData(i.ID, storage.ImageDigestBigDataKey)
		if err == nil && strings.Contains(string(raw), imgspecv1.MediaTypeImageIndex) {
			lists++
		}
	}
	if lists != 1 {
		t.Errorf("%d manifest lists in storage after a rebuild, want 1", lists)
	}
}

// A platform the definition does not declare is bad input; a declared one
// is built even when it is not this machine's.
func TestBuild_PlatformChecks(t *testing.T) {
	store := buildertest.NewStore(t, "vfs")
	def := buildertest.LoadBusybox(t, nil)
	for _, tc := range []struct {
		platforms []string
		want      string
	}{
		{[]string{"linux/s390x"}, "declares linux/amd64, linux/arm64, not linux/s390x"},
		{[]string{"linux/amd64", "linux/amd64"}, "named twice"},
		{[]string{"linux"}, "want os/arch"},
	} {
		_, err := builder.Build(context.Background(), def, builder.BuildOptions{Store: store, Fetcher: &source.Fetcher{CacheDir: t.TempDir()}, Platforms: tc.platforms})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want %q", tc.platforms, err, tc.want)
		}
	}
}
