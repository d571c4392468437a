package sbom

import (
	"bytes"
	"encoding/json"
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

// Only agentforge's own documents are rebound, and only to the image they
// describe; one edited by another tool (a field added) keeps naming its
// image and is attested as given.
func TestPublishedJSON(t *testing.T) {
	doc := mustGenerate(t, testImage{Layers: [][]entry{{fileEntry("etc/os-release", ubuntuOS)}}}, Input{Name: "tool", Version: "1"})
	ours := []byte(mustJSON(t, doc))
	local, ok, err := Described(ours)
	if err != nil || !ok || local.Encoded() != doc.Packages[0].Checksums[0].ChecksumValue {
		t.Fatalf("Described = %s %v %v", local, ok, err)
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
	for name, raw := range map[string][]byte{
		"another tool's": []byte(mustJSON(t, &other)),
		"not SPDX":       []byte(`{"name":"x"}`),
		"not JSON":       []byte(`SPDXVersion: SPDX-2.3`),
	} {
		if _, ok, _ := Described(raw); ok {
			t.Errorf("%s SBOM taken for agentforge's", name)
		}
		if got, err := PublishedJSON(raw, local, pub); err != nil || string(got) != string(raw) {
			t.Errorf("%s SBOM changed (%v):\n%s", name, err, got)
		}
	}
	edited := []byte(strings.Replace(string(ours), `"spdxVersion"`, `"x-extra": 1, "spdxVersion"`, 1))
	if d, ok, err := Described(edited); !ok || err != nil || d != local {
		t.Errorf("edited by another tool: Described = %s %v %v, want %s", d, ok, err, local)
	}
	if got, err := PublishedJSON(edited, local, pub); err != nil || string(got) != string(edited) {
		t.Errorf("edited by another tool: changed (%v):\n%s", err, got)
	}
	if got, err := PublishedJSON(nil, local, pub); got != nil || err != nil {
		t.Error("no SBOM became one")
	}
}

// reencodings are the ways a JSON document's bytes change while its
// content does not (or only gains what another tool adds): each must be
// told apart by content, never by bytes.
func reencodings(t *testing.T, raw []byte) map[string][]byte {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	compact, _ := json.Marshal(v) // keys sorted, no indentation
	var tabs bytes.Buffer
	json.Indent(&tabs, raw, "", "\t")
	var m map[string]json.RawMessage
	json.Unmarshal(raw, &m)
	m["x-reviewed-by"] = json.RawMessage(`"another tool"`)
	extra, _ := json.Marshal(m)
	escaped := strings.NewReplacer(`"SPDXRef-DOCUMENT"`, `"SPDXRef-\u0044OCUMENT"`, `"DESCRIBES"`, `"\u0044ESCRIBES"`, `"SHA256"`, `"SHA\u00325\u0036"`).Replace(string(raw))
	return map[string][]byte{
		"as written":                raw,
		"compact, keys sorted":      compact,
		"indented with tabs":        tabs.Bytes(),
		"CRLF line ends":            []byte(strings.ReplaceAll(string(raw), "\n", "\r\n")),
		"characters escaped":        []byte(escaped),
		"a field another tool adds": extra,
		"leading white space":       append([]byte(" \n\t"), raw...),
	}
}

// An SBOM agentforge made names its image however it is encoded: an SBOM
// of another image, pretty-printed, compacted, re-keyed or escaped, is
// still an SBOM of that other image, and is refused; one of this image,
// re-encoded, is rebound like the original.
func TestDescribed_ContentNotBytes(t *testing.T) {
	doc := mustGenerate(t, testImage{Layers: [][]entry{{fileEntry("etc/os-release", ubuntuOS)}}}, Input{Name: "tool", Version: "1"})
	raw := []byte(mustJSON(t, doc))
	local, _, _ := Described(raw)
	pub := digest.FromString("published manifest")
	this := digest.FromString("this image")
	for name, enc := range reencodings(t, raw) {
		t.Run(name, func(t *testing.T) {
			d, ok, err := Described(enc)
			if err != nil || !ok || d != local {
				t.Fatalf("Described = %s %v %v, want %s", d, ok, err, local)
			}
			if _, err := PublishedJSON(enc, this, pub); err == nil {
				t.Error("another image's SBOM, re-encoded, was accepted for this one")
			}
			got, err := PublishedJSON(enc, local, pub)
			if err != nil {
				t.Fatal(err)
			}
			if gd, _, _ := Described(got); gd != pub && name != "a field another tool adds" {
				t.Errorf("re-encoded SBOM of this image names %s after publishing, want %s", gd, pub)
			}
		})
	}
}

// A document that cannot be read one way only is refused: one that names
// two images (checksum and package URL, or two container packages, or its
// namespace), a malformed identity, or a key given twice (parsers differ on
// which one counts).
func TestDescribed_Ambiguous(t *testing.T) {
	doc := mustGenerate(t, testImage{Layers: [][]entry{{fileEntry("etc/os-release", ubuntuOS)}}}, Input{Name: "tool", Version: "1"})
	raw := mustJSON(t, doc)
	local, _, _ := Described([]byte(raw))
	other := digest.FromString("another image")
	for name, s := range map[string]string{
		"checksum names another image":    strings.Replace(raw, `"checksumValue": "`+local.Encoded()+`"`, `"checksumValue": "`+other.Encoded()+`"`, 1),
		"package URL names another image": strings.Replace(raw, "sha256%3A"+local.Encoded(), "sha256%3A"+other.Encoded(), 1),
		"namespace names another image":   strings.Replace(raw, `/`+local.Encoded()+`",`, `/`+other.Encoded()+`",`, 1),
		"malformed checksum":              strings.Replace(raw, `"checksumValue": "`+local.Encoded()+`"`, `"checksumValue": "not hex"`, 1),
		"packages twice":                  strings.Replace(raw, `"packages":`, `"packages": [], "packages":`, 1),
		"a key twice, in another case":    strings.Replace(raw, `"relationships":`, `"Relationships": [], "relationships":`, 1),
		"a checksum key twice":            strings.Replace(raw, `"checksumValue": "`+local.Encoded()+`"`, `"checksumValue": "`+other.Encoded()+`", "checksumValue": "`+local.Encoded()+`"`, 1),
	} {
		if s == raw {
			t.Fatalf("%s: test set-up: nothing replaced", name)
		}
		if d, ok, err := Described([]byte(s)); err == nil {
			t.Errorf("%s: Described = %s %v, want an error", name, d, ok)
		}
		if _, err := PublishedJSON([]byte(s), local, digest.FromString("pub")); err == nil {
			t.Errorf("%s: PublishedJSON accepted it", name)
		}
	}
}
