package sbom

import (
	"strings"
	"testing"
)

func validDoc() *Document {
	return &Document{
		SPDXVersion: SPDXVersion, DataLicense: DataLicense, SPDXID: DocumentID, Name: "app-1",
		DocumentNamespace: "https://example.com/sbom/app/abc",
		CreationInfo:      CreationInfo{Created: "2024-01-02T03:04:05Z", Creators: []string{"Tool: agentforge"}},
		Packages: []Package{noAssert(Package{Name: "app", SPDXID: "SPDXRef-Image-app", DownloadLocation: NoAssertion,
			Checksums:    []Checksum{{"SHA256", strings.Repeat("a", 64)}},
			ExternalRefs: []ExternalRef{purlRef("pkg:oci/app@sha256%3Aaa")}, PrimaryPackagePurpose: PurposeContainer}),
			noAssert(Package{Name: "bash", SPDXID: "SPDXRef-Package-deb-bash-amd64", DownloadLocation: NoAssertion})},
		Relationships: []Relationship{{DocumentID, RelDescribes, "SPDXRef-Image-app"}, {"SPDXRef-Image-app", RelContains, "SPDXRef-Package-deb-bash-amd64"}},
	}
}

func TestValidate(t *testing.T) {
	if err := validDoc().Validate(); err != nil {
		t.Fatalf("a valid document: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(d *Document)
		want string
	}{
		{"version", func(d *Document) { d.SPDXVersion = "SPDX-2.2" }, "spdxVersion"},
		{"data license", func(d *Document) { d.DataLicense = "MIT" }, "dataLicense"},
		{"document id", func(d *Document) { d.SPDXID = "SPDXRef-DOC" }, "SPDXID"},
		{"name", func(d *Document) { d.Name = "" }, "no name"},
		{"namespace", func(d *Document) { d.DocumentNamespace = "app/abc" }, "documentNamespace"},
		{"namespace fragment", func(d *Document) { d.DocumentNamespace += "#x" }, "documentNamespace"},
		{"creators", func(d *Document) { d.CreationInfo.Creators = nil }, "creators"},
		{"creator form", func(d *Document) { d.CreationInfo.Creators = []string{"agentforge"} }, "creator"},
		{"created", func(d *Document) { d.CreationInfo.Created = "2024-01-02 03:04:05" }, "created"},
		{"package name", func(d *Document) { d.Packages[1].Name = "" }, "no name"},
		{"package id", func(d *Document) { d.Packages[1].SPDXID = "SPDXRef-deb-libstdc++6" }, "does not match"},
		{"duplicate id", func(d *Document) { d.Packages[1].SPDXID = d.Packages[0].SPDXID }, "used twice"},
		{"download location", func(d *Document) { d.Packages[1].DownloadLocation = "" }, "downloadLocation"},
		{"files analyzed", func(d *Document) { d.Packages[1].FilesAnalyzed = true }, "filesAnalyzed"},
		{"license", func(d *Document) { d.Packages[1].LicenseConcluded = "" }, "license"},
		{"purpose", func(d *Document) { d.Packages[1].PrimaryPackagePurpose = "DAEMON" }, "primaryPackagePurpose"},
		{"checksum length", func(d *Document) { d.Packages[0].Checksums[0].ChecksumValue = "abc" }, "checksum"},
		{"checksum algorithm", func(d *Document) { d.Packages[0].Checksums[0].Algorithm = "sha256" }, "checksum"},
		{"purl", func(d *Document) { d.Packages[0].ExternalRefs[0].ReferenceLocator = "oci/app" }, "purl"},
		{"unknown element", func(d *Document) { d.Relationships[1].RelatedSPDXElement = "SPDXRef-nothing" }, "unknown element"},
		{"relationship type", func(d *Document) { d.Relationships[1].RelationshipType = "HAS" }, "relationship type"},
		{"nothing described", func(d *Document) { d.Relationships = d.Relationships[1:] }, "DESCRIBES"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := validDoc()
			tc.edit(d)
			err := d.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error about %s", err, tc.want)
			}
			if werr := Write(t.TempDir()+"/x.spdx.json", d); werr == nil {
				t.Error("Write wrote an invalid document")
			}
		})
	}
}

