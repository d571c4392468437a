package sbom

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// SPDX 2.3 constants used in every document.
const (
	SPDXVersion = "SPDX-2.3"
	DataLicense = "CC0-1.0"
	DocumentID  = "SPDXRef-DOCUMENT"
	// NoAssertion is SPDX's "nothing is claimed" value.
	NoAssertion = "NOASSERTION"
	// MediaType is the media type of an SPDX JSON document (for an OCI
	// artifact or referrer carrying it).
	MediaType = "application/spdx+json"
	// PredicateType is the in-toto predicate type of an SPDX document, as
	// cosign attest --type spdxjson writes it.
	PredicateType = "https://spdx.dev/Document"
)

// Package purposes (SPDX 2.3 primaryPackagePurpose).
const (
	PurposeContainer       = "CONTAINER"
	PurposeOperatingSystem = "OPERATING-SYSTEM"
	PurposeApplication     = "APPLICATION"
	PurposeLibrary         = "LIBRARY"
	PurposeSource          = "SOURCE"
	PurposeArchive         = "ARCHIVE"
	PurposeFile            = "FILE"
	PurposeInstall         = "INSTALL"
	PurposeOther           = "OTHER"
)

// Relationship types used in the documents this package writes.
const (
	RelDescribes     = "DESCRIBES"
	RelContains      = "CONTAINS"
	RelGeneratedFrom = "GENERATED_FROM"
	RelDescendantOf  = "DESCENDANT_OF"
)

// Document is an SPDX 2.3 document in its JSON form. Marshal it with
// Document.JSON (indented, stable) or encoding/json.
type Document struct {
	SPDXVersion       string         `json:"spdxVersion"`
	DataLicense       string         `json:"dataLicense"`
	SPDXID            string         `json:"SPDXID"`
	Name              string         `json:"name"`
	DocumentNamespace string         `json:"documentNamespace"`
	CreationInfo      CreationInfo   `json:"creationInfo"`
	Comment           string         `json:"comment,omitempty"`
	Packages          []Package      `json:"packages"`
	Relationships     []Relationship `json:"relationships"`
}

// CreationInfo says who made the document and when.
type CreationInfo struct {
	Created            string   `json:"created"`
	Creators           []string `json:"creators"`
	LicenseListVersion string   `json:"licenseListVersion,omitempty"`
	Comment            string   `json:"comment,omitempty"`
}

// Package is an SPDX package. Files are never analysed (FilesAnalyzed is
// always false), so no verification code is needed.
type Package struct {
	Name                  string        `json:"name"`
	SPDXID                string        `json:"SPDXID"`
	VersionInfo           string        `json:"versionInfo,omitempty"`
	Supplier              string        `json:"supplier,omitempty"`
	Originator            string        `json:"originator,omitempty"`
	DownloadLocation      string        `json:"downloadLocation"`
	FilesAnalyzed         bool          `json:"filesAnalyzed"`
	Checksums             []Checksum    `json:"checksums,omitempty"`
	Homepage              string        `json:"homepage,omitempty"`
	SourceInfo            string        `json:"sourceInfo,omitempty"`
	LicenseConcluded      string        `json:"licenseConcluded"`
	LicenseDeclared       string        `json:"licenseDeclared"`
	CopyrightText         string        `json:"copyrightText"`
	Summary               string        `json:"summary,omitempty"`
	Comment               string        `json:"comment,omitempty"`
	ExternalRefs          []ExternalRef `json:"externalRefs,omitempty"`
	PrimaryPackagePurpose string        `json:"primaryPackagePurpose,omitempty"`
}

// Checksum is an SPDX checksum ("SHA256", "SHA1", ...; lower-case hex).
type Checksum struct {
	Algorithm     string `json:"algorithm"`
	ChecksumValue string `json:"checksumValue"`
}

// ExternalRef points from a package to an outside identifier, here a
// package URL ("PACKAGE-MANAGER", "purl", "pkg:deb/...").
type ExternalRef struct {
	ReferenceCategory string `json:"referenceCategory"`
	ReferenceType     string `json:"referenceType"`
	ReferenceLocator  string `json:"referenceLocator"`
}

