package oci_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/builder/oci/ocitest"
	"github.com/opencontainers/go-digest"
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

// hugeLayout writes an OCI layout of one uncompressed layer, then makes
// that layer's file size bytes long, a sparse file of zeros after the tar
// (its digest and size are not checked: the copy never gets to the end).
func hugeLayout(t *testing.T, size int64) types.ImageReference {
	t.Helper()
	dir := t.TempDir()
	ref := ocitest.Layout(t, dir, "huge", ocitest.Options{Layers: 1, Size: 1, Uncompressed: true})
	_, layers, err := oci.Layers(context.Background(), nil, ref)
	if err != nil {
		t.Fatal(err)
	}
	d := digest.Digest(layers[0].Digest)
	if err := os.Truncate(filepath.Join(dir, "blobs", d.Algorithm().String(), d.Encoded()), size); err != nil {
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
