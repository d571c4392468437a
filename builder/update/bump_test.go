package update

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/builder/source"
	"github.com/agentforge/agentforge/builder/source/sourcetest"
	"github.com/agentforge/agentforge/images"
	"github.com/agentforge/agentforge/images/errs"
)

// bumpFolder writes a definition folder whose image.yaml is yaml.
func bumpFolder(t *testing.T, yaml string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Containerfile"), []byte("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, images.FileName), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// pythonOrigin stands in for python.org (and its keyserver): it serves
// files by path and answers 404 for anything else. It returns its URL.
func pythonOrigin(t *testing.T, files map[string][]byte) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if body, ok := files[r.URL.Path]; ok {
			w.Write(body)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// pythonDefinition is an image.yaml at CPython 3.11.9 whose python source
// is origin's Python-VERSION.tar.xz, pinned by python.sha256; vars and
// source add variable and source lines.
func pythonDefinition(origin, vars, source string) string {
	return "name: x\nversion: \"1\"\nbase:\n  image: scratch\nvariables:\n" + vars + "  python.version: 3.11.9\n  python.sha256: " + strings.Repeat("0", 64) + "\n" +
		"sources:\n  - name: python\n    url: " + origin + "/Python-{{python.version}}.tar.xz\n    sha256: \"{{python.sha256}}\"\n" + source + "    dest: python.tar\n"
}

// A bump writes what changes, all of it or nothing: a value the
// definition already has is no change (a "bumped" with nothing to commit
// fails the nightly's git commit), and a value the definition cannot take
// leaves every other value unwritten too.
func TestBump_AllOrNothing(t *testing.T) {
	const block = "name: x\nversion: \"1\"\nbase:\n  image: docker.io/library/ubuntu:24.04\n  digest: sha256:1111111111111111111111111111111111111111111111111111111111111111\nvariables:\n  os.index: \"sha256:aaaa\"\n"
	digest2 := "sha256:" + strings.Repeat("2", 64)
	osIndex := func(v string) Finding {
		return Finding{Kind: KindOS, Current: "10 packages", Latest: "1 with updates", Outdated: true, Set: map[string]string{"os.index": v}}
	}
	baseDigest := func(v string) Finding {
		return Finding{Kind: KindBase, Current: "sha256:" + strings.Repeat("1", 64), Latest: v, Outdated: true, Set: map[string]string{"base.digest": v}}
	}
	for _, tc := range []struct {
		name     string
		yaml     string
		findings []Finding
		status   string
		kinds    []string          // the changes reported
		want     map[string]string // what the definition has after the bump
		err      string            // the error, when the bump fails
	}{
		{name: "the value it has", yaml: block, findings: []Finding{osIndex("sha256:aaaa")},
			status: "current", want: map[string]string{"os.index": "sha256:aaaa"}},
		{name: "the digest it has", yaml: block, findings: []Finding{baseDigest("sha256:" + strings.Repeat("1", 64)), osIndex("sha256:aaaa")},
			status: "current", want: map[string]string{"os.index": "sha256:aaaa"}},
		{name: "one new value of two", yaml: block, findings: []Finding{baseDigest("sha256:" + strings.Repeat("1", 64)), osIndex("sha256:bbbb")},
			status: "bumped", kinds: []string{KindOS}, want: map[string]string{"os.index": "sha256:bbbb"}},
		{name: "both new", yaml: block, findings: []Finding{baseDigest(digest2), osIndex("sha256:bbbb")},
			status: "bumped", kinds: []string{KindBase, KindOS}, want: map[string]string{"os.index": "sha256:bbbb", "base.digest": digest2}},
		{name: "a digest the definition cannot take", yaml: block, findings: []Finding{baseDigest("sha512:" + strings.Repeat("2", 128)), osIndex("sha256:bbbb")},
			status: "current", err: "base.digest", want: map[string]string{"os.index": "sha256:aaaa"}},
		{name: "a flow-style base it cannot edit", yaml: "name: x\nversion: \"1\"\nbase: {image: \"docker.io/library/ubuntu:24.04\"}\nvariables:\n  os.index: \"sha256:aaaa\"\n",
			findings: []Finding{osIndex("sha256:bbbb"), baseDigest(digest2)},
			status:   "current", err: "base.image", want: map[string]string{"os.index": "sha256:aaaa"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := bumpFolder(t, tc.yaml)
			rep, err := Bump(context.Background(), dir, tc.findings, BumpOptions{Fetcher: &source.Fetcher{CacheDir: t.TempDir()}})
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("error %v, want %q", err, tc.err)
			}
			if rep.Status != tc.status {
				t.Errorf("status %s, want %s", rep.Status, tc.status)
			}
			var kinds []string
			for _, c := range rep.Changes {
				kinds = append(kinds, c.Kind)
			}
			if tc.err == "" && !slices.Equal(kinds, tc.kinds) {
				t.Errorf("changes %q, want %q", kinds, tc.kinds)
			}
			after, err := os.ReadFile(filepath.Join(dir, images.FileName))
			if err != nil {
				t.Fatal(err)
			}
			if tc.status == "current" && string(after) != tc.yaml {
				t.Errorf("image.yaml changed:\n%s", after)
			}
			def, err := images.Find(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			if def.Vars["os.index"] != tc.want["os.index"] || tc.want["base.digest"] != "" && def.Base.Digest != tc.want["base.digest"] {
				t.Errorf("after the bump os.index %s, base.digest %s; want %v", def.Vars["os.index"], def.Base.Digest, tc.want)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 2 {
				t.Errorf("the bump left files behind: %v", entries)
			}
		})
	}
}

// Each kind stands alone: a CPython tarball that does not match the sha256
// it is adopted with is not adopted (listed in Failed, the error an
// integrity error), and the OS update found with it still is. Nothing is
// written when the only kind fails.
func TestBump_OneKindFailingAdoptsTheOthers(t *testing.T) {
	origin := pythonOrigin(t, map[string][]byte{"/Python-3.11.16.tar.xz": []byte("pretend this is Python-3.11.16.tar.xz")})
	yaml := pythonDefinition(origin, "  os.index: \"sha256:aaaa\"\n", "")
	cpython := Finding{Kind: KindCPython, Current: "3.11.9", Latest: "3.11.16", Outdated: true,
		Set: map[string]string{"python.version": "3.11.16", "python.sha256": strings.Repeat("f", 64)}} // not the tarball's
	osIndex := Finding{Kind: KindOS, Current: "10 packages", Latest: "1 with updates", Outdated: true, Security: true, Set: map[string]string{"os.index": "sha256:bbbb"}}
	for _, tc := range []struct {
		name     string
		findings []Finding
		status   string
		osIndex  string
	}{
		{name: "with an OS update", findings: []Finding{cpython, osIndex}, status: "bumped", osIndex: "sha256:bbbb"},
		{name: "alone", findings: []Finding{cpython}, status: "current", osIndex: "sha256:aaaa"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := bumpFolder(t, yaml)
			rep, err := Bump(context.Background(), dir, tc.findings, BumpOptions{Fetcher: &source.Fetcher{CacheDir: t.TempDir()}})
			if !errors.Is(err, errs.ErrIntegrity) || !strings.Contains(err.Error(), "cpython not adopted") {
				t.Fatalf("error %v, want the CPython tarball's integrity error", err)
			}
			if rep.Status != tc.status || len(rep.Failed) != 1 || rep.Failed[0].Kind != KindCPython {
				t.Fatalf("%+v", rep)
			}
			def, err := images.Find(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			if def.Vars["os.index"] != tc.osIndex || def.Vars["python.version"] != "3.11.9" {
				t.Errorf("after the bump: os.index %s, python.version %s; want %s, 3.11.9", def.Vars["os.index"], def.Vars["python.version"], tc.osIndex)
			}
		})
	}
}

// The sha256 a CPython finding sets is only python.org's sigstore bundle's
// claim, served with the tarball (the bundle's signature is not checked):
// the tarball matching it proves nothing. Only the release manager's
// OpenPGP signature checks it, so a python source without one (python.org
// publishes none from 3.14 on, PEP 761) is adopted only with a sha256 the
// user checked (--sha256), as when the signature check is skipped.
func TestBump_CPythonUnsignedNeedsItsSHA256(t *testing.T) {
	tarball := sourcetest.PythonTarball(t, "3.11.16")
	sum := fmt.Sprintf("%x", sha256.Sum256(tarball))
	yaml := pythonDefinition(pythonOrigin(t, map[string][]byte{"/Python-3.11.16.tar.xz": tarball}), "", "")
	cpython := Finding{Kind: KindCPython, Current: "3.11.9", Latest: "3.11.16", Outdated: true,
		Set: map[string]string{"python.version": "3.11.16", "python.sha256": sum}} // what the sigstore bundle says
	for _, tc := range []struct {
		name    string
		sha256  string // --sha256
		status  string
		version string
	}{
		{name: "the bundle's sha256 alone", status: "current", version: "3.11.9"},
		{name: "the sha256 given", sha256: sum, status: "bumped", version: "3.11.16"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := bumpFolder(t, yaml)
			rep, err := Bump(context.Background(), dir, []Finding{cpython}, BumpOptions{Fetcher: &source.Fetcher{CacheDir: t.TempDir()}, PythonSHA256: tc.sha256})
			if tc.sha256 == "" && (err == nil || !strings.Contains(err.Error(), "--sha256")) {
				t.Fatalf("error %v, want one asking for --sha256", err)
			}
			if tc.sha256 != "" && err != nil {
				t.Fatal(err)
			}
			if rep.Status != tc.status {
				t.Errorf("status %s, want %s", rep.Status, tc.status)
			}
			def, err := images.Find(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			if def.Vars["python.version"] != tc.version {
				t.Errorf("python.version %s, want %s", def.Vars["python.version"], tc.version)
			}
		})
	}
}

// The release manager's signature covers a tarball's bytes, not the URL
// it is served at: a server that replays an older release's tarball and
// its genuine signature under a new version's URL (with a sigstore bundle
// stating that tarball's sha256) passes the sha256 and OpenPGP checks.
// What binds the bytes to the version is the folder CPython's tarballs
// unpack into (Python-3.11.16/): a bump adopts a tarball of the version
// it names only.
func TestBump_CPythonTarballOfAnotherVersion(t *testing.T) {
	key, fpr, pub := sourcetest.Key(t, "release manager")
	for _, tc := range []struct {
		name    string
		inside  string // the version the tarball holds
		adopted bool
	}{
		{name: "the version it names", inside: "3.11.16", adopted: true},
		{name: "an older release replayed", inside: "3.11.9"},
		{name: "no tarball at all"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tarball := []byte("signed, but no tarball")
			if tc.inside != "" {
				tarball = sourcetest.PythonTarball(t, tc.inside)
			}
			sig := sourcetest.Sign(t, key, tarball)
			origin := pythonOrigin(t, map[string][]byte{"/Python-3.11.16.tar.xz": tarball, "/Python-3.11.16.tar.xz.asc": sig, "/vks/v1/by-fingerprint/" + fpr: pub})
			yaml := pythonDefinition(origin, "", "    signature: {url: \"{{url}}.asc\", fingerprint: "+fpr+"}\n")
			cpython := Finding{Kind: KindCPython, Current: "3.11.9", Latest: "3.11.16", Outdated: true,
				Set: map[string]string{"python.version": "3.11.16", "python.sha256": fmt.Sprintf("%x", sha256.Sum256(tarball))}}
			dir := bumpFolder(t, yaml)
			_, err := Bump(context.Background(), dir, []Finding{cpython}, BumpOptions{Fetcher: &source.Fetcher{CacheDir: t.TempDir(), KeyServer: origin}})
			if tc.adopted && err != nil {
				t.Fatal(err)
			}
			if !tc.adopted && (!errors.Is(err, errs.ErrIntegrity) || !strings.Contains(err.Error(), "Python-"+tc.inside)) {
				t.Fatalf("error %v, want an integrity error naming the tarball's Python-%s", err, tc.inside)
			}
			def, err := images.Find(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			if want := map[bool]string{true: "3.11.16", false: "3.11.9"}[tc.adopted]; def.Vars["python.version"] != want {
				t.Errorf("python.version %s, want %s", def.Vars["python.version"], want)
			}
		})
	}
}

// tarballFolder names the folder a tarball unpacks into: the top folder
// of its first entry, past a pax global header and a "./" entry (a tarball
// made with tar -C DIR .); a first entry that is a file of the folder's
// name is no folder.
func TestTarballFolder(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []*tar.Header
		want    string
	}{
		{"CPython's", []*tar.Header{{Name: "Python-3.11.16/", Typeflag: tar.TypeDir}, {Name: "Python-3.11.16/README.rst", Typeflag: tar.TypeReg}}, "Python-3.11.16"},
		{"a file first", []*tar.Header{{Name: "Python-3.11.16/README.rst", Typeflag: tar.TypeReg}}, "Python-3.11.16"},
		{"a long name (pax)", []*tar.Header{{Name: "Python-3.11.16/" + strings.Repeat("a", 200), Typeflag: tar.TypeReg, Format: tar.FormatPAX}}, "Python-3.11.16"},
		{"a global header first", []*tar.Header{{Name: "g", Typeflag: tar.TypeXGlobalHeader, PAXRecords: map[string]string{"comment": "x"}}, {Name: "Python-3.11.16/", Typeflag: tar.TypeDir}}, "Python-3.11.16"},
		{"./ first", []*tar.Header{{Name: "./", Typeflag: tar.TypeDir}, {Name: "./Python-3.11.16/", Typeflag: tar.TypeDir}}, "Python-3.11.16"},
		{"a file named as the folder", []*tar.Header{{Name: "Python-3.11.16", Typeflag: tar.TypeReg}}, "Python-3.11.16 (a file)"},
	} {
		var buf bytes.Buffer
		gz := gzip.NewWriter(&buf)
		tw := tar.NewWriter(gz)
		for _, h := range tc.entries {
			if err := tw.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
		}
		tw.Close()
		gz.Close()
		path := filepath.Join(t.TempDir(), "python.tgz")
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		if got, err := tarballFolder(path); err != nil || got != tc.want {
			t.Errorf("%s: %q (%v), want %q", tc.name, got, err, tc.want)
		}
	}
}

// A hand edit of image.yaml while a bump downloads what it adopts is not
// overwritten: the values were worked out from the file as it was, so the
// bump writes nothing and says the file changed; the edit stays.
func TestBump_EditMeanwhileIsKept(t *testing.T) {
	var dir string
	// Someone sets another version while the tarball downloads.
	url, sum := editingTarballServer(t, "3.11.16", func() error {
		return images.SetVariables(dir, map[string]string{"python.version": "3.11.12"})
	})
	dir = bumpFolder(t, pythonDefinition(url, "", ""))
	cpython := Finding{Kind: KindCPython, Current: "3.11.9", Latest: "3.11.16", Outdated: true,
		Set: map[string]string{"python.version": "3.11.16", "python.sha256": sum}}
	_, err := Bump(context.Background(), dir, []Finding{cpython}, BumpOptions{Fetcher: &source.Fetcher{CacheDir: t.TempDir()}, PythonSHA256: sum})
	if err == nil || !strings.Contains(err.Error(), "changed meanwhile") {
		t.Fatalf("error %v, want one saying the file changed", err)
	}
	def, err := images.Find(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if def.Vars["python.version"] != "3.11.12" || def.Vars["python.sha256"] != strings.Repeat("0", 64) {
		t.Errorf("python.version %s, sha256 %s: the edit made meanwhile was overwritten", def.Vars["python.version"], def.Vars["python.sha256"])
	}
}

// A finding worked out from an override (outdated --set
// python.version=3.12.1 finds 3.12.4) is not written into a file that
// holds 3.11.9: that would move the file to another series. Bad input,
// nothing written, nothing downloaded.
func TestBump_CheckedWithOverridesIsRefused(t *testing.T) {
	yaml := pythonDefinition("http://127.0.0.1:1", "", "")
	dir := bumpFolder(t, yaml)
	checked, err := images.Find(dir, map[string]string{"python.version": "3.12.1"})
	if err != nil {
		t.Fatal(err)
	}
	cpython := Finding{Kind: KindCPython, Current: "3.12.1", Latest: "3.12.4", Outdated: true,
		Set: map[string]string{"python.version": "3.12.4", "python.sha256": strings.Repeat("1", 64)}}
	_, err = Bump(context.Background(), dir, []Finding{cpython}, BumpOptions{Fetcher: &source.Fetcher{CacheDir: t.TempDir()}, Checked: checked, Overridden: true})
	if !errors.Is(err, errs.ErrInput) {
		t.Fatalf("error %v, want bad input", err)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, images.FileName)); string(data) != yaml {
		t.Errorf("the file was written:\n%s", data)
	}
}

// An edit of the file made after Check read it (while outdated's lookups
// ran, before Bump reads it) is not overwritten: the finding was worked
// out from base.image as it was, and adopting it would pin the old
// image's digest under the new image. Not bad input: nothing written, run
// it again.
func TestBump_EditDuringTheLookupsIsKept(t *testing.T) {
	const yaml = "name: x\nversion: \"1\"\nbase:\n  image: docker.io/library/ubuntu:24.04\n  digest: sha256:1111111111111111111111111111111111111111111111111111111111111111\n"
	dir := bumpFolder(t, yaml)
	checked, err := images.Find(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(yaml, "ubuntu:24.04", "ubuntu:26.04", 1)
	if err := os.WriteFile(filepath.Join(dir, images.FileName), []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	base := Finding{Kind: KindBase, Current: checked.Base.Digest, Latest: "sha256:" + strings.Repeat("2", 64), Outdated: true,
		Set: map[string]string{"base.digest": "sha256:" + strings.Repeat("2", 64)}}
	_, err = Bump(context.Background(), dir, []Finding{base}, BumpOptions{Fetcher: &source.Fetcher{CacheDir: t.TempDir()}, Checked: checked})
	if err == nil || errors.Is(err, errs.ErrInput) || !strings.Contains(err.Error(), "changed meanwhile") {
		t.Fatalf("error %v, want a failure (not bad input) saying the file changed", err)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, images.FileName)); string(data) != edited {
		t.Errorf("the edit was overwritten:\n%s", data)
	}
}

// A hand edit of base.image while a bump downloads another kind's new
// tarball is not overwritten either: the base's new digest was worked out
// from the image as it was, and writing it would pin the old image's
// digest under the new image's name.
func TestBump_BaseImageEditedMeanwhileIsKept(t *testing.T) {
	var dir string
	// Someone moves the base to another image while the tarball downloads.
	url, sum := editingTarballServer(t, "3.11.16", func() error {
		file := filepath.Join(dir, images.FileName)
		data, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		return os.WriteFile(file, bytes.Replace(data, []byte("ubuntu:24.04"), []byte("ubuntu:26.04"), 1), 0o644)
	})
	yaml := strings.Replace(pythonDefinition(url, "", ""), "  image: scratch\n",
		"  image: docker.io/library/ubuntu:24.04\n  digest: sha256:"+strings.Repeat("1", 64)+"\n", 1)
	dir = bumpFolder(t, yaml)
	base := Finding{Kind: KindBase, Current: "sha256:" + strings.Repeat("1", 64), Latest: "sha256:" + strings.Repeat("2", 64), Outdated: true,
		Set: map[string]string{"base.digest": "sha256:" + strings.Repeat("2", 64)}}
	cpython := Finding{Kind: KindCPython, Current: "3.11.9", Latest: "3.11.16", Outdated: true,
		Set: map[string]string{"python.version": "3.11.16", "python.sha256": sum}}
	_, err := Bump(context.Background(), dir, []Finding{base, cpython}, BumpOptions{Fetcher: &source.Fetcher{CacheDir: t.TempDir()}, PythonSHA256: sum})
	if err == nil || !strings.Contains(err.Error(), "changed meanwhile") {
		t.Fatalf("error %v, want one saying the file changed", err)
	}
	def, err := images.Find(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if def.Base.Image != "docker.io/library/ubuntu:26.04" || def.Base.Digest != "sha256:"+strings.Repeat("1", 64) {
		t.Errorf("base %s@%s: the old image's new digest was written under the image set meanwhile", def.Base.Image, def.Base.Digest)
	}
}

// editingTarballServer serves CPython version's test tarball, calling
// edit (an edit of the definition) before each answer, as a hand edit
// made while a bump downloads; it returns its URL and the tarball's sha256.
func editingTarballServer(t *testing.T, version string, edit func() error) (string, string) {
	tarball := sourcetest.PythonTarball(t, version)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/Python-"+version+".tar.xz" {
			http.NotFound(w, r)
			return
		}
		if err := edit(); err != nil {
			t.Error(err)
		}
		w.Write(tarball)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, fmt.Sprintf("%x", sha256.Sum256(tarball))
}

// Maven publishes only a .sha1 beside the remoting jar, on the jar's own
// server (or mirror): a definition with a remoting.sha256 variable pins the
// jar, and bump fills the pin in from the jar it checked against that .sha1,
// for a new release and for the current one while the pin is empty. A
// definition without the variable keeps only the version bumped.
func TestBump_RemotingJarIsPinned(t *testing.T) {
	const older, newer = "3355.v388858a_47b_33", "3400.v1234567890ab"
	jars := map[string][]byte{older: []byte("remoting " + older), newer: []byte("remoting " + newer)}
	sha256Of := func(b []byte) string { return fmt.Sprintf("%x", sha256.Sum256(b)) }
	for _, tc := range []struct {
		name      string
		latest    string // newest release in the Maven metadata
		pin       string // the definition's remoting.sha256 line, "" for none
		badSHA1   bool   // the newer jar's .sha1 names other bytes
		status    string
		version   string
		sha256    string // remoting.sha256 after the bump
		noFinding bool
	}{
		{name: "a new release", latest: newer, pin: "  remoting.sha256: " + sha256Of(jars[older]) + "\n", status: "bumped", version: newer, sha256: sha256Of(jars[newer])},
		{name: "the current release, not pinned yet", latest: older, pin: "  remoting.sha256: \"\"\n", status: "bumped", version: older, sha256: sha256Of(jars[older])},
		{name: "pinned and current", latest: older, pin: "  remoting.sha256: " + sha256Of(jars[older]) + "\n", status: "current", version: older, sha256: sha256Of(jars[older]), noFinding: true},
		{name: "a new release whose .sha1 does not match", latest: newer, pin: "  remoting.sha256: " + sha256Of(jars[older]) + "\n", badSHA1: true, status: "current", version: older, sha256: sha256Of(jars[older])},
		{name: "no pin variable", latest: newer, status: "bumped", version: newer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				const base = "/public/org/jenkins-ci/main/remoting/"
				rest, ok := strings.CutPrefix(r.URL.Path, base)
				switch {
				case ok && rest == "maven-metadata.xml":
					fmt.Fprintf(w, "<metadata><versioning><release>%s</release><versions><version>%s</version><version>%s</version></versions></versioning></metadata>", tc.latest, older, tc.latest)
					return
				case ok:
					for v, jar := range jars {
						name := v + "/remoting-" + v + ".jar"
						switch rest {
						case name:
							w.Write(jar)
							return
						case name + ".sha1":
							if tc.badSHA1 && v == newer {
								jar = []byte("other bytes")
							}
							fmt.Fprintf(w, "%x", sha1.Sum(jar))
							return
						}
					}
				}
				http.NotFound(w, r)
			}))
			defer srv.Close()
			mirrors := []remote.Mirror{{From: "https://repo.jenkins-ci.org/", To: srv.URL + "/"}}
			dir := bumpFolder(t, "name: x\nversion: \"1\"\nbase:\n  image: scratch\nvariables:\n  remoting.version: "+older+"\n"+tc.pin+
				"sources:\n  - name: remoting\n    url: https://repo.jenkins-ci.org/public/org/jenkins-ci/main/remoting/{{remoting.version}}/remoting-{{remoting.version}}.jar\n"+
				map[bool]string{true: "    sha256: \"{{remoting.sha256}}\"\n"}[tc.pin != ""]+
				"    checksum:\n      url: \"{{url}}.sha1\"\n      algorithm: sha1\n    dest: agent.jar\n")
			def, err := images.Find(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			rep := Check(context.Background(), def, Options{Kinds: []string{KindRemoting}, Mirrors: mirrors})
			if len(rep.Findings) != 1 || rep.Findings[0].Outdated == tc.noFinding {
				t.Fatalf("findings %+v, problems %+v", rep.Findings, rep.Problems)
			}
			b, err := Bump(context.Background(), dir, rep.Findings, BumpOptions{Fetcher: &source.Fetcher{CacheDir: t.TempDir(), Mirrors: mirrors}, Checked: def})
			if tc.badSHA1 != errors.Is(err, errs.ErrIntegrity) || b.Status != tc.status {
				t.Fatalf("status %s, error %v", b.Status, err)
			}
			after, err := images.Find(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			if v, pin := after.Vars["remoting.version"], after.Vars[RemotingSHA256]; v != tc.version || pin != tc.sha256 {
				t.Errorf("after the bump: remoting.version %s, remoting.sha256 %q; want %s, %q", v, pin, tc.version, tc.sha256)
			}
			if tc.sha256 != "" && tc.status == "bumped" && !slices.ContainsFunc(b.Changes[0].Checks, func(c string) bool { return strings.Contains(c, "pinned") }) {
				t.Errorf("the change does not say what was pinned: %+v", b.Changes)
			}
		})
	}
}
