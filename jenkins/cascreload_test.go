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
	"strconv"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/jenkins/jenkinstest"
)

// The plugin answers a reload by sending the browser back to its page
// (ConfigurationAsCode.doReload: response.sendRedirect(""), at 58646eb6).
// Behind a path prefix that page is under the prefix, and the reload
// counts; a single sign-on proxy that sends the request to its login page
// instead reloaded nothing, which is a refusal naming where it went.
func TestReloadCasc_Redirects(t *testing.T) {
	file := filepath.Join(t.TempDir(), "jenkins.yaml")
	os.WriteFile(file, []byte("jenkins:\n  clouds:\n    - kubernetes:\n        name: kubernetes\n"), 0o644)
	srv := jenkinstest.New(t, jenkinstest.Options{Users: []jenkinstest.User{admin}, CascFile: file})
	u, _ := url.Parse(srv.URL)
	for _, tc := range []struct {
		name, location string
		refused        bool
	}{
		{name: "its page", location: "/configuration-as-code/"},
		{name: "its page under a prefix", location: "https://ci.example/jenkins/configuration-as-code/"},
		{name: "a login page", location: "https://sso.example/login?from=%2Fconfiguration-as-code%2Freload", refused: true},
		{name: "the root", location: "/", refused: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rp := httputil.NewSingleHostReverseProxy(u)
			rp.ModifyResponse = func(r *http.Response) error {
				if r.StatusCode == http.StatusFound {
					r.Header.Set("Location", tc.location)
				}
				return nil
			}
			proxy := httptest.NewServer(rp)
			defer proxy.Close()
			c, err := New(context.Background(), Config{URL: proxy.URL, User: "admin", Token: token})
			if err != nil {
				t.Fatal(err)
			}
			err = c.ReloadCasc(context.Background())
			var je *Error
			switch {
			case !tc.refused && err != nil:
				t.Fatalf("ReloadCasc: %v", err)
			case tc.refused && (!errors.As(err, &je) || je.Reason != "casc-reload" || !strings.Contains(je.Hint, strconv.Quote(tc.location))):
				t.Fatalf("ReloadCasc: %v, want a casc-reload refusal naming %s", err, tc.location)
			}
		})
	}
}
