package sbom

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
)

// Published returns a copy of doc that describes the image under the
// manifest digest d, the one registries serve once it is published.
// Publishing compresses the layers, which changes the manifest digest but
// not what is in the image (the config, and so the layers' diffIDs, stay),
// so every package doc lists is still there; only the image's own
// identity moves. The described container package's SHA256 checksum, its
// pkg:oci URL's version and the document namespace name d instead of the
// local manifest digest, and the package's comment records the local one.
// doc itself is not changed. A document that describes no container
// package (not one Generate made) is an error, as is a d that is not a
// sha256 digest.
func Published(doc *Document, d digest.Digest) (*Document, error) {
	if err := d.Validate(); err != nil || d.Algorithm() != digest.SHA256 {
		return nil, fmt.Errorf("sbom: published digest %q: want sha256:<64 hex>", d)
	}
	if doc == nil {
		return nil, fmt.Errorf("sbom: no document")
	}
	out := *doc
	out.Packages = slices.Clone(doc.Packages)
	out.Relationships = slices.Clone(doc.Relationships)
	img := out.described()
	if img == nil {
		return nil, fmt.Errorf("sbom: %s describes no container image", doc.Name)
	}
	i := slices.IndexFunc(img.Checksums, func(c Checksum) bool { return c.Algorithm == "SHA256" })
	if i < 0 {
		return nil, fmt.Errorf("sbom: %s: the image package has no SHA256 checksum", doc.Name)
	}
	local := digest.NewDigestFromEncoded(digest.SHA256, img.Checksums[i].ChecksumValue)
	if local == d {
		return &out, nil
	}
	img.Checksums = slices.Clone(img.Checksums)
	img.Checksums[i].ChecksumValue = d.Encoded()
	img.ExternalRefs = slices.Clone(img.ExternalRefs)
	for j, r := range img.ExternalRefs {
		if r.ReferenceType == "purl" {
			img.ExternalRefs[j].ReferenceLocator = strings.Replace(r.ReferenceLocator, "@"+escape(local.String()), "@"+escape(d.String()), 1)
		}
	}
	img.Comment = strings.Replace(img.Comment, "manifest digest "+local.String(), "manifest digest "+d.String()+" (published; built as the local manifest "+local.String()+")", 1)
	out.DocumentNamespace = strings.TrimSuffix(doc.DocumentNamespace, local.Encoded()) + d.Encoded()
	return &out, nil
}

// described is the container package the document describes, or nil.
func (d *Document) described() *Package {
	for _, r := range d.Relationships {
		if r.SPDXElementID != DocumentID || r.RelationshipType != RelDescribes {
			continue
		}
		if p := d.Package(r.RelatedSPDXElement); p != nil && p.PrimaryPackagePurpose == PurposeContainer {
			return p
		}
	}
	return nil
}

// Described returns the manifest digest by which an SBOM agentforge
// generated names its image (the described container package's SHA256);
// ok is false for any other document: another tool's, or one edited since
// by another tool (it would not come back byte for byte from a parse into
// Document, which would drop what it added).
func Described(raw []byte) (d digest.Digest, ok bool) {
	doc, ok := ours(raw)
	if !ok {
		return "", false
	}
	img := doc.described()
	if img == nil {
		return "", false
	}
	for _, c := range img.Checksums {
		if c.Algorithm == "SHA256" {
			return digest.NewDigestFromEncoded(digest.SHA256, c.ChecksumValue), true
		}
	}
	return "", false
}

// ours parses raw when it is an unedited document agentforge generated.
func ours(raw []byte) (*Document, bool) {
	var doc Document
	if err := json.Unmarshal(raw, &doc); err != nil || !slices.ContainsFunc(doc.CreationInfo.Creators, func(c string) bool { return strings.HasPrefix(c, "Tool: agentforge") }) {
		return nil, false
	}
	if again, err := doc.JSON(); err != nil || !bytes.Equal(bytes.TrimSpace(again), bytes.TrimSpace(raw)) {
		return nil, false
	}
	return &doc, true
}

// PublishedJSON is Published for a serialized document, for the image
// built as the local manifest local and published as d: an SBOM
// agentforge generated (see Described) must describe local (an SBOM of
// another image is an error: attested, it would pass another image's
// packages off as this one's) and is rebound to d; any other document is
// returned as it is. nil stays nil.
func PublishedJSON(raw []byte, local, d digest.Digest) ([]byte, error) {
	if raw == nil {
		return nil, nil
	}
	doc, ok := ours(raw)
	if !ok {
		return raw, nil
	}
	if got, _ := Described(raw); got != local {
		return nil, fmt.Errorf("sbom: the SBOM describes the image %s, not %s", got, local)
	}
	pub, err := Published(doc, d)
	if err != nil {
		return nil, err
	}
	return pub.JSON()
}