func TestPURL(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{purl("deb", "debian", "libstdc++6", "1:12.2.0-14+deb12u1", map[string]string{"arch": "amd64", "distro": "debian-12", "upstream": ""}),
			"pkg:deb/debian/libstdc%2B%2B6@1%3A12.2.0-14%2Bdeb12u1?arch=amd64&distro=debian-12"},
		{purl("oci", "", "app", "sha256:ab", map[string]string{"tag": "1.0", "repository_url": "quay.io/org/app"}),
			"pkg:oci/app@sha256%3Aab?repository_url=quay.io/org/app&tag=1.0"},
		{purl("pypi", "", "typing-extensions", "4.9.0", nil), "pkg:pypi/typing-extensions@4.9.0"},
		{purl("generic", "", "a b", "", map[string]string{"download_url": "https://x/y?z=1&w"}), "pkg:generic/a%20b?download_url=https://x/y%3Fz%3D1%26w"},
	} {
		if tc.got != tc.want {
			t.Errorf("got  %s\nwant %s", tc.got, tc.want)
		}
	}
}

func TestVersionFromURL(t *testing.T) {
	for _, tc := range []struct{ url, version, purl string }{
		{"https://www.python.org/ftp/python/3.11.9/Python-3.11.9.tar.xz", "3.11.9", ""},
		{"https://www.python.org/ftp/python/3.11.9/Python-3.11.9.tgz", "3.11.9", ""},
		{"https://repo.jenkins-ci.org/public/org/jenkins-ci/main/remoting/3355.v388858a_47b_33/remoting-3355.v388858a_47b_33.jar", "3355.v388858a_47b_33", ""},
		{"http://deb.debian.org/debian/pool/main/b/busybox/busybox-static_1.35.0-4+deb12u1+b1_amd64.deb", "1.35.0-4+deb12u1+b1",
			"pkg:deb/debian/busybox-static@1.35.0-4%2Bdeb12u1%2Bb1?arch=amd64"},
		{"http://archive.ubuntu.com/ubuntu/pool/main/z/zlib/zlib1g_1%3a1.3.dfsg-3.1ubuntu2_arm64.deb", "1:1.3.dfsg-3.1ubuntu2",
			"pkg:deb/ubuntu/zlib1g@1%3A1.3.dfsg-3.1ubuntu2?arch=arm64"},
		{"file:///bin/busybox", "", ""},
		{"https://example.com/tool-2.0.bin?token=x", "2.0", ""},
	} {
		if got := versionFromURL(tc.url); got != tc.version {
			t.Errorf("versionFromURL(%s) = %q, want %q", tc.url, got, tc.version)
		}
		if got := debFromURL(tc.url); got != tc.purl {
			t.Errorf("debFromURL(%s) = %q, want %q", tc.url, got, tc.purl)
		}
	}
}

func TestParseStatus_SourceVersion(t *testing.T) {
	pkgs, err := parseStatus([]byte(stanza("libstdc++6", "14-1", "amd64", "Source: gcc-14 (14-20240412-0ubuntu1)")+"\n"+
		stanza("bash", "5.2", "amd64", "Source: bash")), "status")
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) != 2 || pkgs[0].Source != "gcc-14" || pkgs[0].SourceVersion != "14-20240412-0ubuntu1" || pkgs[1].SourceVersion != "" {
		t.Errorf("%+v", pkgs)
	}
	if _, err := parseStatus([]byte("Package: a\nVersion: 1\nSource: gcc 14\n"), "status"); err == nil || !strings.Contains(err.Error(), "Source") {
		t.Errorf("a Source without parentheses: %v", err)
	}
}
