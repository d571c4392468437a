package sbom

import (
	"reflect"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// The published SBOM names the registry's manifest digest everywhere the
// local one was (checksum, pkg:oci version, namespace), keeps every other
// package, says what it was built as, validates, and leaves the original
// alone.
func TestPublished(t *testing.T) {
	doc := mustGenerate(t, testImage{Layers: [][]entry{{fileEntry("etc/os-release", ubuntuOS)}}}, Input{Name: "python-agent", Version: "0.6.0-rc0", Repository: "quay.io/org/python-agent"})
	before, err := doc.JSON()
	if err != nil {
		t.Fatal(err)
	}
	local := "sha256:" + doc.Packages[0].Checksums[0].ChecksumValue
	pub := digest.FromString("the published manifest")

	got, err := Published(doc, pub)
	if err != nil {
		t.Fatal(err)
	}
	if err := got.Validate(); err != nil {
		t.Fatalf("the published document does not validate: %v", err)
	}
	img := got.described()
	if img == nil || img.Checksums[0].ChecksumValue != pub.Encoded() ||
		!strings.HasPrefix(img.PURL(), "pkg:oci/python-agent@sha256%3A"+pub.Encoded()+"?") ||
		!strings.Contains(img.PURL(), "repository_url=quay.io/org/python-agent") ||
		!strings.Contains(img.Comment, "manifest digest "+pub.String()) || !strings.Contains(img.Comment, "built as the local manifest "+local) {
		t.Errorf("image package: %+v", img)
	}
	if !strings.HasSuffix(got.DocumentNamespace, "/"+pub.Encoded()) || got.DocumentNamespace == doc.DocumentNamespace {
		t.Errorf("namespace %s, want it to end in the published digest", got.DocumentNamespace)
	}
	if len(got.Packages) != len(doc.Packages) || !reflect.DeepEqual(got.Packages[1:], doc.Packages[1:]) || !reflect.DeepEqual(got.Relationships, doc.Relationships) {
		t.Error("packages or relationships other than the image changed")
	}
	after, _ := doc.JSON()
	if string(after) != string(before) {
		t.Error("Published changed the original document")
	}
	if strings.Contains(mustJSON(t, got), strings.TrimPrefix(local, "sha256:")+`"`) {
		t.Error("the local digest is still used as an identifier")
	}

	// The same digest: an equal document.
	same, err := Published(doc, digest.Digest(local))
	if err != nil || mustJSON(t, same) != string(before) {
		t.Errorf("published as the local digest: %v", err)
	}

	for _, tc := range []struct {
		name string
		doc  *Document
		d    digest.Digest
	}{
		{"no document", nil, pub},
		{"not sha256", doc, digest.Digest("sha512:" + strings.Repeat("ab", 64))},
		{"malformed", doc, "sha256:nothex"},
		{"no container package", &Document{Name: "x", Packages: doc.Packages[1:]}, pub},
	} {
		if _, err := Published(tc.doc, tc.d); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

func mustJSON(t *testing.T, d *Document) string {
	t.Helper()
	b, err := d.JSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Only agentforge's own documents, unedited, are rebound, and only to
// the image they describe.
func TestPublishedJSON(t *testing.T) {
	doc := mustGenerate(t, testImage{Layers: [][]entry{{fileEntry("etc/os-release", ubuntuOS)}}}, Input{Name: "tool", Version: "1"})
	ours := []byte(mustJSON(t, doc))
	local, ok := Described(ours)
	if !ok || local.Encoded() != doc.Packages[0].Checksums[0].ChecksumValue {
		t.Fatalf("Described = %s %v", local, ok)
	}
	pub := digest.FromString("published manifest")
	got, err := PublishedJSON(ours, local, pub)
	if err != nil || !strings.Contains(string(got), `"checksumValue": "`+pub.Encoded()+`"`) {
		t.Errorf("agentforge's SBOM not rebound (%v):\n%s", err, got)
	}
	if _, err := PublishedJSON(ours, digest.FromString("another image"), pub); err == nil {
		t.Error("an SBOM of another image was rebound")
	}
	other := *doc
	other.CreationInfo.Creators = []string{"Tool: syft-1.0"}
	edited := strings.Replace(string(ours), `"spdxVersion"`, `"x-extra": 1, "spdxVersion"`, 1)
	for name, raw := range map[string][]byte{
		"another tool's":    []byte(mustJSON(t, &other)),
		"edited by another": []byte(edited),
		"not SPDX":          []byte(`{"name":"x"}`),
		"not JSON":          []byte(`SPDXVersion: SPDX-2.3`),
	} {
		if _, ok := Described(raw); ok {
			t.Errorf("%s SBOM taken for agentforge's", name)
		}
		if got, err := PublishedJSON(raw, local, pub); err != nil || string(got) != string(raw) {
			t.Errorf("%s SBOM changed (%v):\n%s", name, err, got)
		}
	}
	if got, err := PublishedJSON(nil, local, pub); got != nil || err != nil {
		t.Error("no SBOM became one")
	}
}
