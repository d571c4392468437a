package sbom

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agentforge/agentforge/builder/source"
)

const (
	statusPath = "var/lib/dpkg/status"
	statusD    = "var/lib/dpkg/status.d/"
	debianOS   = "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"
	ubuntuOS   = "NAME=\"Ubuntu\"\nID=ubuntu\nID_LIKE=debian\nVERSION_ID=\"24.04\"\n"
)

// stanza is one installed package's entry in a dpkg status file.
func stanza(name, version, arch string, extra ...string) string {
	s := "Package: " + name + "\nStatus: install ok installed\nPriority: optional\nArchitecture: " + arch +
		"\nVersion: " + version + "\nMaintainer: Debian Team <team@debian.org>\n"
	for _, e := range extra {
		s += e + "\n"
	}
	return s + "Description: the " + name + " package\n a longer description\n .\n over lines\n"
}

func status(stanzas ...string) string { return strings.Join(stanzas, "\n") }

// debs lists the document's dpkg packages as "name=version/arch".
func debs(doc *Document) []string {
	var out []string
	for _, p := range doc.Packages {
		if strings.HasPrefix(p.PURL(), "pkg:deb/") {
			arch := p.PURL()[strings.Index(p.PURL(), "arch=")+5:]
			arch, _, _ = strings.Cut(arch, "&")
			out = append(out, p.Name+"="+p.VersionInfo+"/"+arch)
		}
	}
	return out
}

func generate(t *testing.T, img testImage, in Input) (*Document, error) {
	t.Helper()
	return Generate(context.Background(), writeLayout(t, t.TempDir(), img), in)
}

