package update

import (
	"context"
	"net/http"
	"net/http/httptest"
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
