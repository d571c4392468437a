package sbom

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/builder/oci/ocitest"
	"github.com/agentforge/agentforge/builder/source"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdxlib"
)

// CrossCheck reads data (doc's JSON) with an independent SPDX reader,
// github.com/spdx/tools-golang, and checks that it sees the same
// document: version, identifiers, packages with their versions, checksums
// and package URLs, and relationships that join known elements. Exported
// for the external tests of this package.
func CrossCheck(t testing.TB, data []byte, doc *Document) {
	t.Helper()
	got, err := spdxjson.Read(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("tools-golang cannot read the document: %v", err)
	}
	if err := spdxlib.ValidateDocument(got); err != nil {
		t.Errorf("tools-golang: %v", err)
	}
	if got.SPDXVersion != "SPDX-2.3" || got.DataLicense != "CC0-1.0" || string(got.SPDXIdentifier) != "DOCUMENT" ||
		got.DocumentNamespace != doc.DocumentNamespace || got.CreationInfo == nil || got.CreationInfo.Created != doc.CreationInfo.Created {
		t.Errorf("tools-golang reads the header as %s %s %s %s", got.SPDXVersion, got.DataLicense, got.SPDXIdentifier, got.DocumentNamespace)
	}
	if len(got.Packages) != len(doc.Packages) {
		t.Fatalf("tools-golang reads %d packages, want %d", len(got.Packages), len(doc.Packages))
	}
	for i, p := range got.Packages {
		want := doc.Packages[i]
		if "SPDXRef-"+string(p.PackageSPDXIdentifier) != want.SPDXID || p.PackageName != want.Name || p.PackageVersion != want.VersionInfo ||
			p.PackageDownloadLocation != want.DownloadLocation || p.FilesAnalyzed || len(p.PackageChecksums) != len(want.Checksums) ||
			p.PrimaryPackagePurpose != want.PrimaryPackagePurpose {
			t.Errorf("tools-golang reads package %d as %+v, want %+v", i, p, want)
			continue
		}
		for j, c := range p.PackageChecksums {
			if string(c.Algorithm) != want.Checksums[j].Algorithm || c.Value != want.Checksums[j].ChecksumValue {
				t.Errorf("package %s: checksum %v", want.Name, c)
			}
		}
		var purls []string
		for _, r := range p.PackageExternalReferences {
			if r.RefType == "purl" && r.Category == "PACKAGE-MANAGER" {
				purls = append(purls, r.Locator)
			}
		}
		if want.PURL() != "" && !slices.Contains(purls, want.PURL()) {
			t.Errorf("package %s: tools-golang finds purls %q, want %s", want.Name, purls, want.PURL())
		}
	}
	described, err := spdxlib.GetDescribedPackageIDs(got)
	if err != nil || len(described) != 1 || "SPDXRef-"+string(described[0]) != doc.Packages[0].SPDXID {
		t.Errorf("tools-golang: described packages %v (%v), want %s", described, err, doc.Packages[0].SPDXID)
	}
	if len(got.Relationships) != len(doc.Relationships) {
		t.Errorf("tools-golang reads %d relationships, want %d", len(got.Relationships), len(doc.Relationships))
	}
}

func TestGenerate_IndependentReaderAndStorage(t *testing.T) {
	sp := "usr/local/lib/python3.11/site-packages/"
	img := testImage{Layers: [][]entry{{
		fileEntry("usr/lib/os-release", ubuntuOS), symlink("etc/os-release", "../usr/lib/os-release"),
		fileEntry(statusPath, status(stanza("libc6", "2.39-0ubuntu8", "amd64", "Source: glibc", "Homepage: https://www.gnu.org/software/libc/"),
			stanza("libstdc++6", "14-20240412-0ubuntu1", "amd64", "Source: gcc-14 (14-20240412-0ubuntu1)"),
			stanza("zlib1g", "1:1.3.dfsg-3.1ubuntu2", "amd64"))),
	}, {
		fileEntry(sp+"pip-24.0.dist-info/METADATA", "x"),
	}}, Labels: map[string]string{"org.opencontainers.image.base.name": "docker.io/library/ubuntu:24.04",
		"org.opencontainers.image.base.digest": "sha256:" + strings.Repeat("12", 32)}}
	layoutRef := writeLayout(t, t.TempDir(), img)
	in := Input{Name: "agent", Version: "1.0", Sources: []source.Fetched{
		{Name: "python", URL: "https://www.python.org/ftp/python/3.11.9/Python-3.11.9.tar.xz", SHA256: strings.Repeat("9b", 32),
			Checks: []string{"sha256", "openpgp A035C8C19219BA821ECEA86B64E628F8D684696D"}},
	}}
	fromLayout, err := Generate(context.Background(), layoutRef, in)
	if err != nil {
		t.Fatal(err)
	}
	data, err := fromLayout.JSON()
	if err != nil {
		t.Fatal(err)
	}
	CrossCheck(t, data, fromLayout)
	if n := len(debs(fromLayout)); n != 3 {
		t.Errorf("%d dpkg packages, want 3", n)
	}
	if p := fromLayout.Package("SPDXRef-Package-deb-libstdcplusplus6-amd64"); p == nil ||
		p.PURL() != "pkg:deb/ubuntu/libstdc%2B%2B6@14-20240412-0ubuntu1?arch=amd64&distro=ubuntu-24.04&upstream=gcc-14%4014-20240412-0ubuntu1" {
		t.Errorf("libstdc++6: %+v", p)
	}

	// The same image copied into containers-storage (layers kept
	// uncompressed there, as buildah keeps them) gives the same document.
	store := ocitest.Store(t)
	localRef := ocitest.Local(t, store, layoutRef, "localhost/agent:1.0")
	fromStorage, err := Generate(context.Background(), localRef, in)
	if err != nil {
		t.Fatal(err)
	}
	data2, err := fromStorage.JSON()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, data2) {
		t.Errorf("containers-storage gives another document:\n%s\nlayout:\n%s", data2, data)
	}
}
