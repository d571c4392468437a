package jenkins

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/jenkins/jenkinstest"
)

// A password's CSRF crumb holds only in its session: a proxy that drops
// the session cookie makes Jenkins refuse the crumb (403, "No valid crumb
// was included in the request"). That is said as such, with the way out
// (an API token), not as a missing permission.
func TestClient_CrumbRefusedThroughAProxy(t *testing.T) {
	file := filepath.Join(t.TempDir(), "jenkins.yaml")
	os.WriteFile(file, []byte("jenkins:\n  clouds:\n    - kubernetes:\n        name: kubernetes\n"), 0o644)
	srv := jenkinstest.New(t, jenkinstest.Options{Users: []jenkinstest.User{admin}, State: withOtherTemplate(), CascFile: file})
	u, _ := url.Parse(srv.URL)
	rp := httputil.NewSingleHostReverseProxy(u)
	director := rp.Director
	rp.Director = func(r *http.Request) { director(r); r.Header.Del("Cookie") }
	rp.ModifyResponse = func(r *http.Response) error { r.Header.Del("Set-Cookie"); return nil }
	proxy := httptest.NewServer(rp)
	defer proxy.Close()
	c, err := New(context.Background(), Config{URL: proxy.URL, User: admin.Name, Token: admin.Password})
	if err != nil {
		t.Fatal(err)
	}
	for op, call := range map[string]func() error{
		"register": func() error {
			_, err := c.Register(context.Background(), pythonTemplate(digestA), Options{ScriptConsole: true})
			return err
		},
		"reload": func() error { return c.ReloadCasc(context.Background()) },
	} {
		var je *Error
		if err := call(); !errors.As(err, &je) || je.Reason != "crumb" || !strings.Contains(je.Hint, "API token") {
			t.Errorf("%s: %v, want the crumb refused, with the way out", op, err)
		}
	}
}
