package update

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/builder/oci/ocitest"
	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/builder/source"
	"github.com/agentforge/agentforge/images"
	"github.com/agentforge/agentforge/publisher/registrytest"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/types"
)

// imageWith writes an OCI layout holding one image whose single layer has
// files (path -> content), and returns a reference to it.
func imageWith(t *testing.T, files map[string]string) types.ImageReference {
	t.Helper()
	return imageWithLabels(t, files, map[string]string{"org.opencontainers.image.base.digest": "sha256:" + strings.Repeat("1", 64)})
}

// imageWithLabels is imageWith with these labels in its config.
func imageWithLabels(t *testing.T, files, labels map[string]string) types.ImageReference {
	t.Helper()
	dir := t.TempDir()
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	for _, p := range slices.Sorted(func(yield func(string) bool) {
		for k := range files {
			if !yield(k) {
				return
			}
		}
	}) {
		tw.WriteHeader(&tar.Header{Name: p, Mode: 0o644, Size: int64(len(files[p])), Typeflag: tar.TypeReg})
		tw.Write([]byte(files[p]))
	}
	tw.Close()
	put := func(data []byte) digest.Digest {
		d := digest.FromBytes(data)
		os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755)
		os.WriteFile(filepath.Join(dir, "blobs", "sha256", d.Encoded()), data, 0o644)
		return d
	}
	ld := put(layer.Bytes())
	cfg, _ := json.Marshal(imgspecv1.Image{Platform: imgspecv1.Platform{OS: "linux", Architecture: "amd64"},
		Config: imgspecv1.ImageConfig{Labels: labels},
		RootFS: imgspecv1.RootFS{Type: "layers", DiffIDs: []digest.Digest{ld}}})
	cd := put(cfg)
	m, _ := json.Marshal(imgspecv1.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageManifest,
		Config: imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageConfig, Digest: cd, Size: int64(len(cfg))},
		Layers: []imgspecv1.Descriptor{{MediaType: imgspecv1.MediaTypeImageLayer, Digest: ld, Size: int64(layer.Len())}}})
	md := put(m)
	idx, _ := json.Marshal(imgspecv1.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageIndex,
		Manifests: []imgspecv1.Descriptor{{MediaType: imgspecv1.MediaTypeImageManifest, Digest: md, Size: int64(len(m)),
			Annotations: map[string]string{imgspecv1.AnnotationRefName: "1"}}}})
	os.WriteFile(filepath.Join(dir, "index.json"), idx, 0o644)
	os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
	ref, err := oci.ParseReference("oci:"+dir+":1", nil)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

func stanza(name, version, arch string) string {
	return fmt.Sprintf("Package: %s\nStatus: install ok installed\nVersion: %s\nArchitecture: %s\nDescription: x\n continued line: not a field\n\n", name, version, arch)
}

