package builder_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agentforge/agentforge/builder"
	"github.com/agentforge/agentforge/builder/buildertest"
	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/builder/source"
	"github.com/agentforge/agentforge/images"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/containers/buildah"
	"github.com/opencontainers/go-digest"
	"go.podman.io/storage"
)

// These tests build real images with buildah in-process. They need root
// (chroot isolation, storage), cgo, and Debian's busybox-static at
// /bin/busybox (installed by .ci/run); skopeo for the cross-check.

func TestMain(m *testing.M) {
	if buildah.InitReexec() {
		return
	}
	os.Exit(m.Run())
}

func TestBuild_BusyboxAndVerify(t *testing.T) {
	store := buildertest.NewStore(t, "vfs")
	res := buildertest.Busybox(t, store, nil)
	if len(res.Layers) != 3 {
		t.Fatalf("want 3 layers (COPY, RUN, COPY), got %d", len(res.Layers))
	}
	if !strings.HasPrefix(res.Digest, "sha256:") || res.Names[0] != "localhost/busybox-demo:1.0.0" || res.Created != "2023-11-14T22:13:20Z" {
		t.Errorf("result: %+v", res)
	}

	// The RUN step really ran: the greeting is in the image.
	var stdout bytes.Buffer
	if err := builder.Run(context.Background(), store, res.ID, []string{"/bin/cat", "/etc/greeting"}, &stdout, os.Stderr); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(stdout.String()); got != "hello from agentforge" {
		t.Errorf("greeting %q", got)
	}

	ref, err := oci.ParseReference("busybox-demo:1.0.0", store)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := oci.Verify(context.Background(), ref, oci.VerifyOptions{})
	if err != nil || !rep.OK {
		t.Fatalf("verify: ok=%v err=%v", rep != nil && rep.OK, err)
	}
	if rep.Digest != res.Digest || len(rep.Layers) != len(res.Layers) {
		t.Errorf("verify saw %s with %d layers, build made %s with %d", rep.Digest, len(rep.Layers), res.Digest, len(res.Layers))
	}
	for i, l := range rep.Layers {
		if !l.OK || l.Digest != res.Layers[i].Digest || l.DiffID != res.Layers[i].DiffID {
			t.Errorf("layer %d: %+v", i, l)
		}
	}

	// An independent client reads the same manifest from the same store.
	out, err := exec.Command("skopeo", "inspect", "--raw",
		fmt.Sprintf("containers-storage:[vfs@%s+%s]localhost/busybox-demo:1.0.0", store.GraphRoot(), store.RunRoot())).Output()
	if err != nil {
		t.Fatalf("skopeo inspect (install skopeo): %v", err)
	}
	var m struct {
		Layers []struct {
			Digest string `json:"digest"`
			Size   int64  `json:"size"`
		} `json:"layers"`
	}
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Layers) != len(rep.Layers) {
		t.Fatalf("skopeo sees %d layers, verify %d", len(m.Layers), len(rep.Layers))
	}
	for i, l := range m.Layers {
		if l.Digest != rep.Layers[i].Digest || l.Size != rep.Layers[i].Size {
			t.Errorf("layer %d: skopeo %s/%d, verify %s/%d", i, l.Digest, l.Size, rep.Layers[i].Digest, rep.Layers[i].Size)
		}
	}

	// Tamper with a file of the last layer on disk: verify names that layer.
	motd := findInLayers(t, store, "etc/motd")
	if err := os.WriteFile(motd, []byte("tampered\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err = oci.Verify(context.Background(), ref, oci.VerifyOptions{})
	if !errors.Is(err, errs.ErrIntegrity) {
		t.Fatalf("verify after tampering: want an integrity error, got %v", err)
	}
	last := len(rep.Layers) - 1
	if rep.OK || rep.Layers[last].OK || !rep.Layers[0].OK {
		t.Errorf("report: ok=%t layers=%+v", rep.OK, rep.Layers)
	}
	if want := fmt.Sprintf("layer %d %s", last, res.Layers[last].Digest); !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "etc/motd") {
		t.Errorf("error %q should name %q and the file", err, want)
	}
}

