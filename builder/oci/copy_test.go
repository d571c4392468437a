package oci_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/agentforge/agentforge/builder/oci"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/oci/layout"
	"go.podman.io/image/v5/types"
)

// A copy into a Cancelable OCI layout stops taking a layer soon after its
// context is cancelled, not once the whole layer has gone through the
// compressor, which is where c/image next looks at the context. The layer
// is a sparse 4 GiB file of zeros; the source counts what is read of it.
func TestCancelable_StopsALayerMidway(t *testing.T) {
	const size = 4 << 30
	src := hugeLayout(t, size)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	counted := &countingRef{ImageReference: src, after: 64 << 20, then: cancel}
	dest, err := layout.NewReference(t.TempDir(), "x")
	if err != nil {
		t.Fatal(err)
	}
	// Without Cancelable the copy read all 4 GiB (20 s here) and failed on
	// the digest.
	_, err = oci.Copy(ctx, oci.Cancelable(dest), counted, &copy.Options{}, nil, "")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want the copy cancelled", err)
	}
	if n := counted.read.Load(); n >= size/4 {
		t.Errorf("%d bytes of the layer read after the cancel at %d: the copy went on", n, counted.after)
	}
}

// hugeLayout writes an OCI layout whose one layer is an uncompressed,
// sparse file of size zeros (its digest is not checked: the copy never
// reads it to the end).
func hugeLayout(t *testing.T, size int64) types.ImageReference {
	t.Helper()
	dir := t.TempDir()
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		t.Fatal(err)
	}
	put := func(data []byte) digest.Digest {
		d := digest.FromBytes(data)
		if err := os.WriteFile(filepath.Join(blobs, d.Encoded()), data, 0o644); err != nil {
			t.Fatal(err)
		}
		return d
	}
	layer := digest.FromString("a sparse layer")
	f, err := os.Create(filepath.Join(blobs, layer.Encoded()))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	cfg, _ := json.Marshal(imgspecv1.Image{Platform: imgspecv1.Platform{OS: "linux", Architecture: "amd64"},
		RootFS: imgspecv1.RootFS{Type: "layers", DiffIDs: []digest.Digest{layer}}})
	m, _ := json.Marshal(imgspecv1.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageManifest,
		Config: imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageConfig, Digest: put(cfg), Size: int64(len(cfg))},
		Layers: []imgspecv1.Descriptor{{MediaType: imgspecv1.MediaTypeImageLayer, Digest: layer, Size: size}}})
	md := put(m)
	idx, _ := json.Marshal(imgspecv1.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageIndex,
		Manifests: []imgspecv1.Descriptor{{MediaType: imgspecv1.MediaTypeImageManifest, Digest: md, Size: int64(len(m)),
			Annotations: map[string]string{imgspecv1.AnnotationRefName: "huge"}}}})
	os.WriteFile(filepath.Join(dir, "index.json"), idx, 0o644)
	os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
	ref, err := layout.NewReference(dir, "huge")
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// countingRef counts the bytes read of its blobs, and calls then once
// after of them.
type countingRef struct {
	types.ImageReference
	after int64
	then  func()
	read  atomic.Int64
}

func (r *countingRef) NewImageSource(ctx context.Context, sys *types.SystemContext) (types.ImageSource, error) {
	s, err := r.ImageReference.NewImageSource(ctx, sys)
	if err != nil {
		return nil, err
	}
	return countingSource{s, r}, nil
}

type countingSource struct {
	types.ImageSource
	r *countingRef
}

func (s countingSource) GetBlob(ctx context.Context, info types.BlobInfo, cache types.BlobInfoCache) (io.ReadCloser, int64, error) {
	rc, n, err := s.ImageSource.GetBlob(ctx, info, cache)
	if err != nil {
		return nil, 0, err
	}
	return countingReader{rc, s.r}, n, nil
}

type countingReader struct {
	io.ReadCloser
	r *countingRef
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	if total := c.r.read.Add(int64(n)); total >= c.r.after && total-int64(n) < c.r.after {
		c.r.then()
	}
	return n, err
}
