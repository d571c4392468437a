// Package ocitest makes synthetic images for tests, in Go, without
// building anything: OCI layouts of random layers (one image, or a
// multi-platform index), and a copy of such an image in a containers-storage
// store. Models: go-containerregistry's pkg/v1/random.
package ocitest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/agentforge/agentforge/builder/oci"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/oci/layout"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
)

// Options describe a synthetic image.
type Options struct {
	// Layers is the number of layers (default 3).
	Layers int
	// Size is each layer's file size in bytes, random content (default 64 KiB).
	Size int
	// Seed makes the content; the same options give the same image.
	Seed uint64
	// Uncompressed writes plain tar layers instead of gzip.
	Uncompressed bool
	// Platforms, when more than one, make an index of one image each
	// ("linux/amd64"); default: one image for linux/amd64.
	Platforms []string
}

// Layout writes the image (or index) described by o into a new OCI layout
// under dir, tagged tag, and returns the layout's reference.
func Layout(t testing.TB, dir, tag string, o Options) types.ImageReference {
	t.Helper()
	w := &writer{dir: dir}
	if o.Layers == 0 {
		o.Layers = 3
	}
	if o.Size == 0 {
		o.Size = 64 << 10
	}
	platforms := o.Platforms
	if len(platforms) == 0 {
		platforms = []string{"linux/amd64"}
	}
	var children []imgspecv1.Descriptor
	for i, s := range platforms {
		p, err := oci.ParsePlatform(s)
		if err != nil {
			t.Fatal(err)
		}
		m, err := w.image(o, o.Seed+uint64(i)*1000, p)
		if err != nil {
			t.Fatal(err)
		}
		m.Platform = &imgspecv1.Platform{OS: p.OS, Architecture: p.Arch, Variant: p.Variant}
		children = append(children, m)
	}
	top := children[0]
	top.Platform = nil
	if len(children) > 1 {
		idx, _ := json.Marshal(imgspecv1.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageIndex, Manifests: children})
		var err error
		if top, err = w.blob(imgspecv1.MediaTypeImageIndex, idx); err != nil {
			t.Fatal(err)
		}
	}
	top.Annotations = map[string]string{imgspecv1.AnnotationRefName: tag}
	outer, _ := json.Marshal(imgspecv1.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageIndex, Manifests: []imgspecv1.Descriptor{top}})
	if err := os.WriteFile(filepath.Join(dir, "index.json"), outer, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	ref, err := layout.NewReference(dir, tag)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

type writer struct{ dir string }

// blob writes data under blobs/sha256 and returns its descriptor.
func (w *writer) blob(mediaType string, data []byte) (imgspecv1.Descriptor, error) {
	d := digest.FromBytes(data)
	p := filepath.Join(w.dir, "blobs", "sha256", d.Encoded())
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return imgspecv1.Descriptor{}, err
	}
	return imgspecv1.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data))}, os.WriteFile(p, data, 0o644)
}

// image writes one image's layers, config and manifest.
func (w *writer) image(o Options, seed uint64, p oci.Platform) (imgspecv1.Descriptor, error) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var layers []imgspecv1.Descriptor
	var diffIDs []digest.Digest
	for i := 0; i < o.Layers; i++ {
		content := make([]byte, o.Size)
		for j := range content {
			content[j] = byte(rng.Uint32())
		}
		var tarBuf bytes.Buffer
		tw := tar.NewWriter(&tarBuf)
		name := fmt.Sprintf("layer%d/data-%s", i, p.Arch)
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
			return imgspecv1.Descriptor{}, err
		}
		tw.Write(content)
		tw.Close()
		diffIDs = append(diffIDs, digest.FromBytes(tarBuf.Bytes()))
		data, mt := tarBuf.Bytes(), imgspecv1.MediaTypeImageLayer
		if !o.Uncompressed {
			var gz bytes.Buffer
			zw := gzip.NewWriter(&gz)
			zw.Write(data)
			zw.Close()
			data, mt = gz.Bytes(), imgspecv1.MediaTypeImageLayerGzip
		}
		d, err := w.blob(mt, data)
		if err != nil {
			return imgspecv1.Descriptor{}, err
		}
		layers = append(layers, d)
	}
	cfg, _ := json.Marshal(imgspecv1.Image{
		Platform: imgspecv1.Platform{OS: p.OS, Architecture: p.Arch, Variant: p.Variant},
		Config:   imgspecv1.ImageConfig{Cmd: []string{"/bin/sh"}, Labels: map[string]string{"seed": fmt.Sprint(seed)}},
		RootFS:   imgspecv1.RootFS{Type: "layers", DiffIDs: diffIDs},
	})
	cd, err := w.blob(imgspecv1.MediaTypeImageConfig, cfg)
	if err != nil {
		return imgspecv1.Descriptor{}, err
	}
	m, _ := json.Marshal(imgspecv1.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageManifest, Config: cd, Layers: layers})
	return w.blob(imgspecv1.MediaTypeImageManifest, m)
}

// freeMu serializes storage.Store.Free, which edits a package-global list
// without a lock.
var freeMu sync.Mutex

// Store opens a fresh containers-storage store (vfs) in a temporary
// directory, shut down when the test ends. It needs root.
func Store(t testing.TB) storage.Store {
	t.Helper()
	root := t.TempDir()
	s, err := storage.GetStore(storage.StoreOptions{GraphRoot: filepath.Join(root, "graph"), RunRoot: filepath.Join(root, "run"), GraphDriverName: "vfs"})
	if err != nil {
		t.Fatalf("open storage (needs root): %v", err)
	}
	t.Cleanup(func() {
		s.Shutdown(true)
		freeMu.Lock()
		s.Free()
		freeMu.Unlock()
	})
	return s
}

// Local copies the image at src into store under name (e.g.
// "localhost/app:1") and returns the local reference. Storage keeps layers
// uncompressed, as an image built by buildah.
func Local(t testing.TB, store storage.Store, src types.ImageReference, name string) types.ImageReference {
	t.Helper()
	dst, err := istorage.Transport.ParseStoreReference(store, name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := oci.Copy(context.Background(), dst, src, &copy.Options{}, nil, ""); err != nil {
		t.Fatalf("copy into storage: %v", err)
	}
	img, err := store.Image(name)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := istorage.Transport.NewStoreReference(store, nil, img.ID)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}