// findInLayers returns the path of name inside the vfs layer directory that
// holds it.
func findInLayers(t *testing.T, store storage.Store, name string) string {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(store.GraphRoot(), "vfs", "dir", "*", name))
	if len(matches) != 1 {
		t.Fatalf("want %s in exactly one layer, found %v", name, matches)
	}
	return matches[0]
}

func TestBuild_ReproducibleAcrossStores(t *testing.T) {
	a := buildertest.Busybox(t, buildertest.NewStore(t, "vfs"), nil)
	b := buildertest.Busybox(t, buildertest.NewStore(t, "overlay"), nil)
	if a.Digest != b.Digest || a.ID != b.ID {
		t.Fatalf("two fresh stores gave %s/%s and %s/%s", a.Digest, a.ID, b.Digest, b.ID)
	}
	// A different input gives a different image: the check can fail.
	c := buildertest.Busybox(t, buildertest.NewStore(t, "vfs"), map[string]string{"greeting": "something else"})
	if c.Digest == a.Digest {
		t.Fatalf("a different build argument gave the same digest %s", c.Digest)
	}
}

func TestBuild_CachedRebuildIsSameImage(t *testing.T) {
	store := buildertest.NewStore(t, "vfs")
	first := buildertest.Busybox(t, store, nil)
	start := time.Now()
	second := buildertest.Busybox(t, store, nil)
	if first.ID != second.ID || first.Digest != second.Digest {
		t.Fatalf("rebuild changed the image: %s -> %s", first.Digest, second.Digest)
	}
	t.Logf("cached rebuild took %s", time.Since(start))
}

func TestBuild_BadSourceLeavesStoreUntouched(t *testing.T) {
	buildertest.Builds(t)
	store := buildertest.NewStore(t, "vfs")
	def := buildertest.LoadBusybox(t, nil)
	native := "busybox-" + runtime.GOARCH
	for i := range def.Sources {
		if def.Sources[i].Name == native {
			def.Sources[i].SHA256 = strings.Repeat("0", 64) // what a wrong pin looks like
		}
	}
	_, err := builder.Build(context.Background(), def, builder.BuildOptions{Store: store, Fetcher: &source.Fetcher{CacheDir: t.TempDir()}, TmpDir: t.TempDir()})
	if !errors.Is(err, errs.ErrIntegrity) || !strings.Contains(err.Error(), `source "`+native+`"`) {
		t.Fatalf("want an integrity error naming the source, got %v", err)
	}
	imgs, err := store.Images()
	if err != nil {
		t.Fatal(err)
	}
	ctrs, _ := store.Containers()
	if len(imgs) != 0 || len(ctrs) != 0 {
		t.Fatalf("store changed: %d images, %d containers", len(imgs), len(ctrs))
	}
}

func TestParseReference_UnknownLocalImage(t *testing.T) {
	store := buildertest.NewStore(t, "vfs")
	_, err := oci.ParseReference("no-such-image:1", store)
	if !errors.Is(err, errs.ErrNotFound) {
		t.Fatalf("want errs.ErrNotFound, got %v", err)
	}
}

