package sbom_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/builder"
	"github.com/agentforge/agentforge/builder/buildertest"
	"github.com/agentforge/agentforge/builder/sbom"
	"github.com/agentforge/agentforge/builder/source"
	"github.com/containers/buildah"
	istorage "go.podman.io/image/v5/storage"
)

func TestMain(m *testing.M) {
	// Builds and copies into containers-storage re-execute the test binary.
	if buildah.InitReexec() {
		return
	}
	os.Exit(m.Run())
}

// input is the conversion the builder (or cmd/agentforge) makes from a
// build result: field by field, nothing computed.
func input(res *builder.Result) sbom.Input {
	in := sbom.Input{Name: res.Name, Version: res.Version, Base: source.Base{Ref: res.Base.Ref, Digest: res.Base.Digest}}
	for _, f := range res.Sources {
		in.Sources = append(in.Sources, source.Fetched{
			Name: f.Name, URL: f.URL, From: f.From, Path: f.Path, SHA256: f.SHA256, Size: f.Size,
			Checks: f.Checks, SignatureSkipped: f.SignatureSkipped,
		})
	}
	return in
}

func TestGenerate_BusyboxBuild(t *testing.T) {
	store := buildertest.NewStore(t, "vfs")
	res := buildertest.Busybox(t, store, nil)
	ref, err := istorage.Transport.NewStoreReference(store, nil, res.ID)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := sbom.Generate(context.Background(), ref, input(res))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "build.spdx.json")
	if err := sbom.Write(path, doc); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sbom.CrossCheck(t, data, doc)

	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	img := doc.Packages[0]
	if img.Name != "busybox-demo" || img.VersionInfo != "1.0.0" || "sha256:"+img.Checksums[0].ChecksumValue != res.Digest {
		t.Errorf("image package %+v, want busybox-demo 1.0.0 %s", img, res.Digest)
	}
	if doc.CreationInfo.Created != "2023-11-14T22:13:20Z" { // the definition's sourceDateEpoch
		t.Errorf("created %s", doc.CreationInfo.Created)
	}
	// FROM scratch, no dpkg database: the image and its sources, nothing
	// else (whatever sources the definition has).
	if len(res.Sources) == 0 || len(doc.Packages) != 1+len(res.Sources) {
		t.Fatalf("%d packages for %d sources, want the image and each source: %+v", len(doc.Packages), len(res.Sources), doc.Packages)
	}
	debs := 0
	for i, f := range res.Sources {
		p := doc.Packages[1+i]
		if p.Name != f.Name || len(p.Checksums) != 2 || p.Checksums[1] != (sbom.Checksum{Algorithm: "SHA256", ChecksumValue: f.SHA256}) ||
			!strings.Contains(p.SourceInfo, strings.Join(f.Checks, ", ")) {
			t.Errorf("source %s: %+v", f.Name, p)
		}
		if strings.HasPrefix(f.URL, "file:") != (p.DownloadLocation == sbom.NoAssertion) {
			t.Errorf("source %s from %s: downloadLocation %s", f.Name, f.URL, p.DownloadLocation)
		}
		// Debian's busybox has epoch 1, which the .deb's file name leaves
		// out: the version comes from the package's control file.
		if strings.HasSuffix(f.URL, ".deb") {
			debs++
		}
		if strings.HasSuffix(f.URL, ".deb") && (!strings.HasPrefix(p.VersionInfo, "1:1.35.0-") || !strings.HasPrefix(p.PURL(), "pkg:deb/debian/busybox-static@1%3A1.35.0-")) {
			t.Errorf("source %s: version %s, purl %s, want Debian's 1:1.35.0-…", f.Name, p.VersionInfo, p.PURL())
		}
	}
	if debs == 0 {
		t.Error("no .deb source: the definition changed, the epoch check checked nothing")
	}
	if !strings.Contains(doc.CreationInfo.Comment, "scratch") {
		t.Errorf("the document does not say the image has no base: %q", doc.CreationInfo.Comment)
	}

	// A second build of the same definition: the same image, the same bytes.
	store2 := buildertest.NewStore(t, "vfs")
	res2 := buildertest.Busybox(t, store2, nil)
	ref2, err := istorage.Transport.NewStoreReference(store2, nil, res2.ID)
	if err != nil {
		t.Fatal(err)
	}
	doc2, err := sbom.Generate(context.Background(), ref2, input(res2))
	if err != nil {
		t.Fatal(err)
	}
	data2, err := doc2.JSON()
	if err != nil {
		t.Fatal(err)
	}
	if string(data2) != string(data) {
		t.Errorf("a rebuild gave another document (digests %s, %s)", res.Digest, res2.Digest)
	}
}
