package jenkins

import (
	"context"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// A controller, or a proxy in front of it, that redirects to another
// origin, another port of the same host included, must not get the
// credentials (or the script) sent there: Go's http.Client keeps
// Authorization on a redirect to the same host name whatever the port or
// scheme (net/http shouldCopyHeaderOnRedirect compares host names only).
// A redirect within the origin is still followed. The redirect is a
// refusal (exit 4), naming where it went.
func TestClient_RedirectToAnotherOriginKeepsCredentials(t *testing.T) {
	const token = "s3cret-api-token-0123456789"
	var mu sync.Mutex
	var leaked []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if r.Header.Get("Authorization") != "" || r.Method == http.MethodPost {
			leaked = append(leaked, r.Method+" "+r.URL.Path)
		}
		mu.Unlock()
		w.Header().Set("X-Jenkins", "2.555.1")
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"mode":"NORMAL"}`))
	}))
	t.Cleanup(other.Close)
	for _, redirected := range []string{"/api/json", "/scriptText"} {
		t.Run(redirected, func(t *testing.T) {
			mu.Lock()
			leaked = nil
			mu.Unlock()
			front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch {
				case r.URL.Path == redirected:
					http.Redirect(w, r, other.URL+r.URL.RequestURI(), http.StatusTemporaryRedirect)
				case r.URL.Path == "/api/json":
					http.Redirect(w, r, "/api/json/", http.StatusFound) // same origin: followed
				case r.URL.Path == "/api/json/":
					w.Header().Set("X-Jenkins", "2.555.1")
					w.Write([]byte(`{"mode":"NORMAL"}`))
				default:
					http.NotFound(w, r)
				}
			}))
			t.Cleanup(front.Close)

			c, err := New(context.Background(), Config{URL: front.URL, User: "admin", Token: token})
			if err == nil {
				_, err = c.Register(context.Background(), pythonTemplate(digestA), Options{})
			}
			var je *Error
			if !errors.As(err, &je) || je.Reason != "redirected" {
				t.Fatalf("%v, want a refusal (redirected) of the redirect to another origin", err)
			}
			if strings.Contains(err.Error(), token) {
				t.Errorf("the error shows the token: %v", err)
			}
			if !strings.Contains(err.Error(), other.URL) {
				t.Errorf("the error does not say where the redirect went (%s): %v", other.URL, err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(leaked) > 0 {
				t.Errorf("the credentials or the script followed the redirect to %s: %v", other.URL, leaked)
			}
		})
	}
}

// A single sign-on proxy on Jenkins' own host sends the POST of a script
// to its login page (302, then 200 with HTML): the script did not run.
// That is a refusal that says where the request went (exit 4), not an HTML
// page quoted as "the script gave no result".
func TestClient_ScriptRedirectedToALoginPage(t *testing.T) {
	const token = "s3cret-api-token-0123456789"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Jenkins", "2.555.1")
		switch r.URL.Path {
		case "/api/json":
			w.Write([]byte(`{"mode":"NORMAL"}`))
		case "/scriptText":
			http.Redirect(w, r, "/sso/login?rd=%2FscriptText", http.StatusFound)
		case "/sso/login":
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte("<html><head><title>Sign in</title></head><body><form>" + strings.Repeat("<div>x</div>", 500) + "</form></body></html>"))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	c, err := New(context.Background(), Config{URL: srv.URL, User: "admin", Token: token})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Register(context.Background(), pythonTemplate(digestA), Options{})
	var je *Error
	if !errors.As(err, &je) || je.Reason != "redirected" || !strings.Contains(je.Hint, "/sso/login") {
		t.Fatalf("Register: %v, want a refusal naming the login page", err)
	}
	if strings.Contains(err.Error(), "<div>") {
		t.Errorf("the login page's HTML is quoted: %v", err)
	}
}

// A page answered in place of the script console's output (a proxy's
// maintenance notice, 200 OK) is quoted as its text, not as markup.
func TestClient_ScriptAnsweredWithAPage(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Jenkins", "2.555.1")
		if r.URL.Path == "/api/json" {
			w.Write([]byte(`{"mode":"NORMAL"}`))
			return
		}
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<html><head><title>Maintenance</title></head><body>" + strings.Repeat("<div>", 50) + "Back at 10:00 UTC" + strings.Repeat("</div>", 50) + "</body></html>"))
	}))
	t.Cleanup(srv.Close)
	c, err := New(context.Background(), Config{URL: srv.URL, User: "admin", Token: "s3cret-api-token-0123456789"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Register(context.Background(), pythonTemplate(digestA), Options{})
	if err == nil || !strings.Contains(err.Error(), "Back at 10:00 UTC") || strings.Contains(err.Error(), "<div>") {
		t.Fatalf("Register: %v, want the page's text without its markup", err)
	}
}

// A controller behind a private CA is reached with its CA file, and only
// with it; a file with no certificate is bad input.
func TestNew_CAFile(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Jenkins", "2.555.1")
		w.Write([]byte(`{"mode":"NORMAL"}`))
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := Config{URL: srv.URL, User: "admin", Token: "s3cret-api-token-0123456789"}
	if _, err := New(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("without the CA file: %v, want a certificate error", err)
	}
	cfg.CAFile = ca
	if _, err := New(context.Background(), cfg); err != nil {
		t.Errorf("with the CA file: %v", err)
	}
	for _, bad := range []string{notPEM, filepath.Join(dir, "missing.pem")} {
		cfg.CAFile = bad
		var ie *InputError
		if _, err := New(context.Background(), cfg); !errors.As(err, &ie) {
			t.Errorf("CA file %s: %v, want bad input", filepath.Base(bad), err)
		}
	}
}

// An HTML page where Jenkins' JSON API should be (a proxy's page, a login
// form with Jenkins' headers) is said as such, as a refusal naming what
// came back, not as gojenkins' "invalid character '<'".
func TestNew_HTMLInsteadOfJSON(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Jenkins", "2.555.1")
		w.Header().Set("Content-Type", "text/html;charset=utf-8")
		w.Write([]byte("<html><body>Welcome</body></html>"))
	}))
	t.Cleanup(srv.Close)
	_, err := New(context.Background(), Config{URL: srv.URL, User: "admin", Token: "s3cret-api-token-0123456789"})
	var je *Error
	if !errors.As(err, &je) || je.Reason != "not-jenkins" || !strings.Contains(je.Hint, "Welcome") {
		t.Fatalf("New: %v, want a not-jenkins refusal naming the HTML answer", err)
	}
}
