package sbom

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/oci/layout"
	"go.podman.io/image/v5/types"
)

// entry is one tar entry of a hand-made layer. A regular file has Body, or
// Content of Size bytes for large streamed files.
type entry struct {
	Name    string
	Body    string
	Type    byte // 0: a regular file
	Link    string
	Content io.Reader
	Size    int64
}

func fileEntry(name, body string) entry { return entry{Name: name, Body: body} }
func dir(name string) entry             { return entry{Name: name, Type: tar.TypeDir} }
func whiteout(p string) entry           { d, b := filepath.Split(p); return fileEntry(d+".wh."+b, "") }
func opaque(d string) entry             { return fileEntry(strings.TrimSuffix(d, "/")+"/.wh..wh..opq", "") }
func symlink(name, to string) entry     { return entry{Name: name, Type: tar.TypeSymlink, Link: to} }
func hardlink(name, to string) entry    { return entry{Name: name, Type: tar.TypeLink, Link: to} }

// testImage describes a synthetic image written as an OCI layout.
type testImage struct {
	Layers  [][]entry
	Created *time.Time
	Labels  map[string]string
	// Plain writes uncompressed layers; default gzip.
	Plain bool
}

// writeLayout writes img into a new OCI layout under dir, tagged "test".
func writeLayout(t testing.TB, dir string, img testImage) types.ImageReference {
	t.Helper()
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
	var layers []imgspecv1.Descriptor
	var diffIDs []digest.Digest
	for _, l := range img.Layers {
		desc, diffID := writeLayer(t, blobs, l, !img.Plain)
		layers = append(layers, desc)
		diffIDs = append(diffIDs, diffID)
	}
	cfg, _ := json.Marshal(imgspecv1.Image{
		Created:  img.Created,
		Platform: imgspecv1.Platform{OS: "linux", Architecture: "amd64"},
		Config:   imgspecv1.ImageConfig{Labels: img.Labels},
		RootFS:   imgspecv1.RootFS{Type: "layers", DiffIDs: diffIDs},
	})
	cd := put(cfg)
	m, _ := json.Marshal(imgspecv1.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageManifest,
		Config: imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageConfig, Digest: cd, Size: int64(len(cfg))},
		Layers: layers,
	})
	md := put(m)
	idx, _ := json.Marshal(imgspecv1.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageIndex,
		Manifests: []imgspecv1.Descriptor{{MediaType: imgspecv1.MediaTypeImageManifest, Digest: md, Size: int64(len(m)),
			Annotations: map[string]string{imgspecv1.AnnotationRefName: "test"}}}})
	if err := os.WriteFile(filepath.Join(dir, "index.json"), idx, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	ref, err := layout.NewReference(dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// writeLayer streams one layer into the blob folder (so that a 1 GiB file
// never sits in memory) and returns its descriptor and diff ID.
func writeLayer(t testing.TB, blobs string, entries []entry, compress bool) (imgspecv1.Descriptor, digest.Digest) {
	t.Helper()
	tmp, err := os.CreateTemp(blobs, "layer-*")
	if err != nil {
		t.Fatal(err)
	}
	defer tmp.Close()
	blobHash, diffHash := sha256.New(), sha256.New()
	var out io.Writer = io.MultiWriter(tmp, blobHash)
	var zw *gzip.Writer
	if compress {
		zw, _ = gzip.NewWriterLevel(out, gzip.BestSpeed)
		out = zw
	}
	tw := tar.NewWriter(io.MultiWriter(out, diffHash))
	for _, e := range entries {
		h := &tar.Header{Name: e.Name, Typeflag: e.Type, Linkname: e.Link, Mode: 0o644, ModTime: time.Unix(1700000000, 0)}
		var body io.Reader
		switch e.Type {
		case 0, tar.TypeReg:
			h.Typeflag = tar.TypeReg
			body, h.Size = strings.NewReader(e.Body), int64(len(e.Body))
			if e.Content != nil {
				body, h.Size = e.Content, e.Size
			}
		case tar.TypeDir:
			h.Mode = 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if body != nil {
			if _, err := io.Copy(tw, body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	mt := imgspecv1.MediaTypeImageLayer
	if zw != nil {
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		mt = imgspecv1.MediaTypeImageLayerGzip
	}
	st, err := tmp.Stat()
	if err != nil {
		t.Fatal(err)
	}
	d := digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(blobHash.Sum(nil)))
	if err := os.Rename(tmp.Name(), filepath.Join(blobs, d.Encoded())); err != nil {
		t.Fatal(err)
	}
	return imgspecv1.Descriptor{MediaType: mt, Digest: d, Size: st.Size()},
		digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(diffHash.Sum(nil)))
}

// zeros reads as an endless stream of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
