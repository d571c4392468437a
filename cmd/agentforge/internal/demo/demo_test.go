package demo

import (
	"archive/zip"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDebianArchive(t *testing.T) {
	cases := []struct {
		name, sources, list, want string
	}{
		{"deb822", "Types: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm\n\nURIs: http://deb.debian.org/debian-security\n", "", "http://mirror.example/debian"},
		{"one-line", "", "deb http://deb.debian.org/debian bookworm main\n", "http://deb.debian.org/debian"},
		{"only security", "URIs: http://deb.debian.org/debian-security\n", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.sources != "" {
				os.WriteFile(filepath.Join(dir, "debian.sources"), []byte(tc.sources), 0o644)
			}
			list := filepath.Join(dir, "sources.list")
			if tc.list != "" {
				os.WriteFile(list, []byte(tc.list), 0o644)
			}
			got, err := debianArchive(dir, list)
			if got != tc.want || (tc.want == "") != (err != nil) {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestStandInJarSaysWhatItIs(t *testing.T) {
	jar, err := standInJar("3355.v388858a_47b_33")
	if err != nil {
		t.Fatal(err)
	}
	again, _ := standInJar("3355.v388858a_47b_33")
	if !bytes.Equal(jar, again) {
		t.Error("the stand-in jar is not reproducible")
	}
	zr, err := zip.NewReader(bytes.NewReader(jar), int64(len(jar)))
	if err != nil {
		t.Fatal(err)
	}
	f, err := zr.Open("META-INF/STAND-IN.txt")
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(f)
	if !strings.Contains(string(text), "NOT the Jenkins remoting agent") {
		t.Errorf("%s", text)
	}
}