func mustGenerate(t *testing.T, img testImage, in Input) *Document {
	t.Helper()
	doc, err := generate(t, img, in)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestGenerate_DpkgAcrossLayers(t *testing.T) {
	base := []entry{
		dir("etc/"), fileEntry("etc/os-release", debianOS),
		dir("var/"), dir("var/lib/"), dir("var/lib/dpkg/"),
		fileEntry(statusPath, status(stanza("bash", "5.2.15-2+b2", "amd64"), stanza("libc6", "2.36-9", "amd64", "Source: glibc"))),
	}
	for _, tc := range []struct {
		name   string
		layers [][]entry
		want   []string
		purl   string // a package URL that must be there
	}{
		{"one layer", [][]entry{base},
			[]string{"bash=5.2.15-2+b2/amd64", "libc6=2.36-9/amd64"},
			"pkg:deb/debian/libc6@2.36-9?arch=amd64&distro=debian-12&upstream=glibc"},
		{"a later status replaces the earlier one", [][]entry{base, {
			fileEntry(statusPath, status(stanza("bash", "5.2.15-2+b7", "amd64"), stanza("curl", "7.88.1-10", "amd64"))),
		}}, []string{"bash=5.2.15-2+b7/amd64", "curl=7.88.1-10/amd64"}, "pkg:deb/debian/bash@5.2.15-2%2Bb7?arch=amd64&distro=debian-12"},
		{"a whiteout deletes the status file", [][]entry{base, {whiteout(statusPath)}}, nil, ""},
		{"a whiteout of a parent folder deletes it", [][]entry{base, {whiteout("var/lib/dpkg")}}, nil, ""},
		{"an opaque folder hides lower layers, not its own layer", [][]entry{base, {
			fileEntry(statusPath, status(stanza("zlib1g", "1:1.2.13.dfsg-1", "amd64"))),
			opaque("var/lib/dpkg"),
		}}, []string{"zlib1g=1:1.2.13.dfsg-1/amd64"}, "pkg:deb/debian/zlib1g@1%3A1.2.13.dfsg-1?arch=amd64&distro=debian-12"},
		{"an opaque folder above hides the status", [][]entry{base, {opaque("var/lib")}}, nil, ""},
		{"a symlink replaces the status file", [][]entry{base, {symlink(statusPath, "/tmp/elsewhere")}}, nil, ""},
		{"a hard link in a later layer keeps the content", [][]entry{base, {
			fileEntry("var/lib/dpkg/status-new", status(stanza("dash", "0.5.12-2", "amd64"))),
			hardlink(statusPath, "var/lib/dpkg/status-new"),
		}}, []string{"dash=0.5.12-2/amd64"}, ""},
		{"packages not installed are left out", [][]entry{{
			fileEntry(statusPath, status(stanza("bash", "5.2", "amd64"),
				strings.Replace(stanza("vim", "9.0", "amd64"), "install ok installed", "deinstall ok config-files", 1),
				strings.Replace(stanza("nano", "7.2", "amd64"), "install ok installed", "install reinstreq half-installed", 1))),
		}}, []string{"bash=5.2/amd64"}, ""},
		{"distroless status.d, md5sums ignored, one whited out", [][]entry{{
			fileEntry(statusD+"base-files", "Package: base-files\nVersion: 12.4+deb12u5\nArchitecture: amd64\n"),
			fileEntry(statusD+"base-files.md5sums", "d41d8cd98f00b204e9800998ecf8427e  etc/x\n"),
			fileEntry(statusD+"tzdata", "Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\n"),
			fileEntry(statusD+"netbase", "Package: netbase\nVersion: 6.4\nArchitecture: all\n"),
		}, {whiteout(statusD + "netbase")}}, []string{"base-files=12.4+deb12u5/amd64", "tzdata=2024a-0+deb12u1/all"}, ""},
		{"status and status.d together, duplicates once", [][]entry{base, {
			fileEntry(statusD+"libc6", stanza("libc6", "2.36-9", "amd64", "Source: glibc")),
			fileEntry(statusD+"openssl", "Package: openssl\nVersion: 3.0.11-1\nArchitecture: arm64\n"),
		}}, []string{"bash=5.2.15-2+b2/amd64", "libc6=2.36-9/amd64", "openssl=3.0.11-1/arm64"}, ""},
		{"Ubuntu through the os-release symlink", [][]entry{{
			fileEntry("usr/lib/os-release", ubuntuOS), symlink("etc/os-release", "../usr/lib/os-release"),
			fileEntry(statusPath, status(stanza("libc6", "2.39-0ubuntu8.3", "amd64", "Source: glibc"))),
		}}, []string{"libc6=2.39-0ubuntu8.3/amd64"}, "pkg:deb/ubuntu/libc6@2.39-0ubuntu8.3?arch=amd64&distro=ubuntu-24.04&upstream=glibc"},
		{"path traversal names are ignored", [][]entry{base, {
			fileEntry("../../var/lib/dpkg/status", status(stanza("evil", "1", "amd64"))),
			fileEntry("var/lib/../../../var/lib/dpkg/status", status(stanza("evil2", "1", "amd64"))),
			fileEntry("../.wh.var", ""),
		}}, []string{"bash=5.2.15-2+b2/amd64", "libc6=2.36-9/amd64"}, ""},
		{"no dpkg database", [][]entry{{fileEntry("bin/busybox", "ELF")}}, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := mustGenerate(t, testImage{Layers: tc.layers}, Input{Name: "app", Version: "1"})
			if got := debs(doc); !slices.Equal(got, tc.want) {
				t.Errorf("packages\n got %q\nwant %q", got, tc.want)
			}
			if tc.purl != "" && !slices.ContainsFunc(doc.Packages, func(p Package) bool { return p.PURL() == tc.purl }) {
				t.Errorf("no package with purl %s", tc.purl)
			}
			for _, p := range doc.Packages[1:] {
				if !slices.Contains(doc.Relationships, Relationship{doc.Packages[0].SPDXID, RelContains, p.SPDXID}) {
					t.Errorf("image does not CONTAIN %s", p.SPDXID)
				}
			}
		})
	}
}