// Relationship links two SPDX elements.
type Relationship struct {
	SPDXElementID      string `json:"spdxElementId"`
	RelationshipType   string `json:"relationshipType"`
	RelatedSPDXElement string `json:"relatedSpdxElement"`
}

// PURL returns the package's first package URL, or "".
func (p Package) PURL() string {
	for _, r := range p.ExternalRefs {
		if r.ReferenceType == "purl" {
			return r.ReferenceLocator
		}
	}
	return ""
}

// Package returns the package with the given SPDXID, or nil.
func (d *Document) Package(id string) *Package {
	for i := range d.Packages {
		if d.Packages[i].SPDXID == id {
			return &d.Packages[i]
		}
	}
	return nil
}

// JSON returns the document as indented JSON ending in a newline. The same
// document always gives the same bytes.
func (d *Document) JSON() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		return nil, fmt.Errorf("encode SPDX document: %w", err)
	}
	return buf.Bytes(), nil
}

// Write validates doc and writes it as JSON to path (conventionally
// "<report>.spdx.json"), atomically: a reader never sees half a document.
// WriteFiles writes the SBOM of one image to path, or, for a
// multi-platform image, each platform's to path with the platform added
// before the extension (sbom.spdx.json, linux/arm64:
// sbom-linux-arm64.spdx.json). docs maps platforms to documents; the key
// "" is a single image. It returns the files written, in platform order.
func WriteFiles(path string, docs map[string]*Document) ([]string, error) {
	if doc, ok := docs[""]; ok && len(docs) == 1 {
		return []string{path}, Write(path, doc)
	}
	var out []string
	for _, platform := range slices.Sorted(maps.Keys(docs)) {
		p := PlatformPath(path, platform)
		if err := Write(p, docs[platform]); err != nil {
			return out, err
		}
		out = append(out, p)
	}
	return out, nil
}

// PlatformPath is path with the platform added before its extension.
func PlatformPath(path, platform string) string {
	base, ext := path, ""
	for _, e := range []string{".spdx.json", ".json"} {
		if strings.HasSuffix(path, e) {
			base, ext = strings.TrimSuffix(path, e), e
			break
		}
	}
	return base + "-" + strings.ReplaceAll(platform, "/", "-") + ext
}

func Write(path string, doc *Document) error {
	if doc == nil {
		return fmt.Errorf("write SBOM %s: no document", path)
	}
	if err := doc.Validate(); err != nil {
		return err
	}
	data, err := doc.JSON()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write SBOM %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write SBOM %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write SBOM %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("write SBOM %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write SBOM %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write SBOM %s: %w", path, err)
	}
	return nil
}

var (
	idPattern       = regexp.MustCompile(`^SPDXRef-[A-Za-z0-9.-]+$`)
	hexPattern      = regexp.MustCompile(`^[0-9a-f]+$`)
	checksumLengths = map[string]int{"SHA1": 40, "SHA256": 64, "SHA512": 128, "MD5": 32}
	relTypes        = map[string]bool{RelDescribes: true, RelContains: true, RelGeneratedFrom: true, RelDescendantOf: true,
		"DEPENDS_ON": true, "DESCRIBED_BY": true, "CONTAINED_BY": true, "ANCESTOR_OF": true, "OTHER": true}
	purposes = map[string]bool{PurposeContainer: true, PurposeOperatingSystem: true, PurposeApplication: true, PurposeLibrary: true,
		PurposeSource: true, PurposeArchive: true, PurposeFile: true, PurposeOther: true, "FRAMEWORK": true, "INSTALL": true,
		"FIRMWARE": true, "DEVICE": true}
	creatorPattern = regexp.MustCompile(`^(Tool|Organization|Person): \S`)
)

