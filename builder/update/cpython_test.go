package update

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/images"
)

// python.org's listing is read through the source mirrors, as every other
// URL of the checks is: a site that reaches python.org only through a
// mirror can check CPython too.
func TestCheck_CPythonThroughSourceMirror(t *testing.T) {
	mirror := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/python.org/ftp/python/":
			w.Write([]byte(`<a href="3.11.9/">3.11.9/</a> <a href="3.11.16/">3.11.16/</a>`))
		case "/python.org/ftp/python/3.11.16/Python-3.11.16.tar.xz":
		default:
			http.NotFound(w, r)
		}
	}))
	defer mirror.Close()
	def := &images.Definition{Path: "x", Base: images.Base{Image: "scratch"}, Vars: map[string]string{"python.version": "3.11.9"}}
	for _, m := range []remote.Mirror{
		{From: "https://www.python.org/", To: mirror.URL + "/python.org/"},
		{From: "https://www.python.org/ftp/python/", To: mirror.URL + "/python.org/ftp/python/"}, // a mirror of the release tree only
	} {
		rep := Check(context.Background(), def, Options{Kinds: []string{KindCPython}, Mirrors: []remote.Mirror{m}})
		if len(rep.Problems) != 0 || len(rep.Findings) != 1 || rep.Findings[0].Latest != "3.11.16" {
			t.Fatalf("mirror %s: %+v", m.From, rep)
		}
	}
}

// The sha256 a CPython bump pins is the one of the tarball the definition
// downloads: python.org publishes a sigstore bundle for each format
// (Python-X.tgz.sigstore beside Python-X.tar.xz.sigstore, as its
// https://www.python.org/downloads/metadata/sigstore/ page lists them), and
// the .tgz and .tar.xz differ (e.g. 3.11.9: e7de3240… and 9b1e8965…).
// Pinning the .tar.xz's sha256 for a python.format: tgz definition makes
// every bump fail as an integrity error (exit 3) and CPython never move.
func TestCheck_CPythonFormat(t *testing.T) {
	bundle := func(b byte) []byte {
		return []byte(`{"messageSignature":{"messageDigest":{"algorithm":"SHA2_256","digest":"` +
			base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 32)) + `"}}}`)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ftp/python/":
			w.Write([]byte(`<a href="3.11.9/">3.11.9/</a> <a href="3.11.16/">3.11.16/</a>`))
		case "/ftp/python/3.11.16/Python-3.11.16.tar.xz", "/ftp/python/3.11.16/Python-3.11.16.tgz":
		case "/ftp/python/3.11.16/Python-3.11.16.tar.xz.sigstore":
			w.Write(bundle(0xaa))
		case "/ftp/python/3.11.16/Python-3.11.16.tgz.sigstore":
			w.Write(bundle(0xbb))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	for _, tc := range []struct {
		format string
		want   string
	}{
		{"tar.xz", strings.Repeat("aa", 32)},
		{"tgz", strings.Repeat("bb", 32)},
	} {
		def := &images.Definition{Path: "x", Base: images.Base{Image: "scratch"},
			Vars:    map[string]string{"python.version": "3.11.9", "python.format": tc.format},
			Sources: []images.Source{{Name: "python", URL: srv.URL + "/ftp/python/3.11.9/Python-3.11.9." + tc.format}}}
		rep := Check(context.Background(), def, Options{Kinds: []string{KindCPython}, PythonOrg: srv.URL})
		if len(rep.Problems) != 0 || len(rep.Findings) != 1 {
			t.Fatalf("%s: %+v", tc.format, rep)
		}
		if got := rep.Findings[0].Set["python.sha256"]; got != tc.want {
			t.Errorf("%s: python.sha256 %s, want the %s tarball's %s", tc.format, got, tc.format, tc.want)
		}
	}
}