func TestGenerate_PythonDistributions(t *testing.T) {
	sp := "usr/local/lib/python3.11/site-packages/"
	doc := mustGenerate(t, testImage{Layers: [][]entry{{
		dir(sp + "pip-24.0.dist-info/"), fileEntry(sp+"pip-24.0.dist-info/METADATA", "Name: pip\nVersion: 24.0\n"),
		fileEntry(sp+"setuptools-65.5.0.dist-info/RECORD", "x"), // no folder entry: found from its file
		fileEntry(sp+"typing_extensions-4.9.0.dist-info/METADATA", "x"),
		// Not under site-packages (a Debian-managed dist-packages): not listed.
		fileEntry("usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA", "x"),
	}, {
		whiteout(sp + "setuptools-65.5.0.dist-info"),
		whiteout(sp + "pip-24.0.dist-info/RECORD"), // a file inside: pip stays
	}}}, Input{Name: "app"})
	var got []string
	for _, p := range doc.Packages {
		if strings.HasPrefix(p.PURL(), "pkg:pypi/") {
			got = append(got, p.PURL())
		}
	}
	want := []string{"pkg:pypi/pip@24.0", "pkg:pypi/typing-extensions@4.9.0"}
	if !slices.Equal(got, want) {
		t.Errorf("python packages\n got %q\nwant %q", got, want)
	}
}

