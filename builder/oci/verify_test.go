package oci_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/builder/oci/ocitest"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// rewriteManifest edits the manifest of the single image in an OCI layout
// and points index.json at the edited copy.
func rewriteManifest(t *testing.T, dir string, edit func(m *imgspecv1.Manifest)) {
	t.Helper()
	var idx imgspecv1.Index
	readJSON(t, filepath.Join(dir, "index.json"), &idx)
	var m imgspecv1.Manifest
	readJSON(t, blobPath(dir, idx.Manifests[0].Digest), &m)
	edit(&m)
	raw, _ := json.Marshal(m)
	d := digest.FromBytes(raw)
	os.WriteFile(blobPath(dir, d), raw, 0o644)
	idx.Manifests[0].Digest, idx.Manifests[0].Size = d, int64(len(raw))
	out, _ := json.Marshal(idx)
	os.WriteFile(filepath.Join(dir, "index.json"), out, 0o644)
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatal(err)
	}
}

func blobPath(dir string, d digest.Digest) string {
	return filepath.Join(dir, "blobs", d.Algorithm().String(), d.Encoded())
}

// Verify catches what an OCI layout (or a registry) can lie about, exit 3,
// the thing named: a layer whose media type does not describe its bytes, a
// truncated config, and an index's child that is not what its digest says.
func TestVerify_LayoutLies(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts ocitest.Options
		lie  func(t *testing.T, dir string)
		want string
	}{
		{"gzip declared as plain tar", ocitest.Options{Layers: 2}, func(t *testing.T, dir string) {
			rewriteManifest(t, dir, func(m *imgspecv1.Manifest) { m.Layers[1].MediaType = imgspecv1.MediaTypeImageLayer })
		}, `says uncompressed, the blob is gzip`},
		{"text/html layer", ocitest.Options{Layers: 1}, func(t *testing.T, dir string) {
			rewriteManifest(t, dir, func(m *imgspecv1.Manifest) { m.Layers[0].MediaType = "text/html" })
		}, `media type "text/html" is not a layer media type`},
		{"plain tar declared as gzip", ocitest.Options{Layers: 1, Uncompressed: true}, func(t *testing.T, dir string) {
			rewriteManifest(t, dir, func(m *imgspecv1.Manifest) { m.Layers[0].MediaType = imgspecv1.MediaTypeImageLayerGzip })
		}, `says gzip, the blob is uncompressed`},
		{"truncated config", ocitest.Options{Layers: 1}, func(t *testing.T, dir string) {
			var idx imgspecv1.Index
			readJSON(t, filepath.Join(dir, "index.json"), &idx)
			var m imgspecv1.Manifest
			readJSON(t, blobPath(dir, idx.Manifests[0].Digest), &m)
			p := blobPath(dir, m.Config.Digest)
			data, _ := os.ReadFile(p)
			os.WriteFile(p, data[:len(data)/2], 0o644)
		}, "config sha256:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ref := ocitest.Layout(t, dir, "v1", tc.opts)
			if _, err := oci.Verify(context.Background(), ref, oci.VerifyOptions{}); err != nil {
				t.Fatalf("before the lie: %v", err)
			}
			tc.lie(t, dir)
			rep, err := oci.Verify(context.Background(), ref, oci.VerifyOptions{})
			if !errors.Is(err, errs.ErrIntegrity) || !strings.Contains(err.Error(), tc.want) || rep == nil || rep.OK {
				t.Fatalf("want an integrity error containing %q, got %v", tc.want, err)
			}
		})
	}
}

// An index in an OCI layout is verified child by child (it used to panic).
func TestVerify_LayoutIndex(t *testing.T) {
	dir := t.TempDir()
	ref := ocitest.Layout(t, dir, "multi", ocitest.Options{Layers: 1, Platforms: []string{"linux/amd64", "linux/arm64"}})
	rep, err := oci.Verify(context.Background(), ref, oci.VerifyOptions{})
	if err != nil || !rep.OK || !rep.Index || len(rep.Manifests) != 2 || rep.Manifests[1].Platform != "linux/arm64" {
		t.Fatalf("%+v %v", rep, err)
	}
}

// A manifest blob edited in place in an OCI layout no longer matches the
// digest index.json gives it.
func TestVerify_LayoutManifestEditedInPlace(t *testing.T) {
	dir := t.TempDir()
	ref := ocitest.Layout(t, dir, "v1", ocitest.Options{Layers: 1})
	var idx imgspecv1.Index
	readJSON(t, filepath.Join(dir, "index.json"), &idx)
	p := blobPath(dir, idx.Manifests[0].Digest)
	var m imgspecv1.Manifest
	readJSON(t, p, &m)
	m.Annotations = map[string]string{"edited": "in place"}
	raw, _ := json.Marshal(m)
	os.WriteFile(p, raw, 0o644)
	_, err := oci.Verify(context.Background(), ref, oci.VerifyOptions{})
	if !errors.Is(err, errs.ErrIntegrity) || !strings.Contains(err.Error(), "expected "+idx.Manifests[0].Digest.String()) {
		t.Fatalf("want an integrity error expecting %s, got %v", idx.Manifests[0].Digest, err)
	}
}

// A build attestation (buildx provenance, an SBOM) stores JSON as its
// "layer": it verifies, as long as the bytes are what the digests say.
func TestVerify_AttestationLayer(t *testing.T) {
	dir := t.TempDir()
	ref := ocitest.Layout(t, dir, "v1", ocitest.Options{Layers: 1, Uncompressed: true})
	rewriteManifest(t, dir, func(m *imgspecv1.Manifest) { m.Layers[0].MediaType = "application/vnd.in-toto+json" })
	if _, err := oci.Verify(context.Background(), ref, oci.VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
}

// An image name in a layout may contain ":" (c/image splits the path at the
// first one), and "@N" names the Nth manifest.
func TestVerify_LayoutNames(t *testing.T) {
	dir := t.TempDir()
	ocitest.Layout(t, dir, "alpine:3.19", ocitest.Options{Layers: 1})
	for _, s := range []string{"oci:" + dir + ":alpine:3.19", "oci:" + dir + ":@0"} {
		ref, err := oci.ParseReference(s, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := oci.Verify(context.Background(), ref, oci.VerifyOptions{}); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
}