// The image's dpkg database against its suites' indexes: what has a
// newer version, security first; the index state changes when the
// archive publishes anything (what a bump writes to make the apt step run
// again).
func TestCheck_OSPackagesSecurityFirst(t *testing.T) {
	a := newFakeArchive(t)
	img := imageWith(t, map[string]string{
		"etc/os-release": "ID=debian\nVERSION_ID=\"13\"\nVERSION_CODENAME=trixie\n",
		"var/lib/dpkg/status": stanza("libc6", "2.41-12", "amd64") + stanza("openssl", "3.5.1-1", "amd64") +
			stanza("tzdata", "2025b-4", "all") + stanza("bash", "5.2.37-2+b5", "amd64") + stanza("curl", "8.14.1-2", "amd64"),
		"etc/apt/trusted.gpg.d/archive.asc": a.keyring(t),
	})
	a.suite(t, "/debian", "trixie", "Version: 13.0\n", stanza("libc6", "2.41-12", "amd64")+stanza("openssl", "3.5.1-1", "amd64")+
		stanza("tzdata", "2025b-4", "all")+stanza("bash", "5.2.37-2+b5", "amd64")+stanza("curl", "8.14.1-2", "amd64"), "xz")
	a.suite(t, "/debian", "trixie-updates", "Version: 13.1\n", stanza("tzdata", "2025c-0+deb13u1", "all")+stanza("curl", "8.14.1-2~bpo", "amd64"), "gz")
	a.suite(t, "/debian-security", "trixie-security", "Version: 13.2\n", stanza("openssl", "3.5.1-1+deb13u1", "amd64")+stanza("bash", "5.2.37-2+b5", "amd64"), "")
	def := &images.Definition{Path: "x", Base: images.Base{Image: "scratch"}, Vars: map[string]string{"os.index": "none"}}
	opts := Options{Kinds: []string{KindOS}, Image: img, Mirrors: []remote.Mirror{{From: "http://deb.debian.org/", To: a.srv.URL + "/"}}}
	rep := Check(context.Background(), def, opts)
	if len(rep.Problems) != 0 || len(rep.Findings) != 1 || rep.Outdated != 1 {
		t.Fatalf("%+v", rep)
	}
	f := rep.Findings[0]
	var got []string
	for _, p := range f.Packages {
		got = append(got, fmt.Sprintf("%s %s>%s %s %t", p.Name, p.Installed, p.Available, p.Suite, p.Security))
	}
	want := []string{"openssl 3.5.1-1>3.5.1-1+deb13u1 trixie-security true", "tzdata 2025b-4>2025c-0+deb13u1 trixie-updates false"}
	if !slices.Equal(got, want) || !f.Security || !strings.HasPrefix(f.Set["os.index"], "sha256:") {
		t.Fatalf("packages %q (security %t, set %v), want %q", got, f.Security, f.Set, want)
	}
	a.suite(t, "/debian-security", "trixie-security", "Version: 13.3\n", stanza("openssl", "3.5.1-1+deb13u1", "amd64")+stanza("bash", "5.2.37-2+b5", "amd64"), "")
	if again := Check(context.Background(), def, opts); again.Findings[0].Set["os.index"] == f.Set["os.index"] {
		t.Error("the index state did not change with the archive's InRelease")
	}
	// Without the released image there is nothing to compare: a problem,
	// not an error, and the other kinds go on.
	if r := Check(context.Background(), def, Options{Kinds: []string{KindOS}}); len(r.Problems) != 1 || len(r.Findings) != 0 {
		t.Errorf("no image: %+v", r)
	}
}

// The base image's tag moved (an upstream security rebuild): its digest
// now differs from the definition's pin; bumping pins the new one.
func TestCheck_BaseTagMoved(t *testing.T) {
	reg := registrytest.New(t, registrytest.Options{})
	hosts := registrytest.Hosts(t, reg)
	old := registrytest.Push(t, hosts, reg.Host+"/library/ubuntu:24.04", ocitest.Options{Layers: 1, Size: 256, Seed: 1})
	now := registrytest.Push(t, hosts, reg.Host+"/library/ubuntu:24.04", ocitest.Options{Layers: 1, Size: 256, Seed: 2})
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Containerfile"), []byte("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "image.yaml"), []byte("name: x\nversion: \"1\"\nbase:\n  # the base\n  image: "+reg.Host+"/library/ubuntu:24.04\n  digest: "+old.Digest().String()+"\n"), 0o644)
	def, err := images.Find(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	rep := Check(context.Background(), def, Options{Kinds: []string{KindBase}, Hosts: hosts})
	if len(rep.Findings) != 1 || !rep.Findings[0].Outdated || rep.Findings[0].Current != old.Digest().String() || rep.Findings[0].Latest != now.Digest().String() {
		t.Fatalf("%+v", rep)
	}
	b, err := Bump(context.Background(), dir, rep.Findings, BumpOptions{Fetcher: &source.Fetcher{CacheDir: t.TempDir()}})
	if err != nil || b.Status != "bumped" {
		t.Fatalf("bump: %+v %v", b, err)
	}
	if def, err = images.Find(dir, nil); err != nil || def.Base.Digest != now.Digest().String() {
		t.Fatalf("after the bump: %v %v", def, err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "image.yaml"))
	if !strings.Contains(string(data), "  # the base\n") {
		t.Errorf("the bump lost the definition's comment:\n%s", data)
	}
	if again := Check(context.Background(), def, Options{Kinds: []string{KindBase}, Hosts: hosts}); again.Outdated != 0 {
		t.Errorf("still outdated after the bump: %+v", again)
	}
}

