package sbom

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"reflect"
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

// Described returns the manifest digest of the image an SBOM agentforge
// generated describes, read from its content, however it is encoded
// (indented or not, keys in any order, characters escaped, fields another
// tool added): a document is agentforge's when its creators name the tool
// agentforge, and the image it describes is the container package its
// document DESCRIBES, by that package's SHA256 checksum and pkg:oci
// version, and the digest its namespace ends with. ok is false for any
// other document (another tool's, whose identities differ: an image ID, an
// index digest; those are taken as given). A document that names two
// different images, that repeats a key (two parsers could read two
// documents), or whose identity is malformed is an error.
func Described(raw []byte) (d digest.Digest, ok bool, err error) {
	if err := uniqueKeys(raw); err != nil {
		return "", false, fmt.Errorf("sbom: %w", err)
	}
	var doc struct {
		Document
		DocumentDescribes []string `json:"documentDescribes"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil || !slices.ContainsFunc(doc.CreationInfo.Creators, isAgentforge) {
		return "", false, nil
	}
	var claims []digest.Digest
	claim := func(what, s string) error {
		c, err := digest.Parse(s)
		if err != nil || c.Algorithm() != digest.SHA256 {
			return fmt.Errorf("sbom: %s %q is not a sha256 manifest digest", what, s)
		}
		if !slices.Contains(claims, c) {
			claims = append(claims, c)
		}
		return nil
	}
	described := slices.Clone(doc.DocumentDescribes)
	for _, r := range doc.Relationships {
		if r.SPDXElementID == DocumentID && r.RelationshipType == RelDescribes {
			described = append(described, r.RelatedSPDXElement)
		}
	}
	for i := range doc.Packages {
		p := &doc.Packages[i]
		purl := p.PURL()
		if !slices.Contains(described, p.SPDXID) || p.PrimaryPackagePurpose != PurposeContainer && !strings.HasPrefix(purl, "pkg:oci/") {
			continue
		}
		for _, c := range p.Checksums {
			if strings.EqualFold(c.Algorithm, "SHA256") {
				if err := claim("the image's SHA256 checksum", "sha256:"+strings.ToLower(c.ChecksumValue)); err != nil {
					return "", false, err
				}
			}
		}
		if v, ok := purlVersion(purl); ok && strings.HasPrefix(purl, "pkg:oci/") {
			if err := claim("the image's package URL version", v); err != nil {
				return "", false, err
			}
		}
	}
	if len(claims) == 0 {
		return "", false, nil // describes no image: nothing to compare
	}
	// agentforge's namespaces end with the image's digest (see Generate).
	if tail := doc.DocumentNamespace[strings.LastIndex(doc.DocumentNamespace, "/")+1:]; len(tail) == 64 {
		if c := digest.NewDigestFromEncoded(digest.SHA256, tail); c.Validate() == nil && !slices.Contains(claims, c) {
			claims = append(claims, c)
		}
	}
	if len(claims) > 1 {
		var names []string
		for _, c := range claims {
			names = append(names, c.String())
		}
		return "", false, fmt.Errorf("sbom: the document names several images (%s): it cannot be told which it describes", strings.Join(names, ", "))
	}
	return claims[0], true, nil
}

// isAgentforge says whether an SPDX creator is agentforge (any version).
func isAgentforge(creator string) bool {
	name, _, _ := strings.Cut(strings.TrimSpace(strings.TrimPrefix(creator, "Tool:")), "-")
	return strings.HasPrefix(creator, "Tool:") && strings.TrimSpace(name) == "agentforge"
}

// purlVersion is a package URL's version, unescaped ("" and false when it
// has none).
func purlVersion(purl string) (string, bool) {
	_, rest, ok := strings.Cut(purl, "@")
	if !ok {
		return "", false
	}
	rest, _, _ = strings.Cut(rest, "?")
	rest, _, _ = strings.Cut(rest, "#")
	v, err := url.PathUnescape(rest)
	if err != nil {
		return rest, true // compared as written: not a digest, refused
	}
	return v, true
}

// uniqueKeys refuses JSON in which an object repeats a key (compared
// without case, as encoding/json matches fields): parsers disagree on
// which one counts.
func uniqueKeys(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	type frame struct {
		object bool
		keys   map[string]bool
		key    bool // the next string token is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return nil // not JSON: others say so
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				if top != nil && top.object {
					top.key = true
				}
				stack = append(stack, &frame{object: t == '{', keys: map[string]bool{}, key: t == '{'})
			case '}', ']':
				stack = stack[:len(stack)-1]
			}
			continue
		case string:
			if top != nil && top.object && top.key {
				k := strings.ToLower(t)
				if top.keys[k] {
					return fmt.Errorf("the key %q appears twice in one object", t)
				}
				top.keys[k] = true
				top.key = false
				continue
			}
		}
		if top != nil && top.object {
			top.key = true
		}
	}
}

// ours parses raw when it is a document agentforge generated whose content
// (whatever its encoding) is exactly what Document holds, so that
// re-encoding it loses nothing.
func ours(raw []byte) (*Document, bool) {
	if _, ok, err := Described(raw); err != nil || !ok {
		return nil, false
	}
	var doc Document
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, false
	}
	again, err := doc.JSON()
	if err != nil || !sameJSON(again, raw) {
		return nil, false
	}
	return &doc, true
}

// sameJSON reports whether a and b hold the same JSON value (numbers
// compared as written).
func sameJSON(a, b []byte) bool {
	decode := func(raw []byte) (any, bool) {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) != nil || dec.More() {
			return nil, false
		}
		return v, true
	}
	x, ok1 := decode(a)
	y, ok2 := decode(b)
	return ok1 && ok2 && reflect.DeepEqual(x, y)
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
	got, described, err := Described(raw)
	if err != nil {
		return nil, err
	}
	if described && got != local {
		return nil, fmt.Errorf("sbom: the SBOM describes the image %s, not %s", got, local)
	}
	doc, ok := ours(raw)
	if !ok {
		return raw, nil // another tool's, or edited by one: as given
	}
	pub, err := Published(doc, d)
	if err != nil {
		return nil, err
	}
	return pub.JSON()
}