func TestGenerate_MalformedStatus(t *testing.T) {
	for _, tc := range []struct {
		name, path, body string
		want             []string
	}{
		{"not a field", statusPath, stanza("bash", "5", "amd64") + "\nPackage: x\nthis line is garbage\n",
			[]string{"/var/lib/dpkg/status (layer 2)", "line 13", "not a \"Field: value\" line"}},
		{"no Package field", statusPath, "Version: 1\nArchitecture: all\n",
			[]string{"/var/lib/dpkg/status (layer 2)", "no Package field"}},
		{"two stanzas run together", statusPath, strings.TrimSuffix(stanza("a", "1", "all"), "\n") + "\nPackage: b\n",
			[]string{"/var/lib/dpkg/status (layer 2)", "line 11", "field package repeated"}},
		{"continuation first", statusD + "x", " orphan continuation\n",
			[]string{"/var/lib/dpkg/status.d/x (layer 2)", "line 1", "continuation"}},
		{"no Version", statusD + "y", "Package: y\nArchitecture: all\n",
			[]string{"/var/lib/dpkg/status.d/y (layer 2)", "no Version"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := generate(t, testImage{Layers: [][]entry{{fileEntry("etc/os-release", debianOS)}, {fileEntry(tc.path, tc.body)}}}, Input{})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestGenerate_HugeStatusIsRefused(t *testing.T) {
	// A 1 GiB status file (gzip makes the layer about 1 MB on disk).
	img := testImage{Layers: [][]entry{{fileEntry("etc/os-release", debianOS)}, {
		{Name: statusPath, Content: limitZeros(1 << 30), Size: 1 << 30},
	}}}
	ref := writeLayout(t, t.TempDir(), img)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := Generate(context.Background(), ref, Input{})
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("want ErrTooLarge, got %v", err)
	}
	if !strings.Contains(err.Error(), "/var/lib/dpkg/status is 1073741824 bytes") || !strings.Contains(err.Error(), "layer 2") {
		t.Errorf("error does not name the file, its size and layer: %v", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Errorf("reading a refused file allocated %d MB", grew>>20)
	}

	// Many small status.d files over the total cap.
	var many []entry
	for i := 0; i < 40; i++ {
		many = append(many, fileEntry(fmt.Sprintf("%sp%02d", statusD, i), fmt.Sprintf("Package: p%02d\nVersion: 1\n", i)+strings.Repeat("X-Pad: "+strings.Repeat("x", 1000)+"\n", 1)))
	}
	_, err = generate(t, testImage{Layers: [][]entry{many}}, Input{MaxTotalSize: 20 << 10})
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "add up to over 20480 bytes") {
		t.Errorf("total cap: got %v", err)
	}
	// The same files under the cap are fine: 40 packages.
	doc, err := generate(t, testImage{Layers: [][]entry{many}}, Input{})
	if err != nil || len(debs(doc)) != 40 {
		t.Errorf("under the cap: %v, %d packages", err, len(debs(doc)))
	}
}

func limitZeros(n int64) *limitedZeros { return &limitedZeros{n: n} }

type limitedZeros struct{ n int64 }

func (z *limitedZeros) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > z.n {
		p = p[:z.n]
	}
	n, _ := zeros{}.Read(p)
	z.n -= int64(n)
	return n, nil
}

func TestGenerate_SourcesBaseAndImage(t *testing.T) {
	dir := t.TempDir()
	tarball := filepath.Join(dir, "python.tar")
	jar := filepath.Join(dir, "agent.jar")
	os.WriteFile(tarball, []byte("not really CPython"), 0o644)
	os.WriteFile(jar, []byte("PK not really a jar"), 0o644)
	sum256, sum1, _ := hashFile(tarball)
	jar256, jar1, _ := hashFile(jar)
	fpr := "A035C8C19219BA821ECEA86B64E628F8D684696D"
	in := Input{
		Name: "python-agent", Version: "0.6.0-rc0", Repository: "quay.io/org/python-agent",
		Base: source.Base{Ref: "docker.io/library/ubuntu:24.04", Digest: "sha256:" + strings.Repeat("ab", 32)},
		Sources: []source.Fetched{
			{Name: "python", URL: "https://www.python.org/ftp/python/3.11.9/Python-3.11.9.tar.xz", From: "https://mirror.example/Python-3.11.9.tar.xz",
				Path: tarball, SHA256: sum256, Size: 18, Checks: []string{"sha256", "openpgp " + fpr}},
			{Name: "remoting", URL: "https://repo.jenkins-ci.org/public/org/jenkins-ci/main/remoting/3355.v388858a_47b_33/remoting-3355.v388858a_47b_33.jar",
				Path: jar, SHA256: jar256, Checks: []string{"sha1 (published checksum)"}},
		},
	}
	doc := mustGenerate(t, testImage{Layers: [][]entry{{fileEntry("etc/os-release", ubuntuOS)}}}, in)

	img := doc.Packages[0]
	if img.Name != "python-agent" || img.VersionInfo != "0.6.0-rc0" || img.PrimaryPackagePurpose != PurposeContainer ||
		!strings.HasPrefix(img.PURL(), "pkg:oci/python-agent@sha256%3A") || !strings.Contains(img.PURL(), "repository_url=quay.io/org/python-agent") {
		t.Errorf("image package: %+v", img)
	}
	if !strings.HasSuffix(doc.DocumentNamespace, "/python-agent/"+img.Checksums[0].ChecksumValue) {
		t.Errorf("namespace %s is not derived from the digest %s", doc.DocumentNamespace, img.Checksums[0].ChecksumValue)
	}
	if !slices.Contains(doc.Relationships, Relationship{DocumentID, RelDescribes, img.SPDXID}) {
		t.Error("the document does not DESCRIBE the image")
	}

	find := func(name string) Package {
		for _, p := range doc.Packages {
			if p.Name == name {
				return p
			}
		}
		t.Fatalf("no package %s", name)
		return Package{}
	}
	base := find("docker.io/library/ubuntu")
	if base.VersionInfo != "24.04" || base.PURL() != "pkg:oci/ubuntu@sha256%3A"+strings.Repeat("ab", 32)+"?repository_url=docker.io/library/ubuntu&tag=24.04" ||
		!slices.Contains(doc.Relationships, Relationship{img.SPDXID, RelDescendantOf, base.SPDXID}) {
		t.Errorf("base: %+v", base)
	}

	py := find("python")
	wantSums := []Checksum{{"SHA1", sum1}, {"SHA256", sum256}}
	if py.VersionInfo != "3.11.9" || py.DownloadLocation != in.Sources[0].URL || !slices.Equal(py.Checksums, wantSums) ||
		!strings.Contains(py.Comment, fpr) || !strings.Contains(py.SourceInfo, "OpenPGP signature verified with key "+fpr) ||
		!strings.Contains(py.SourceInfo, "mirror.example") || py.PrimaryPackagePurpose != PurposeSource ||
		!slices.Contains(doc.Relationships, Relationship{img.SPDXID, RelGeneratedFrom, py.SPDXID}) ||
		py.PURL() != "pkg:generic/python@3.11.9?checksum=sha256:"+sum256+"&download_url=https://www.python.org/ftp/python/3.11.9/Python-3.11.9.tar.xz" {
		t.Errorf("python: %+v", py)
	}
	rem := find("remoting")
	if rem.VersionInfo != "3355.v388858a_47b_33" || !slices.Equal(rem.Checksums, []Checksum{{"SHA1", jar1}, {"SHA256", jar256}}) ||
		rem.PURL() != "pkg:maven/org.jenkins-ci.main/remoting@3355.v388858a_47b_33" || rem.PrimaryPackagePurpose != PurposeLibrary ||
		!slices.Contains(doc.Relationships, Relationship{img.SPDXID, RelContains, rem.SPDXID}) {
		t.Errorf("remoting: %+v", rem)
	}

	// A cached file that is not what was checked is refused.
	in.Sources[0].SHA256 = strings.Repeat("0", 64)
	if _, err := generate(t, testImage{Layers: [][]entry{{fileEntry("a", "b")}}}, in); err == nil || !strings.Contains(err.Error(), `source "python"`) {
		t.Errorf("sha256 mismatch: got %v", err)
	}
}

func TestGenerate_BaseFromLabels(t *testing.T) {
	d := "sha256:" + strings.Repeat("cd", 32)
	doc := mustGenerate(t, testImage{Layers: [][]entry{{fileEntry("a", "b")}}, Labels: map[string]string{
		"org.opencontainers.image.title": "busy", "org.opencontainers.image.version": "2.0",
		"org.opencontainers.image.base.name": "localhost/debian-bookworm-minbase:debootstrap", "org.opencontainers.image.base.digest": d,
	}}, Input{})
	if doc.Name != "busy-2.0" || len(doc.Packages) != 2 || doc.Packages[1].Name != "localhost/debian-bookworm-minbase" ||
		doc.Packages[1].Checksums[0].ChecksumValue != strings.Repeat("cd", 32) {
		t.Errorf("base from labels: name %q, packages %+v", doc.Name, doc.Packages)
	}
	// FROM scratch: no base package, and the document says so.
	doc = mustGenerate(t, testImage{Layers: [][]entry{{fileEntry("a", "b")}}}, Input{Name: "x", Base: source.Base{Ref: "scratch"}})
	if len(doc.Packages) != 1 || !strings.Contains(doc.CreationInfo.Comment, "scratch") {
		t.Errorf("scratch: %+v %q", doc.Packages, doc.CreationInfo.Comment)
	}
	// Nothing known: no base package, and no claim that there is none.
	doc = mustGenerate(t, testImage{Layers: [][]entry{{fileEntry("a", "b")}}}, Input{Name: "x"})
	if len(doc.Packages) != 1 || !strings.Contains(doc.CreationInfo.Comment, "unknown") {
		t.Errorf("no base known: %+v %q", doc.Packages, doc.CreationInfo.Comment)
	}
	// A base that is not a reference is refused, naming it.
	if _, err := generate(t, testImage{Layers: [][]entry{{fileEntry("a", "b")}}}, Input{Name: "x", Base: source.Base{Ref: "Not A Ref"}}); err == nil ||
		!strings.Contains(err.Error(), `base image "Not A Ref"`) {
		t.Errorf("bad base reference: %v", err)
	}
}

func TestGenerate_CreatedIsNeverTheClock(t *testing.T) {
	imgTime := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	layers := [][]entry{{fileEntry("a", "b")}}
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	for _, tc := range []struct {
		name    string
		created *time.Time
		in      time.Time
		want    string
	}{
		{"the caller's time first", &imgTime, time.Date(2025, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600)), "2025-01-02T02:04:05Z"},
		{"then the image's", &imgTime, time.Time{}, "2024-05-06T07:08:09Z"},
		{"then SOURCE_DATE_EPOCH", nil, time.Time{}, "2023-11-14T22:13:20Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := mustGenerate(t, testImage{Layers: layers, Created: tc.created}, Input{Name: "x", Created: tc.in})
			if doc.CreationInfo.Created != tc.want {
				t.Errorf("created %s, want %s", doc.CreationInfo.Created, tc.want)
			}
		})
	}
	t.Setenv("SOURCE_DATE_EPOCH", "")
	if doc := mustGenerate(t, testImage{Layers: layers}, Input{Name: "x"}); doc.CreationInfo.Created != "1970-01-01T00:00:00Z" {
		t.Errorf("no time anywhere: %s", doc.CreationInfo.Created)
	}
}

