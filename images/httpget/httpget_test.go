package httpget

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGet(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.Write([]byte("0123456789"))
		case "/gone":
			http.NotFound(w, r)
		default:
			http.Error(w, "boom", http.StatusBadGateway)
		}
	}))
	defer srv.Close()
	withCreds := strings.Replace(srv.URL, "http://", "http://user:s3cret@", 1)
	file := filepath.Join(t.TempDir(), "doc")
	os.WriteFile(file, []byte("0123456789"), 0o644)
	for _, tc := range []struct {
		name   string
		url    string
		limit  int64
		want   string
		status int
		large  bool
	}{
		{"ok", srv.URL + "/ok", 10, "0123456789", 0, false},
		{"too large", srv.URL + "/ok", 9, "", 0, true},
		{"not found", withCreds + "/gone", 10, "", 404, false},
		{"server error", srv.URL + "/x", 10, "", 502, false},
		{"file", "file://" + file, 10, "0123456789", 0, false},
		{"file too large", "file://" + file, 4, "", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Get(context.Background(), nil, tc.url, tc.limit)
			var se *StatusError
			switch {
			case tc.status != 0:
				if !errors.As(err, &se) || se.StatusCode != tc.status {
					t.Fatalf("want status %d, got %v", tc.status, err)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Errorf("credentials in %q", err)
				}
			case tc.large:
				if !errors.Is(err, ErrTooLarge) {
					t.Fatalf("want ErrTooLarge, got %v", err)
				}
			case err != nil || string(got) != tc.want:
				t.Fatalf("got %q, %v", got, err)
			}
		})
	}
	if ok, err := Exists(context.Background(), nil, srv.URL+"/gone"); ok || err != nil {
		t.Errorf("Exists(404) = %v, %v", ok, err)
	}
	if _, err := Get(context.Background(), nil, "http://user:s3cret@127.0.0.1:1/x", 10); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("connection error %v", err)
	}
}

func TestRedactURL(t *testing.T) {
	for _, u := range []string{
		"https://user:s3cret@mirror.example/python/",
		"https://:s3cret@mirror.example/",
		// URLs that do not parse still carry their credentials.
		"https://user:s3cret%zz@mirror.example/python/",
		"http://user:s3cret/x@mirror.example:1/",
		"ftp://user:s3cret@[::1/",
	} {
		if got := RedactURL(u); strings.Contains(got, "s3cret") {
			t.Errorf("RedactURL(%q) = %q: the secret shows", u, got)
		}
	}
}

// A URL that does not parse is reported without its credentials: the
// parse error of net/url quotes the URL whole.
func TestGet_UnparsableURLHidesCredentials(t *testing.T) {
	for _, u := range []string{"http://user:s3cret%zz@127.0.0.1:1/x", "http://user:s3cret@127.0.0.1:1/%zz",
		// The authority ends at the '/' (or '?', '#'): the password is
		// taken for a port, which the parse error quotes.
		"http://user:s3cret/x@127.0.0.1:1/x", "http://user:s3cret?x@127.0.0.1:1/x"} {
		_, err := Get(context.Background(), nil, u, 10)
		if err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Get(%q): %v", u, err)
		}
	}
}

// Secure refuses a redirect that leaves https, whatever client the caller
// passes, and keeps the client's own redirect policy otherwise.
func TestGet_RedirectLeavingHTTPSIsRefused(t *testing.T) {
	serve := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("doc")) })
	plain := httptest.NewServer(serve)
	defer plain.Close()
	secure := httptest.NewTLSServer(serve)
	defer secure.Close()
	redirect := func(target string, tls bool) string {
		s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target+"/doc", http.StatusFound)
		}))
		if tls {
			s.StartTLS()
		} else {
			s.Start()
		}
		t.Cleanup(s.Close)
		return s.URL + "/doc"
	}
	noRedirects := new(http.Client)
	*noRedirects = *secure.Client() // a copy: Client returns the server's own
	noRedirects.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for _, tc := range []struct {
		name    string
		url     string
		client  *http.Client
		refused bool
		status  int
	}{
		{"https to http", redirect(plain.URL, true), secure.Client(), true, 0},
		{"https to https to http", redirect(redirect(plain.URL, true), true), secure.Client(), true, 0},
		{"https to https", redirect(secure.URL, true), secure.Client(), false, 0},
		{"http to http", redirect(plain.URL, false), nil, false, 0},
		{"the client's own policy", redirect(secure.URL, true), noRedirects, false, http.StatusFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := Get(context.Background(), tc.client, tc.url, 10)
			var se *StatusError
			switch {
			case tc.refused:
				if !errors.Is(err, ErrInsecureRedirect) {
					t.Fatalf("got %q, %v; want %v", data, err, ErrInsecureRedirect)
				}
			case tc.status != 0:
				if !errors.As(err, &se) || se.StatusCode != tc.status {
					t.Fatalf("got %q, %v; want status %d", data, err, tc.status)
				}
			case err != nil || string(data) != "doc":
				t.Fatalf("got %q, %v", data, err)
			}
		})
	}
}