// The remoting jar's Maven metadata names a newer release: JEP-229
// versions compare by their build number.
func TestCheck_Remoting(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/public/org/jenkins-ci/main/remoting/maven-metadata.xml" {
			fmt.Fprint(w, `<metadata><groupId>org.jenkins-ci.main</groupId><artifactId>remoting</artifactId><versioning>
<latest>3400.v1234567890ab</latest><release>3400.v1234567890ab</release><versions><version>3355.v388858a_47b_33</version><version>3400.v1234567890ab</version></versions></versioning></metadata>`)
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	def := &images.Definition{Path: "x", Base: images.Base{Image: "scratch"}, Vars: map[string]string{"remoting.version": "3355.v388858a_47b_33"},
		Sources: []images.Source{{Name: "remoting", URL: "https://repo.jenkins-ci.org/public/org/jenkins-ci/main/remoting/3355.v388858a_47b_33/remoting-3355.v388858a_47b_33.jar"}}}
	rep := Check(context.Background(), def, Options{Kinds: []string{KindRemoting}, Mirrors: []remote.Mirror{{From: "https://repo.jenkins-ci.org/", To: srv.URL + "/"}}})
	if len(rep.Findings) != 1 || !rep.Findings[0].Outdated || rep.Findings[0].Set["remoting.version"] != "3400.v1234567890ab" {
		t.Fatalf("%+v", rep)
	}
	for _, tc := range []struct {
		a, b  string
		newer bool
	}{{"3400.v1", "3355.vabc", true}, {"3355.vabc", "3355.vdef", false}, {"4.13.3", "4.13", true}, {"3107.v665000b_51092", "4.13.3", true}} {
		if got := NewerRemoting(tc.a, tc.b); got != tc.newer {
			t.Errorf("NewerRemoting(%s, %s) = %t", tc.a, tc.b, got)
		}
	}
}