func TestGenerate_Deterministic(t *testing.T) {
	// Many packages in an order that is not sorted, in two files.
	var stanzas []string
	for i := 30; i > 0; i-- {
		stanzas = append(stanzas, stanza(fmt.Sprintf("pkg%02d", i), "1.0", "amd64"))
	}
	img := testImage{Layers: [][]entry{{
		fileEntry("etc/os-release", debianOS), fileEntry(statusPath, status(stanzas...)),
		fileEntry(statusD+"zz", "Package: aa\nVersion: 1\nArchitecture: all\n"),
		fileEntry("usr/lib/python3/site-packages/pip-23.0.dist-info/METADATA", "x"),
	}}}
	ref := writeLayout(t, t.TempDir(), img)
	in := Input{Name: "app", Version: "1", Sources: []source.Fetched{{Name: "s", URL: "https://x/s-1.tgz", SHA256: strings.Repeat("1", 64)}}}
	var first []byte
	for i := 0; i < 3; i++ {
		doc, err := Generate(context.Background(), ref, in)
		if err != nil {
			t.Fatal(err)
		}
		data, err := doc.JSON()
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = data
			names := []string{}
			for _, p := range doc.Packages {
				names = append(names, p.Name)
			}
			if debs := names[2 : len(names)-1]; !slices.IsSorted(debs) || debs[0] != "aa" || len(debs) != 31 {
				t.Errorf("dpkg packages are not sorted: %q", names)
			}
		} else if string(data) != string(first) {
			t.Fatalf("run %d gave other bytes", i+1)
		}
	}
	// The same image written to another layout: the same document.
	doc, err := Generate(context.Background(), writeLayout(t, t.TempDir(), img), in)
	if err != nil {
		t.Fatal(err)
	}
	if data, _ := doc.JSON(); string(data) != string(first) {
		t.Error("the same image in another layout gave another document")
	}

	// Write puts exactly those bytes in the file.
	out := filepath.Join(t.TempDir(), "report.spdx.json")
	if err := Write(out, doc); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(out); string(got) != string(first) {
		t.Error("Write wrote other bytes")
	}
}

func TestGenerate_Cancelled(t *testing.T) {
	ref := writeLayout(t, t.TempDir(), testImage{Layers: [][]entry{{fileEntry(statusPath, stanza("a", "1", "all"))}}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Generate(ctx, ref, Input{}); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled context: got %v", err)
	}
}
