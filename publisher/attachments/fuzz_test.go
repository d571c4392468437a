package attachments

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker/reference"
)

// A tag-schema index a registry serves (sha256-<hex>) is read with
// parseReferrers: it is an error, or an index whose every entry is a
// digest with a size, which everything that follows the index then uses
// without a check of its own (the attachment tags of each entry, a
// reference by digest, the digest's parts, the mirror's merged index).
// An entry whose digest had no ':' crashed mirror; its input is kept under
// testdata/fuzz/FuzzTagSchemaIndex.
func FuzzTagSchemaIndex(f *testing.F) {
	d := digest.FromString("referrer").String()
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + d + `","size":512,"artifactType":"application/spdx+json","annotations":{"a":"b"}}]}`))
	f.Add([]byte(`{"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"digest":"abc","size":1}]}`))
	f.Add([]byte(`{"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"digest":"md5:d41d8cd98f00b204e9800998ecf8427e","size":1}]}`))
	f.Add([]byte(`{"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"digest":"` + d + `"}]}`))
	f.Add([]byte(`{"mediaType":"application/vnd.oci.image.index.v1+json","manifests":null}`))
	f.Add([]byte(`{"mediaType":"application/vnd.oci.image.manifest.v1+json"}`))
	f.Add([]byte(`not json`))
	repo, err := reference.ParseNormalizedNamed("registry.example/agents/agent")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		idx, err := parseReferrers(raw, repo)
		if err != nil {
			if !strings.Contains(err.Error(), repo.String()) {
				t.Fatalf("the error does not name the index: %v", err)
			}
			return
		}
		for _, m := range idx.Manifests {
			if _, err := reference.WithDigest(repo, m.Digest); err != nil {
				t.Fatalf("entry %q: not a digest reference: %v", m.Digest, err)
			}
			if m.Digest.Algorithm() == digest.SHA256 {
				if _, err := ReferrersTag(m.Digest); err != nil {
					t.Fatalf("entry %q: %v", m.Digest, err)
				}
			}
		}
		merged, err := newReferrersIndex(idx, append(MissingManifests(nil, idx.Manifests), imgspecv1.Descriptor{Digest: digest.FromString("x"), Size: 1}))
		if err != nil {
			t.Fatal(err)
		}
		if again, err := parseReferrers(merged, repo); err != nil || len(again.Manifests) != len(idx.Manifests)+1 {
			t.Fatalf("the merged index does not read back: %v", err)
		}
		_ = json.Valid(merged)
	})
}