// The repository's definition stays at CPython 3.11.9, as the mission
// specifies; outdated says that a newer patch exists (the flow is what
// moves a deployment to it).
func TestCheck_RepositoryDefinitionIsBehindOnCPython(t *testing.T) {
	tarball := []byte("pretend")
	sum := sha256.Sum256(tarball)
	bundle, _ := json.Marshal(map[string]any{"messageSignature": map[string]any{"messageDigest": map[string]string{
		"algorithm": "SHA2_256", "digest": base64.StdEncoding.EncodeToString(sum[:])}}})
	files := map[string][]byte{
		"/ftp/python/": []byte(`<a href="3.11.9/">3.11.9/</a> <a href="3.11.15/">3.11.15/</a> <a href="3.11.16/">3.11.16/</a> <a href="3.12.8/">3.12.8/</a>`),
		"/ftp/python/3.11.16/Python-3.11.16.tar.xz":          tarball,
		"/ftp/python/3.11.16/Python-3.11.16.tar.xz.sigstore": bundle,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if data, ok := files[r.URL.Path]; ok {
			w.Write(data)
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	def, err := images.Find("../../images/python-agent", nil)
	if err != nil {
		t.Fatal(err)
	}
	rep := Check(context.Background(), def, Options{Kinds: []string{KindCPython}, PythonOrg: srv.URL})
	if len(rep.Findings) != 1 {
		t.Fatalf("%+v", rep)
	}
	f := rep.Findings[0]
	if f.Current != "3.11.9" || f.Latest != "3.11.16" || !f.Outdated || f.Set["python.version"] != "3.11.16" {
		t.Fatalf("%+v", f)
	}
}

// osFinding runs the OS check of img against the archive a and returns its
// one finding, with the report; a problem fails the test.
func osFinding(t *testing.T, a *fakeArchive, img types.ImageReference) (Finding, *Report) {
	t.Helper()
	def := &images.Definition{Path: "x", Base: images.Base{Image: "scratch"}, Vars: map[string]string{"os.index": "none"}}
	rep := Check(context.Background(), def, Options{Kinds: []string{KindOS}, Image: img,
		Mirrors: []remote.Mirror{{From: "http://deb.debian.org/", To: a.srv.URL + "/"}}})
	if len(rep.Problems) != 0 || len(rep.Findings) != 1 {
		t.Fatalf("%+v", rep)
	}
	return rep.Findings[0], rep
}

// phasedStanza is an index stanza with a Phased-Update-Percentage.
func phasedStanza(name, version, arch string, percentage int) string {
	return fmt.Sprintf("Package: %s\nVersion: %s\nArchitecture: %s\nPhased-Update-Percentage: %d\n\n", name, version, arch, percentage)
}

// A phased update (Phased-Update-Percentage below 100) is one apt-get
// upgrade may hold back, so it is not pending (a rebuild would not take
// it, and the nightly would bump the index forever); one with a security
// update underneath it is, as apt does not phase security updates.
func TestCheck_OSPhasedUpdatesAreNotPending(t *testing.T) {
	for _, tc := range []struct {
		name              string
		updates, security string
		pending, phased   []string
		wantSecurity      bool
	}{
		{name: "phased at 0%", updates: phasedStanza("libc6", "2.41-12+u1", "amd64", 0),
			phased: []string{"libc6 2.41-12+u1"}},
		{name: "phased at 40%", updates: phasedStanza("libc6", "2.41-12+u1", "amd64", 40),
			phased: []string{"libc6 2.41-12+u1"}},
		{name: "fully phased", updates: phasedStanza("libc6", "2.41-12+u1", "amd64", 100),
			pending: []string{"libc6 2.41-12+u1"}},
		{name: "not a percentage", updates: "Package: libc6\nVersion: 2.41-12+u1\nArchitecture: amd64\nPhased-Update-Percentage: most\n\n",
			pending: []string{"libc6 2.41-12+u1"}},
		{name: "the same version in the security suite", updates: phasedStanza("libc6", "2.41-12+u1", "amd64", 10),
			security: stanza("libc6", "2.41-12+u1", "amd64"), pending: []string{"libc6 2.41-12+u1"}, wantSecurity: true},
		{name: "a security update below the phased one", updates: phasedStanza("libc6", "2.41-12+u2", "amd64", 10),
			security: stanza("libc6", "2.41-12+u1", "amd64"), pending: []string{"libc6 2.41-12+u2"}},
		{name: "an older security version", updates: phasedStanza("libc6", "2.41-12+u1", "amd64", 10),
			security: stanza("libc6", "2.41-11", "amd64"), phased: []string{"libc6 2.41-12+u1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newFakeArchive(t)
			img := imageWith(t, map[string]string{
				"etc/os-release":      "ID=debian\nVERSION_CODENAME=trixie\n",
				"var/lib/dpkg/status": stanza("libc6", "2.41-12", "amd64"),
				"usr/share/keyrings/debian-archive-keyring.pgp": a.keyring(t),
			})
			a.suite(t, "/debian", "trixie", "", stanza("libc6", "2.41-12", "amd64"), "")
			a.suite(t, "/debian", "trixie-updates", "", tc.updates, "")
			a.suite(t, "/debian-security", "trixie-security", "", tc.security, "")
			f, rep := osFinding(t, a, img)
			names := func(us []PackageUpdate) []string {
				var s []string
				for _, u := range us {
					s = append(s, u.Name+" "+u.Available)
				}
				return s
			}
			if got := names(f.Packages); !slices.Equal(got, tc.pending) {
				t.Errorf("pending %q, want %q", got, tc.pending)
			}
			if got := names(f.Phased); !slices.Equal(got, tc.phased) {
				t.Errorf("held back %q, want %q", got, tc.phased)
			}
			if outdated := len(tc.pending) > 0; f.Outdated != outdated || rep.Outdated != len(tc.pending) || (f.Set != nil) != outdated {
				t.Errorf("outdated %t (report %d, set %v), want %t", f.Outdated, rep.Outdated, f.Set, outdated)
			}
			if f.Security != tc.wantSecurity {
				t.Errorf("security %t, want %t", f.Security, tc.wantSecurity)
			}
			if len(tc.phased) > 0 && !strings.Contains(f.Why, "1 phased update") {
				t.Errorf("the finding does not say what it held back: %q", f.Why)
			}
		})
	}
}

// A package on hold in the image (apt-mark hold: dpkg's Status "hold ok
// installed") is one apt-get upgrade never upgrades (apt-mark(8)), so its
// newer version is not pending: a rebuild would not take it, and the
// nightly would bump the index and rebuild every night for nothing. It is
// listed under held, security updates too, and the finding says so.
func TestCheck_OSHeldPackagesAreNotPending(t *testing.T) {
	a := newFakeArchive(t)
	held := strings.Replace(stanza("openssl", "3.5.1-1", "amd64"), "install ok installed", "hold ok installed", 1)
	img := imageWith(t, map[string]string{
		"etc/os-release":      "ID=debian\nVERSION_CODENAME=trixie\n",
		"var/lib/dpkg/status": stanza("libc6", "2.41-12", "amd64") + held,
		"usr/share/keyrings/debian-archive-keyring.pgp": a.keyring(t),
	})
	a.suite(t, "/debian", "trixie", "", stanza("libc6", "2.41-12", "amd64")+stanza("openssl", "3.5.1-1", "amd64"), "")
	a.suite(t, "/debian", "trixie-updates", "", "", "")
	for _, tc := range []struct {
		name     string
		security string
		pending  int
		outdated bool
	}{
		{name: "only the held package", security: stanza("openssl", "3.5.1-1+deb13u1", "amd64")},
		{name: "and another", security: stanza("openssl", "3.5.1-1+deb13u1", "amd64") + stanza("libc6", "2.41-12+deb13u1", "amd64"), pending: 1, outdated: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a.suite(t, "/debian-security", "trixie-security", "", tc.security, "")
			f, _ := osFinding(t, a, img)
			if len(f.Held) != 1 || f.Held[0].Name != "openssl" || !f.Held[0].Security || !strings.Contains(f.Why, "1 update(s) of packages on hold") {
				t.Errorf("held %+v (%q), want openssl's security update, said", f.Held, f.Why)
			}
			if len(f.Packages) != tc.pending || f.Outdated != tc.outdated || slices.ContainsFunc(f.Packages, func(u PackageUpdate) bool { return u.Name == "openssl" }) {
				t.Errorf("pending %+v, outdated %t; want %d pending, without openssl", f.Packages, f.Outdated, tc.pending)
			}
		})
	}
}

// The OS packages of an image are checked where its distribution is one
// the check knows (Debian, Ubuntu); an image of another (Alpine's apk,
// UBI's rpm: no dpkg database) cannot be checked, which is a problem, not
// "nothing pending". An image with no operating system (no os-release,
// no dpkg: scratch, a static binary) has nothing to update.
func TestCheck_OSOfAnotherDistribution(t *testing.T) {
	for _, tc := range []struct {
		name     string
		files    map[string]string
		problems int
	}{
		{name: "alpine", files: map[string]string{"etc/os-release": "ID=alpine\nVERSION_ID=3.23.2\n", "lib/apk/db/installed": "P:musl\nV:1.2.5-r10\n\n"}, problems: 1},
		{name: "no operating system", files: map[string]string{"bin/agent": "static"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			def := &images.Definition{Path: "x", Base: images.Base{Image: "scratch"}, Vars: map[string]string{}}
			rep := Check(context.Background(), def, Options{Kinds: []string{KindOS}, Image: imageWith(t, tc.files)})
			if len(rep.Problems) != tc.problems || rep.Outdated != 0 {
				t.Fatalf("%+v, want %d problem(s)", rep, tc.problems)
			}
			if tc.problems > 0 && !strings.Contains(rep.Problems[0].Error, "alpine") {
				t.Errorf("the problem does not name the distribution: %s", rep.Problems[0].Error)
			}
		})
	}
}
