package demo

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// debFile is one file in a test package's data archive.
type debFile struct {
	name string
	body string
	link bool
}

// makeDeb builds a Debian package as dpkg-deb lays it out: an ar archive
// of debian-binary, control.tar.gz and data.tar.gz.
func makeDeb(t *testing.T, files []debFile) []byte {
	t.Helper()
	var data bytes.Buffer
	gz := gzip.NewWriter(&data)
	tw := tar.NewWriter(gz)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), Typeflag: tar.TypeReg}
		if f.link {
			h = &tar.Header{Name: f.name, Linkname: f.body, Typeflag: tar.TypeSymlink}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if !f.link {
			tw.Write([]byte(f.body))
		}
	}
	tw.Close()
	gz.Close()
	var ar bytes.Buffer
	ar.WriteString("!<arch>\n")
	member := func(name string, body []byte) {
		fmt.Fprintf(&ar, "%-16s%-12d%-6d%-6d%-8s%-10d`\n", name, 0, 0, 0, "100644", len(body))
		ar.Write(body)
		if len(body)%2 == 1 {
			ar.WriteByte('\n')
		}
	}
	member("debian-binary", []byte("2.0\n"))
	member("control.tar.gz", []byte("odd"))
	member("data.tar.gz", data.Bytes())
	return ar.Bytes()
}

// The demo takes the wheel out of Debian's *-whl package and serves it
// where PyPI would: packages/ + BLAKE2b-256 split 2/2/60 + the file name,
// with the version from the name and the sha256 the definition pins.
func TestWheelFromDeb(t *testing.T) {
	const body = "not really a wheel"
	deb := makeDeb(t, []debFile{
		{name: "./usr/share/doc/python3-pip-whl/copyright", body: "x"},
		{name: "./usr/share/python-wheels/pip-25.1.1-py3-none-any.whl", body: body},
		{name: "./usr/share/python-wheels/pipx-1.0-py3-none-any.whl", body: "other"},
	})
	name, data, err := wheelFromDeb(bytes.NewReader(deb), "pip")
	if err != nil || name != "pip-25.1.1-py3-none-any.whl" || string(data) != body {
		t.Fatalf("got %q %q %v", name, data, err)
	}
	dir := t.TempDir()
	w, err := layOut(dir, name, data)
	if err != nil {
		t.Fatal(err)
	}
	// b2sum -l 256 and sha256sum of the body.
	if w.Path != "packages/82/bd/23423830f3493deebbfa28976fedf768306cdd3883ca868a023224611d60/pip-25.1.1-py3-none-any.whl" ||
		w.SHA256 != "5012353aa6a0734b468ac4dcad5b802e70382f41303f87cfe89d223e3a6be654" || w.Project != "pip" || w.Version != "25.1.1" ||
		w.URL() != "https://files.pythonhosted.org/"+w.Path {
		t.Errorf("%+v", w)
	}
	if got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(w.Path))); err != nil || string(got) != body {
		t.Errorf("served file: %q %v", got, err)
	}
	o := wheelOverrides([]pypiWheel{w})
	if o["pip.version"] != "25.1.1" || o["pip.sha256"] != w.SHA256 || o["pip.url"] != w.URL() || len(o) != 3 {
		t.Errorf("overrides %v", o)
	}

	bad := []struct {
		name  string
		files []debFile
		want  string
	}{
		{"none", []debFile{{name: "./usr/share/python-wheels/setuptools-1-py3-none-any.whl", body: "x"}}, "no usr/share/python-wheels/pip-*.whl"},
		{"two", []debFile{{name: "./usr/share/python-wheels/pip-1-py3-none-any.whl", body: "x"}, {name: "./usr/share/python-wheels/pip-2-py3-none-any.whl", body: "y"}}, "two pip wheels"},
		{"link", []debFile{{name: "./usr/share/python-wheels/pip-1-py3-none-any.whl", body: "/etc/shadow", link: true}}, "not a regular file"},
		{"elsewhere", []debFile{{name: "./tmp/usr/share/python-wheels/pip-1-py3-none-any.whl", body: "x"}}, "no usr/share/python-wheels/pip-*.whl"},
	}
	for _, tc := range bad {
		if _, _, err := wheelFromDeb(bytes.NewReader(makeDeb(t, tc.files)), "pip"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want %q, got %v", tc.name, tc.want, err)
		}
	}
	if _, _, err := wheelFromDeb(strings.NewReader("PK\x03\x04 a zip"), "pip"); err == nil || !strings.Contains(err.Error(), "not a Debian package") {
		t.Errorf("not a deb: %v", err)
	}
	if _, err := layOut(dir, "pip-1.0.tar.gz", nil); err == nil {
		t.Error("a source archive was laid out as a wheel")
	}
	if _, err := layOut(dir, "../pip-1.0-py3-none-any.whl", nil); err == nil {
		t.Error("a name with a path was accepted")
	}
}
