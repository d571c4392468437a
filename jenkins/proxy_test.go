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
)

// behindProxy is a client of user's (with secret, an API token or a
// password) for a controller that declares a Kubernetes cloud in its
// configuration-as-code file, reached through a reverse proxy that hands
// each request to in and each answer to out (nil: as they are), as a
// proxy or single sign-on gateway in front of Jenkins does.
func behindProxy(t *testing.T, user, secret string, in func(*http.Request), out func(*http.Response)) *Client {
	t.Helper()
	file := filepath.Join(t.TempDir(), "jenkins.yaml")
	if err := os.WriteFile(file, []byte("jenkins:\n  clouds:\n    - kubernetes:\n        name: kubernetes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(cascServer(t, file, nil).URL)
	rp := httputil.NewSingleHostReverseProxy(u)
	director := rp.Director
	rp.Director = func(r *http.Request) {
		director(r)
		if in != nil {
			in(r)
		}
	}
	rp.ModifyResponse = func(r *http.Response) error {
		if out != nil {
			out(r)
		}
		return nil
	}
	proxy := httptest.NewServer(rp)
	t.Cleanup(proxy.Close)
	c, err := New(context.Background(), Config{URL: proxy.URL, User: user, Token: secret})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The plugin answers a reload by sending the browser back to its page
// (ConfigurationAsCode.doReload: response.sendRedirect(""), at 58646eb6).
// Behind a path prefix that page is under the prefix, and the reload
// counts; a single sign-on proxy that sends the request to its login page
// instead reloaded nothing, which is a refusal naming where it went.
func TestReloadCasc_Redirects(t *testing.T) {
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
			c := behindProxy(t, "admin", token, nil, func(r *http.Response) {
				if r.StatusCode == http.StatusFound {
					r.Header.Set("Location", tc.location)
				}
			})
			err := c.ReloadCasc(context.Background())
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

// A password's CSRF crumb holds only in its session: a proxy that drops
// the session cookie makes Jenkins refuse the crumb (403, "No valid crumb
// was included in the request"). That is said as such, with the way out
// (an API token), not as a missing permission.
func TestClient_CrumbRefusedThroughAProxy(t *testing.T) {
	c := behindProxy(t, admin.Name, admin.Password,
		func(r *http.Request) { r.Header.Del("Cookie") },
		func(r *http.Response) { r.Header.Del("Set-Cookie") })
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