func TestVerify_OCILayoutWrittenBySkopeo(t *testing.T) {
	store := buildertest.NewStore(t, "vfs")
	res := buildertest.Busybox(t, store, nil)
	layout := filepath.Join(t.TempDir(), "layout")
	src := fmt.Sprintf("containers-storage:[vfs@%s+%s]%s", store.GraphRoot(), store.RunRoot(), res.Names[0])
	if out, err := exec.Command("skopeo", "copy", "--dest-compress", src, "oci:"+layout+":v1").CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	ref, err := oci.ParseReference("oci:"+layout+":v1", nil)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := oci.Verify(context.Background(), ref, oci.VerifyOptions{})
	if err != nil || !rep.OK {
		t.Fatalf("verify oci layout: %v", err)
	}
	// skopeo compressed the layers: blob digests differ, diffIDs are the build's.
	for i, l := range rep.Layers {
		if l.Digest == res.Layers[i].Digest || l.DiffID != res.Layers[i].DiffID || !strings.Contains(l.MediaType, "gzip") {
			t.Errorf("layer %d: %+v (built %+v)", i, l, res.Layers[i])
		}
	}
	// Corrupt one compressed blob in the layout: the layer is named.
	blob := filepath.Join(layout, "blobs", "sha256", strings.TrimPrefix(rep.Layers[1].Digest, "sha256:"))
	data, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(blob, data, 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err = oci.Verify(context.Background(), ref, oci.VerifyOptions{})
	if !errors.Is(err, errs.ErrIntegrity) || rep.Layers[1].OK || !rep.Layers[0].OK || !strings.Contains(err.Error(), "layer 1 "+rep.Layers[1].Digest) {
		t.Fatalf("corrupt blob: %v", err)
	}
}

func TestVerify_ExpectDigest(t *testing.T) {
	store := buildertest.NewStore(t, "vfs")
	res := buildertest.Busybox(t, store, nil)
	ref, err := oci.ParseReference(res.ID, store)
	if err != nil {
		t.Fatal(err)
	}
	other := "sha256:" + strings.Repeat("1", 64)
	_, err = oci.Verify(context.Background(), ref, oci.VerifyOptions{ExpectDigest: digest.Digest(other)})
	if !errors.Is(err, errs.ErrIntegrity) || !strings.Contains(err.Error(), "expected "+other+", got "+res.Digest) {
		t.Fatalf("got %v", err)
	}
}

// A tag holding {{image.id}} names the image by its own ID: the same
// inputs give the same tag, a change gives a new one, and the image built
// before keeps its tag while the rolling tag moves to the new image.
func TestBuild_TagDerivedFromTheImageID(t *testing.T) {
	buildertest.Builds(t)
	store := buildertest.NewStore(t, "vfs")
	build := func(greeting string) *builder.Result {
		def := buildertest.LoadBusybox(t, map[string]string{"greeting": greeting})
		def.Tags, def.RollingTags = []string{"1.0.0-" + images.ImageID}, []string{"1.0.0"}
		var out bytes.Buffer
		res, err := builder.Build(context.Background(), def, builder.BuildOptions{Store: store, Fetcher: &source.Fetcher{CacheDir: buildertest.SourceCache(t)}, Output: &out, TmpDir: t.TempDir()})
		if err != nil {
			t.Fatalf("build: %v\n%s", err, out.String())
		}
		return res
	}
	a := build("one")
	idTag := "1.0.0-" + a.ID[:12]
	if !slices.Contains(a.Tags, idTag) || !slices.Contains(a.Names, "localhost/busybox-demo:"+idTag) || !slices.Equal(a.RollingTags, []string{"1.0.0"}) {
		t.Fatalf("tags %v, names %v, rolling %v: want %s", a.Tags, a.Names, a.RollingTags, idTag)
	}
	if again := build("one"); !slices.Equal(again.Tags, a.Tags) {
		t.Errorf("the same inputs gave tags %v, then %v", a.Tags, again.Tags)
	}
	b := build("two")
	if slices.Contains(b.Tags, idTag) || b.ID == a.ID {
		t.Fatalf("a changed image kept the tag %s: %v", idTag, b.Tags)
	}
	for name, want := range map[string]string{"localhost/busybox-demo:" + idTag: a.ID, "localhost/busybox-demo:1.0.0": b.ID, "localhost/busybox-demo:1.0.0-" + b.ID[:12]: b.ID} {
		img, err := store.Image(name)
		if err != nil || img.ID != want {
			t.Errorf("%s: %v %v, want image %s", name, img, err, want)
		}
	}
}

// The base the build pulls and checks (base.image, pinned by base.digest)
// is the one it builds on: a BASE_IMAGE in a library caller's Args (Load
// refuses one in a definition) does not replace it.
func TestBuild_BaseImageArgumentIsTheBase(t *testing.T) {
	buildertest.Builds(t)
	store := buildertest.NewStore(t, "vfs")
	def := buildertest.LoadBusybox(t, nil)
	def.Args[images.BaseImageArg] = "localhost/not-the-base:1"
	var out bytes.Buffer
	res, err := builder.Build(context.Background(), def, builder.BuildOptions{Store: store, Fetcher: &source.Fetcher{CacheDir: buildertest.SourceCache(t)}, Output: &out, TmpDir: t.TempDir()})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out.String())
	}
	if res.Base.Ref != "scratch" {
		t.Errorf("base %+v, want scratch", res.Base)
	}
}