// Validate checks what SPDX 2.3 requires of a document and of the package
// fields this package writes: versions and license, identifiers (pattern,
// uniqueness), namespace, creation info, each package's name, SPDXID and
// downloadLocation, checksums, purposes, and that every relationship joins
// known elements. The first problem found is returned.
func (d *Document) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("SPDX document %q: "+format, append([]any{d.Name}, a...)...)
	}
	switch {
	case d.SPDXVersion != SPDXVersion:
		return bad("spdxVersion %q, want %q", d.SPDXVersion, SPDXVersion)
	case d.DataLicense != DataLicense:
		return bad("dataLicense %q, want %q", d.DataLicense, DataLicense)
	case d.SPDXID != DocumentID:
		return bad("SPDXID %q, want %q", d.SPDXID, DocumentID)
	case d.Name == "":
		return bad("no name")
	case !strings.Contains(d.DocumentNamespace, "://") || strings.Contains(d.DocumentNamespace, "#"):
		return bad("documentNamespace %q is not an absolute URI without a fragment", d.DocumentNamespace)
	case len(d.CreationInfo.Creators) == 0:
		return bad("creationInfo.creators is empty")
	}
	if _, err := time.Parse("2006-01-02T15:04:05Z", d.CreationInfo.Created); err != nil {
		return bad("creationInfo.created %q is not YYYY-MM-DDThh:mm:ssZ", d.CreationInfo.Created)
	}
	for _, c := range d.CreationInfo.Creators {
		if !creatorPattern.MatchString(c) {
			return bad("creator %q: want \"Tool: …\", \"Organization: …\" or \"Person: …\"", c)
		}
	}
	ids := map[string]bool{DocumentID: true}
	for i, p := range d.Packages {
		what := fmt.Sprintf("package %d (%s)", i, p.Name)
		switch {
		case p.Name == "":
			return bad("package %d has no name", i)
		case !idPattern.MatchString(p.SPDXID):
			return bad("%s: SPDXID %q does not match SPDXRef-[A-Za-z0-9.-]+", what, p.SPDXID)
		case ids[p.SPDXID]:
			return bad("%s: SPDXID %q is used twice", what, p.SPDXID)
		case p.DownloadLocation == "":
			return bad("%s: no downloadLocation (NOASSERTION if unknown)", what)
		case p.FilesAnalyzed:
			return bad("%s: filesAnalyzed is true but no files are listed", what)
		case p.LicenseConcluded == "" || p.LicenseDeclared == "" || p.CopyrightText == "":
			return bad("%s: license or copyright left empty (NOASSERTION if unknown)", what)
		case p.PrimaryPackagePurpose != "" && !purposes[p.PrimaryPackagePurpose]:
			return bad("%s: primaryPackagePurpose %q", what, p.PrimaryPackagePurpose)
		}
		ids[p.SPDXID] = true
		for _, c := range p.Checksums {
			if n, ok := checksumLengths[c.Algorithm]; !ok || len(c.ChecksumValue) != n || !hexPattern.MatchString(c.ChecksumValue) {
				return bad("%s: checksum %s %q", what, c.Algorithm, c.ChecksumValue)
			}
		}
		for _, r := range p.ExternalRefs {
			if r.ReferenceCategory == "" || r.ReferenceType == "" || r.ReferenceLocator == "" || strings.ContainsAny(r.ReferenceLocator, " \t\n") {
				return bad("%s: externalRef %+v", what, r)
			}
			if r.ReferenceType == "purl" && !strings.HasPrefix(r.ReferenceLocator, "pkg:") {
				return bad("%s: purl %q does not start with pkg:", what, r.ReferenceLocator)
			}
		}
	}
	describes := false
	for _, r := range d.Relationships {
		if !ids[r.SPDXElementID] || !ids[r.RelatedSPDXElement] {
			return bad("relationship %s %s %s names an unknown element", r.SPDXElementID, r.RelationshipType, r.RelatedSPDXElement)
		}
		if !relTypes[r.RelationshipType] {
			return bad("relationship type %q", r.RelationshipType)
		}
		if r.SPDXElementID == DocumentID && r.RelationshipType == RelDescribes {
			describes = true
		}
	}
	if !describes {
		return bad("no %s %s relationship", DocumentID, RelDescribes)
	}
	return nil
}
