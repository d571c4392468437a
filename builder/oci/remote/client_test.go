package remote

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/images/redact"
	"github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker/reference"
)

func TestParseChallenge(t *testing.T) {
	for _, tc := range []struct {
		in     string
		scheme string
		params map[string]string
	}{
		{`Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"`, "bearer",
			map[string]string{"realm": "https://auth.docker.io/token", "service": "registry.docker.io", "scope": "repository:library/alpine:pull"}},
		{`Basic realm="Registry Realm"`, "basic", map[string]string{"realm": "Registry Realm"}},
		{`bearer realm=https://r.example/token, service=reg`, "bearer", map[string]string{"realm": "https://r.example/token", "service": "reg"}},
		{`Bearer realm="a\"b",scope="x,y"`, "bearer", map[string]string{"realm": `a"b`, "scope": "x,y"}},
		{`Bearer realm="first",realm="second"`, "bearer", map[string]string{"realm": "first"}},
		{`Bearer realm="unterminated`, "bearer", map[string]string{"realm": "unterminated"}},
		{`Negotiate`, "negotiate", map[string]string{}},
		{``, "", map[string]string{}},
	} {
		scheme, params := ParseChallenge(tc.in)
		if scheme != tc.scheme || !reflect.DeepEqual(params, tc.params) {
			t.Errorf("ParseChallenge(%q) = %q %v, want %q %v", tc.in, scheme, params, tc.scheme, tc.params)
		}
	}
}

func TestNextLink(t *testing.T) {
	for _, tc := range []struct {
		links []string
		want  string
	}{
		{[]string{`</v2/a/referrers/sha256:1?n=2&last=x>; rel="next"`}, "/v2/a/referrers/sha256:1?n=2&last=x"},
		{[]string{`<https://r.example/p2>; rel=next`}, "https://r.example/p2"},
		{[]string{`</prev>; rel="prev", </next>; rel="next"`}, "/next"},
		{[]string{`</prev>; rel="prev"`, `</next>; rel="next"`}, "/next"},
		{[]string{`</self>; rel="self"`}, ""},
		{[]string{`/no-brackets; rel="next"`}, ""},
		{nil, ""},
	} {
		h := http.Header{"Link": tc.links}
		if got := NextLink(h); got != tc.want {
			t.Errorf("NextLink(%q) = %q, want %q", tc.links, got, tc.want)
		}
	}
}

// fakeRegistry answers the referrers API for one repository, with the
// authentication and pages a test sets; it records what it was sent.
type fakeRegistry struct {
	srv         *httptest.Server
	mu          sync.Mutex
	authz       []string // Authorization headers received on /v2/ paths
	forms       []string // token requests (form or query)
	pages       [][]imgspecv1.Descriptor
	next        func(page int) string // Link target after page (default: the next page, if any)
	challeng    string                // WWW-Authenticate; "" means no auth
	accept      func(authz string) bool
	body        []byte // served instead of the pages, when set
	redirect    string // where referrers requests are sent instead (HOST: the fake's)
	status      int    // answered to referrers requests instead, when set
	contentType string // of referrers answers, when set
	echo        bool   // answer referrers requests with a 500 page quoting the request's Authorization
}

func newFake(t *testing.T, tls bool) *fakeRegistry {
	t.Helper()
	f := &fakeRegistry{}
	h := http.HandlerFunc(f.serve)
	if tls {
		f.srv = httptest.NewTLSServer(h)
	} else {
		f.srv = httptest.NewServer(h)
	}
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeRegistry) host() string {
	return strings.TrimPrefix(strings.TrimPrefix(f.srv.URL, "https://"), "http://")
}

func (f *fakeRegistry) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.URL.Path == "/token" {
		r.ParseForm()
		user, pass, _ := r.BasicAuth()
		f.forms = append(f.forms, fmt.Sprintf("%s %s user=%s pass=%s", r.Method, r.Form.Encode(), user, pass))
		if user == "bad" {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"details":"incorrect username or password"}`)
			return
		}
		tok := "tok-" + r.Form.Get("scope")
		if n := len(f.forms); n > 1 {
			tok += fmt.Sprint("-", n) // a fresh token each time after the first
		}
		json.NewEncoder(w).Encode(map[string]string{"access_token": tok})
		return
	}
	f.authz = append(f.authz, r.Header.Get("Authorization"))
	if f.challeng != "" && !f.accept(r.Header.Get("Authorization")) {
		w.Header().Set("WWW-Authenticate", strings.ReplaceAll(f.challeng, "HOST", f.srv.URL))
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if !strings.HasPrefix(r.URL.Path, "/v2/team/agent/referrers/") {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", imgspecv1.MediaTypeImageIndex)
	if f.contentType != "" {
		w.Header().Set("Content-Type", f.contentType)
	}
	if f.echo {
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, "proxy error; request headers: Authorization: %s; Accept: %s\n", r.Header.Get("Authorization"), r.Header.Get("Accept"))
		return
	}
	if f.status != 0 {
		w.WriteHeader(f.status)
		fmt.Fprint(w, `{"errors":[{"code":"UNSUPPORTED"}]}`)
		return
	}
	if f.redirect != "" {
		http.Redirect(w, r, strings.ReplaceAll(f.redirect, "HOST", f.host()), http.StatusTemporaryRedirect)
		return
	}
	if f.body != nil {
		w.Write(f.body)
		return
	}
	page := 0
	fmt.Sscan(r.URL.Query().Get("page"), &page)
	next := ""
	if f.next != nil {
		next = f.next(page)
	} else if page+1 < len(f.pages) {
		next = fmt.Sprintf("%s?page=%d", r.URL.Path, page+1)
	}
	if next != "" {
		w.Header().Set("Link", "<"+next+`>; rel="next"`)
	}
	var manifests []imgspecv1.Descriptor
	if page < len(f.pages) {
		manifests = f.pages[page]
	}
	json.NewEncoder(w).Encode(imgspecv1.Index{MediaType: imgspecv1.MediaTypeImageIndex, Manifests: manifests})
}

// client is a Client for the fake's team/agent, with user:pass (or an
// identity token when user is "<token>") and the fake's CA.
func (f *fakeRegistry) client(t *testing.T, user, pass string, insecure bool) *Client {
	t.Helper()
	return f.clientWith(t, user, pass, insecure, true)
}

// clientWith is client, trusting the fake's CA only when trustCA is set.
func (f *fakeRegistry) clientWith(t *testing.T, user, pass string, insecure, trustCA bool) *Client {
	t.Helper()
	dir := t.TempDir()
	entry := map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))}
	if user == "<token>" {
		entry = map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte("<token>:")), "identitytoken": pass}
	}
	cfg, _ := json.Marshal(map[string]any{"auths": map[string]any{f.host(): entry}})
	r := Registries{AuthFile: filepath.Join(dir, "config.json")}
	if err := os.WriteFile(r.AuthFile, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	if f.srv.Certificate() != nil && trustCA {
		r.CAFile = filepath.Join(dir, "ca.pem")
		if err := os.WriteFile(r.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if insecure {
		r.Insecure = []string{f.host()}
	}
	h, err := r.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	repo, err := reference.ParseNormalizedNamed(f.host() + "/team/agent")
	if err != nil {
		t.Fatal(err)
	}
	c, err := h.Client(repo)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func desc(s string) imgspecv1.Descriptor {
	return imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageManifest, Digest: digest.FromString(s), Size: 100}
}

var subject = digest.FromString("the image")

// The client answers Basic and Bearer challenges (the token for the
// repository's pull scope, from the realm, with the credentials or the
// identity token), sends credentials only once asked, and follows pages.
func TestClient_ReferrersAuthAndPages(t *testing.T) {
	for _, tc := range []struct {
		name, challenge, user, pass, wantAuthz, wantForm string
	}{
		{"basic", `Basic realm="registry"`, "u", "p", "Basic " + base64.StdEncoding.EncodeToString([]byte("u:p")), ""},
		{"bearer", `Bearer realm="HOST/token",service="fake",scope="repository:team/agent:pull"`, "u", "p", "Bearer tok-repository:team/agent:pull",
			"GET scope=repository%3Ateam%2Fagent%3Apull&service=fake user=u pass=p"},
		{"bearer without scope", `Bearer realm="HOST/token",service="fake"`, "u", "p", "Bearer tok-repository:team/agent:pull",
			"GET scope=repository%3Ateam%2Fagent%3Apull&service=fake user=u pass=p"},
		{"identity token", `Bearer realm="HOST/token",service="fake"`, "<token>", "refresh-me", "Bearer tok-repository:team/agent:pull",
			"POST client_id=agentforge&grant_type=refresh_token&refresh_token=refresh-me&scope=repository%3Ateam%2Fagent%3Apull&service=fake user= pass="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, true)
			f.challeng = tc.challenge
			f.accept = func(a string) bool { return a == tc.wantAuthz }
			f.pages = [][]imgspecv1.Descriptor{{desc("a"), desc("b")}, {desc("c")}, {desc("d")}}
			list, ok, err := f.client(t, tc.user, tc.pass, false).Referrers(context.Background(), subject)
			if err != nil || !ok {
				t.Fatalf("Referrers: %v %v", ok, err)
			}
			if len(list) != 4 || list[0].Digest != desc("a").Digest || list[3].Digest != desc("d").Digest {
				t.Errorf("list: %v, want the four entries of three pages", list)
			}
			if f.authz[0] != "" {
				t.Errorf("credentials sent before the registry asked: %q", f.authz[0])
			}
			if tc.wantForm != "" && (len(f.forms) != 1 || f.forms[0] != tc.wantForm) {
				t.Errorf("token requests: %q, want one %q", f.forms, tc.wantForm)
			}
		})
	}
}

// No referrers API is not an error: supported is false. Server errors
// and refused credentials are errors (the first retryable).
func TestClient_NoReferrersAPI(t *testing.T) {
	for _, tc := range []struct {
		status    int
		supported bool // false: no API, no error
		retryable bool
	}{
		{http.StatusNotFound, false, false},
		{http.StatusBadRequest, false, false},
		{http.StatusMethodNotAllowed, false, false},
		{http.StatusNotImplemented, false, false},
		{http.StatusForbidden, true, false},
		{http.StatusInternalServerError, true, true},
		{http.StatusServiceUnavailable, true, true},
	} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			f := newFake(t, true)
			f.status = tc.status
			list, ok, err := f.client(t, "u", "p", false).Referrers(context.Background(), subject)
			if !tc.supported {
				if err != nil || ok || list != nil {
					t.Fatalf("got %v %v %v, want no API and no error", list, ok, err)
				}
				return
			}
			if err == nil || StatusCode(err) != tc.status || Temporary(err) != tc.retryable {
				t.Fatalf("got %v (status %d, retryable %v), want a %d error, retryable %v", err, StatusCode(err), Temporary(err), tc.status, tc.retryable)
			}
		})
	}
}

// What a registry (or whoever answers for it) can do to lie or lead
// astray, and what the client does about it.
func TestClient_Refuses(t *testing.T) {
	many := make([][]imgspecv1.Descriptor, maxReferrersPages+1)
	for i := range many {
		many[i] = []imgspecv1.Descriptor{desc(fmt.Sprint(i))}
	}
	for _, tc := range []struct {
		name      string
		set       func(f *fakeRegistry)
		user      string
		integrity bool   // want an *errs.IntegrityError
		want      string // in the error
	}{
		{name: "next page on another host", set: func(f *fakeRegistry) {
			f.pages = [][]imgspecv1.Descriptor{{desc("a")}, {desc("b")}}
			f.next = func(page int) string {
				if page == 0 {
					return "https://evil.example/v2/team/agent/referrers/x"
				}
				return ""
			}
		}, want: "refusing to follow"},
		{name: "next page over plain HTTP", set: func(f *fakeRegistry) {
			f.pages = [][]imgspecv1.Descriptor{{desc("a")}, {desc("b")}}
			f.next = func(page int) string {
				if page == 0 {
					return "http://" + f.host() + "/v2/team/agent/referrers/x?page=1"
				}
				return ""
			}
		}, want: "refusing to follow"},
		{name: "redirect to plain HTTP", set: func(f *fakeRegistry) {
			f.challeng = `Basic realm="registry"`
			f.accept = func(a string) bool { return a != "" }
			f.redirect = "http://HOST/v2/team/agent/referrers/x"
		}, want: "not HTTPS"},
		{name: "next page in another repository", set: func(f *fakeRegistry) {
			f.pages = [][]imgspecv1.Descriptor{{desc("a")}, {desc("b")}}
			f.next = func(page int) string {
				if page == 0 {
					return "/v2/team/other/referrers/x?page=1"
				}
				return ""
			}
		}, want: "outside /v2/team/agent/referrers/"},
		{name: "next page climbing out with escaped dots", set: func(f *fakeRegistry) {
			f.pages = [][]imgspecv1.Descriptor{{desc("a")}, {desc("b")}}
			f.next = func(page int) string {
				if page == 0 {
					return "/v2/team/agent/referrers/%2e%2e/%2e%2e/other/referrers/x?page=1"
				}
				return ""
			}
		}, want: "refusing to follow the next page"},
		{name: "redirect to another port", set: func(f *fakeRegistry) {
			f.challeng = `Basic realm="registry"`
			f.accept = func(a string) bool { return a != "" }
			f.redirect = "https://127.0.0.1:1/v2/team/agent/referrers/x"
		}, want: "another host"},
		{name: "endless pages", set: func(f *fakeRegistry) { f.pages = many }, integrity: true, want: "pages"},
		{name: "not an index", set: func(f *fakeRegistry) { f.body = []byte(`{"mediaType":"application/vnd.oci.image.manifest.v1+json"}`) }, integrity: true},
		{name: "not JSON", set: func(f *fakeRegistry) { f.body = []byte(`<html>proxy error</html>`) }, integrity: true},
		{name: "entry without size", set: func(f *fakeRegistry) {
			f.body = []byte(`{"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"digest":"` + desc("a").Digest.String() + `"}]}`)
		}, integrity: true},
		{name: "token realm over plain HTTP", set: func(f *fakeRegistry) {
			f.challeng = `Bearer realm="http://127.0.0.1:1/token",service="fake"`
			f.accept = func(string) bool { return false }
		}, want: "plain-HTTP token realm"},
		{name: "wrong password", user: "bad", set: func(f *fakeRegistry) {
			f.challeng = `Bearer realm="HOST/token",service="fake"`
			f.accept = func(string) bool { return false }
		}, want: "401"},
		{name: "credentials refused", set: func(f *fakeRegistry) {
			f.challeng = `Basic realm="registry"`
			f.accept = func(string) bool { return false }
		}, want: "401"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, true)
			tc.set(f)
			user := tc.user
			if user == "" {
				user = "u"
			}
			_, _, err := f.client(t, user, "s3cret-password", false).Referrers(context.Background(), subject)
			if err == nil {
				t.Fatal("no error")
			}
			if tc.integrity != errors.Is(err, errs.ErrIntegrity) {
				t.Errorf("integrity error: %v, want %v (%v)", errors.Is(err, errs.ErrIntegrity), tc.integrity, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if Temporary(err) {
				t.Errorf("%v is retryable: trying again cannot help", err)
			}
			if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), base64.StdEncoding.EncodeToString([]byte(user+":s3cret-password"))) {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
}

// A plain-HTTP registry is reached only when it is listed as insecure;
// otherwise nothing, credentials least of all, goes over plain HTTP.
func TestClient_PlainHTTPOnlyWhenInsecure(t *testing.T) {
	f := newFake(t, false)
	f.challeng = `Basic realm="registry"`
	f.accept = func(a string) bool { return strings.HasPrefix(a, "Basic ") }
	f.pages = [][]imgspecv1.Descriptor{{desc("a")}}
	if _, _, err := f.client(t, "u", "p", false).Referrers(context.Background(), subject); err == nil {
		t.Fatal("a plain-HTTP registry not listed as insecure was used")
	}
	if len(f.authz) != 0 {
		t.Fatalf("the plain-HTTP registry got %d requests", len(f.authz))
	}
	list, ok, err := f.client(t, "u", "p", true).Referrers(context.Background(), subject)
	if err != nil || !ok || len(list) != 1 {
		t.Fatalf("insecure host: %v %v %v", list, ok, err)
	}
}

// A relative next link is resolved against the page it came from, as RFC
// 3986 says (oras does the same), and a bearer token that expires between
// pages is fetched again.
func TestClient_RelativeLinksAndExpiringTokens(t *testing.T) {
	f := newFake(t, true)
	f.pages = [][]imgspecv1.Descriptor{{desc("a")}, {desc("b")}, {desc("c")}}
	f.next = func(page int) string {
		if page+1 < len(f.pages) {
			return fmt.Sprintf("?page=%d", page+1)
		}
		return ""
	}
	f.challeng = `Bearer realm="HOST/token",service="fake"`
	used := map[string]bool{}
	f.accept = func(a string) bool { // every token works once
		if a == "" || used[a] {
			return false
		}
		used[a] = true
		return true
	}
	list, ok, err := f.client(t, "u", "p", false).Referrers(context.Background(), subject)
	if err != nil || !ok || len(list) != 3 {
		t.Fatalf("got %v %v %v, want the three pages", list, ok, err)
	}
	if len(f.forms) != 3 {
		t.Errorf("%d token requests, want one per page (each token expired after one use)", len(f.forms))
	}
}

// A 200 that is not an index (a web page for a route the registry does not
// know) means no referrers API.
func TestClient_NotAnIndexMeansNoAPI(t *testing.T) {
	f := newFake(t, true)
	f.contentType = "text/html; charset=utf-8"
	f.body = []byte("<html>welcome</html>")
	list, ok, err := f.client(t, "u", "p", false).Referrers(context.Background(), subject)
	if err != nil || ok || list != nil {
		t.Fatalf("got %v %v %v, want no API", list, ok, err)
	}
}

// Duplicate entries (across pages too) are listed once.
func TestClient_Duplicates(t *testing.T) {
	f := newFake(t, true)
	f.pages = [][]imgspecv1.Descriptor{{desc("a"), desc("a")}, {desc("b"), desc("a")}}
	list, _, err := f.client(t, "u", "p", false).Referrers(context.Background(), subject)
	if err != nil || len(list) != 2 {
		t.Fatalf("got %v %v, want a and b once", list, err)
	}
}

// Clients are kept per repository: one token serves every call.
func TestHosts_ClientIsReused(t *testing.T) {
	f := newFake(t, true)
	f.challeng = `Bearer realm="HOST/token",service="fake"`
	f.accept = func(a string) bool { return a != "" }
	f.pages = [][]imgspecv1.Descriptor{{desc("a")}}
	c := f.client(t, "u", "p", false)
	for range 3 {
		if _, _, err := c.Referrers(context.Background(), subject); err != nil {
			t.Fatal(err)
		}
	}
	if len(f.forms) != 1 {
		t.Errorf("%d token requests for three calls, want 1", len(f.forms))
	}
}

// Hosts keeps one client per repository: the same one (with its token)
// for every call on a repository, another for another repository.
func TestHosts_OneClientPerRepository(t *testing.T) {
	h, err := Registries{}.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a, _ := reference.ParseNormalizedNamed("registry.example/team/a")
	aTagged, _ := reference.ParseNormalizedNamed("registry.example/team/a:1")
	b, _ := reference.ParseNormalizedNamed("registry.example/team/b")
	ca1, err1 := h.Client(a)
	ca2, err2 := h.Client(aTagged)
	cb, err3 := h.Client(b)
	if err1 != nil || err2 != nil || err3 != nil {
		t.Fatal(err1, err2, err3)
	}
	if ca1 != ca2 {
		t.Error("two clients for one repository")
	}
	if ca1 == cb {
		t.Error("one client (and token scope) for two repositories")
	}
}

// tokenServer is a token realm on a host of its own; it records every
// request it gets, with the credentials sent.
type tokenServer struct {
	srv  *httptest.Server
	mu   sync.Mutex
	got  []string
	seen int
}

func newTokenServer(t *testing.T, tls bool) *tokenServer {
	ts := &tokenServer{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.mu.Lock()
		defer ts.mu.Unlock()
		ts.seen++
		user, pass, _ := r.BasicAuth()
		r.ParseForm()
		ts.got = append(ts.got, fmt.Sprintf("user=%s pass=%s refresh=%s", user, pass, r.Form.Get("refresh_token")))
		json.NewEncoder(w).Encode(map[string]string{"token": "anonymous-token"})
	})
	if tls {
		ts.srv = httptest.NewTLSServer(h)
	} else {
		ts.srv = httptest.NewServer(h)
	}
	t.Cleanup(ts.srv.Close)
	return ts
}

// --insecure-registry means only that the registry may be plain HTTP or
// have a certificate that does not verify. A token realm on another host
// gets credentials only over HTTPS with a verified certificate (c/image
// sends them to any realm it is pointed at); the registry's own host keeps
// its insecure setting.
func TestClient_InsecureNeverSendsCredentialsElsewhereInTheClear(t *testing.T) {
	for _, tc := range []struct {
		name      string
		tlsReg    bool // the registry speaks TLS (with a certificate the client does not trust)
		realmTLS  bool
		sameHost  bool
		user      string
		wantSent  bool // credentials reach the realm
		wantError string
	}{
		{name: "plain-HTTP realm on another host", user: "u", wantError: "plain-HTTP token realm"},
		{name: "plain-HTTP realm on another host, TLS registry", tlsReg: true, user: "u", wantError: "plain-HTTP token realm"},
		{name: "realm on another host with a certificate that does not verify", tlsReg: true, realmTLS: true, user: "u", wantError: "certificate"},
		{name: "identity token, plain-HTTP realm on another host", user: "<token>", wantError: "plain-HTTP token realm"},
		{name: "the insecure registry's own plain-HTTP realm", sameHost: true, user: "u", wantSent: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, tc.tlsReg)
			f.accept = func(a string) bool { return strings.HasPrefix(a, "Bearer ") }
			f.pages = [][]imgspecv1.Descriptor{{desc("a")}}
			var ts *tokenServer
			if tc.sameHost {
				f.challeng = `Bearer realm="HOST/token",service="fake"`
			} else {
				ts = newTokenServer(t, tc.realmTLS)
				f.challeng = `Bearer realm="` + ts.srv.URL + `/token",service="fake"`
			}
			c := f.client(t, tc.user, "s3cret-password", true)
			if tc.tlsReg {
				// Trust nothing: the registry is insecure (no verification),
				// and the realm's certificate must not verify either.
				c = f.clientWith(t, tc.user, "s3cret-password", true, false)
			}
			_, _, err := c.Referrers(context.Background(), subject)
			if ts != nil {
				ts.mu.Lock()
				for _, g := range ts.got {
					if strings.Contains(g, "s3cret") || strings.Contains(g, "user=u") {
						t.Errorf("the realm on another host got the credentials: %s", g)
					}
				}
				ts.mu.Unlock()
			}
			if tc.wantSent {
				if err != nil {
					t.Fatalf("Referrers: %v", err)
				}
				if len(f.forms) != 1 || !strings.Contains(f.forms[0], "pass=s3cret-password") {
					t.Errorf("token requests %q: want the credentials sent to the registry's own realm", f.forms)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantError) {
				t.Fatalf("error %v, want one saying %q", err, tc.wantError)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
}

// A registry (or a proxy in front of it) whose error page echoes the
// request's Authorization header does not get the credentials printed:
// the error names the failure with the credential masked.
func TestClient_ErrorBodiesAreRedacted(t *testing.T) {
	for _, tc := range []struct {
		name, challenge, user string
		secrets               []string
	}{
		{"basic", `Basic realm="registry"`, "u", []string{"s3cret-password", base64.StdEncoding.EncodeToString([]byte("u:s3cret-password"))}},
		{"bearer", `Bearer realm="HOST/token",service="fake"`, "u", []string{"s3cret-password", "tok-repository:team/agent:pull"}},
		{"identity token", `Bearer realm="HOST/token",service="fake"`, "<token>", []string{"s3cret-password", "tok-repository:team/agent:pull"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, true)
			f.challeng = tc.challenge
			f.accept = func(a string) bool { return a != "" }
			f.echo = true
			_, _, err := f.client(t, tc.user, "s3cret-password", false).Referrers(context.Background(), subject)
			if err == nil {
				t.Fatal("no error for a 500")
			}
			if !strings.Contains(err.Error(), "500") || !strings.Contains(err.Error(), "Authorization: "+redact.Mask) {
				t.Errorf("error %q: want the 500 with the header masked", err)
			}
			for _, s := range tc.secrets {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error shows %q: %v", s, err)
				}
			}
			if !Temporary(err) {
				t.Errorf("a redacted 500 is no longer retryable: %v", err)
			}
		})
	}
}

// A blob read follows the registry's redirect to its storage on another
// host (S3, a CDN), over HTTPS only, and the credentials stay behind;
// manifests are read with every image type accepted.
func TestClient_OpenBlobFollowsStorageRedirect(t *testing.T) {
	var storageAuth string
	storage := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		storageAuth = r.Header.Get("Authorization")
		fmt.Fprint(w, "blob bytes")
	}))
	defer storage.Close()
	plainStorage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "x") }))
	defer plainStorage.Close()
	var target string
	reg := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="registry"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch {
		case strings.HasPrefix(r.URL.Path, "/v2/team/agent/blobs/"):
			http.Redirect(w, r, target, http.StatusTemporaryRedirect)
		case r.URL.Path == "/v2/team/agent/manifests/v1" && strings.Contains(r.Header.Get("Accept"), imgspecv1.MediaTypeImageIndex):
			fmt.Fprint(w, `{"schemaVersion":2}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer reg.Close()
	f := &fakeRegistry{srv: reg}
	// The storage's certificate is httptest's, like the registry's: trusted.
	c := f.client(t, "u", "s3cret-password", false)
	d := digest.FromString("blob bytes")

	target = storage.URL + "/bucket/blob?signature=x"
	rc, err := c.OpenBlob(context.Background(), d)
	if err != nil {
		t.Fatalf("OpenBlob through a redirect to storage: %v", err)
	}
	body, _ := io.ReadAll(rc)
	rc.Close()
	if string(body) != "blob bytes" || storageAuth != "" {
		t.Errorf("read %q; storage got Authorization %q, want none", body, storageAuth)
	}
	target = plainStorage.URL + "/bucket/blob?X-Amz-Signature=s3cret-signature"
	if _, err := c.OpenBlob(context.Background(), d); err == nil || !strings.Contains(err.Error(), "refusing the redirect") || strings.Contains(err.Error(), "s3cret-signature") {
		t.Errorf("a redirect to plain HTTP on another host: %v, want refused, without the URL's signature", err)
	}
	// A redirect to plain HTTP on the registry's own host: refused, the
	// query left out too.
	target = "http://" + strings.TrimPrefix(reg.URL, "https://") + "/bucket/blob?X-Amz-Signature=s3cret-signature"
	if _, err := c.OpenBlob(context.Background(), d); err == nil || !strings.Contains(err.Error(), "not HTTPS") || strings.Contains(err.Error(), "s3cret-signature") {
		t.Errorf("a redirect to plain HTTP on the same host: %v, want refused, without the URL's signature", err)
	}
	// A storage that hangs up: the error names it without the signature.
	hangs := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
	}))
	defer hangs.Close()
	target = hangs.URL + "/bucket/blob?X-Amz-Signature=s3cret-signature"
	if _, err := c.OpenBlob(context.Background(), d); err == nil || strings.Contains(err.Error(), "s3cret-signature") || !strings.Contains(err.Error(), strings.TrimPrefix(hangs.URL, "https://")) {
		t.Errorf("a storage that hangs up: %v, want an error naming it, without the URL's signature", err)
	}
	raw, err := c.Manifest(context.Background(), "v1", 1<<20)
	if err != nil || string(raw) != `{"schemaVersion":2}` {
		t.Errorf("Manifest: %q %v", raw, err)
	}
	if _, err := c.Manifest(context.Background(), "missing", 1<<20); !IsNotFound(err) {
		t.Errorf("a missing manifest: %v, want a 404", err)
	}
}

// PutManifest writes a manifest by tag with a token for pull and push on
// the repository, fetched once from the realm a read's challenge named,
// which then serves the reads too; however the registry answers a write
// made with a pull token: a 401 naming the write's scope (distribution,
// Docker Hub), naming no scope, naming pull alone (ghcr's placeholder,
// cloudflare/serverless-registry#148), or a bare 403 (GCR,
// containerd/containerd#1318). A ref that is neither a tag nor a digest is
// refused before anything is sent; a redirect that would turn the PUT
// into a GET is an error, not a success.
func TestClient_PutManifestTakesAPushToken(t *testing.T) {
	for _, mode := range []string{"401 naming the scope", "401 naming no scope", "401 naming pull", "403", "302 to a GET"} {
		t.Run(mode, func(t *testing.T) { testPutManifest(t, mode) })
	}
}

func testPutManifest(t *testing.T, mode string) {
	raw := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}`)
	const push = "Bearer tok-repository:team/agent:pull,push"
	var mu sync.Mutex
	var tokens, seen []string
	var put []byte
	var putType string
	f := &fakeRegistry{}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path == "/token" {
			tokens = append(tokens, r.URL.Query().Get("scope"))
			json.NewEncoder(w).Encode(map[string]string{"token": "tok-" + r.URL.Query().Get("scope")})
			return
		}
		seen = append(seen, r.Method+" "+r.URL.Path)
		got := r.Header.Get("Authorization")
		if r.Method == http.MethodGet && r.URL.Path == "/login" {
			return // a login page's 200
		}
		if got == "" || (r.Method == http.MethodPut && got != push) {
			scope := map[bool]string{false: "repository:team/agent:pull", true: "repository:team/agent:pull,push"}[r.Method == http.MethodPut]
			challenge := fmt.Sprintf(`Bearer realm="%s/token",service="test"`, f.srv.URL)
			switch {
			case r.Method == http.MethodPut && mode == "403":
				w.WriteHeader(http.StatusForbidden)
				return
			case mode == "401 naming no scope":
			case mode == "401 naming pull":
				challenge += `,scope="repository:team/agent:pull"`
			default:
				challenge += fmt.Sprintf(`,scope="%s"`, scope)
			}
			w.Header().Set("WWW-Authenticate", challenge)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch {
		case r.Method == http.MethodPut && mode == "302 to a GET":
			http.Redirect(w, r, "/login", http.StatusFound)
		case r.Method == http.MethodPut && r.URL.Path == "/v2/team/agent/manifests/1.0":
			put, _ = io.ReadAll(r.Body)
			putType = r.Header.Get("Content-Type")
			w.WriteHeader(http.StatusCreated)
		case r.Method == http.MethodHead && r.URL.Path == "/v2/team/agent/manifests/1.0" && put != nil:
			w.Header().Set("Docker-Content-Digest", digest.FromBytes(put).String())
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(f.srv.Close)
	c := f.client(t, "u", "p", false)
	ctx := context.Background()
	if _, err := c.ManifestDigest(ctx, "1.0"); !IsNotFound(err) {
		t.Fatalf("before: %v, want 404", err)
	}
	err := c.PutManifest(ctx, "1.0", imgspecv1.MediaTypeImageManifest, raw)
	if mode == "302 to a GET" {
		if err == nil || StatusCode(err) != http.StatusFound {
			t.Fatalf("a PUT redirected to a login page: %v, want the 302 as an error", err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(put, raw) || putType != imgspecv1.MediaTypeImageManifest {
		t.Errorf("put %q as %q, want the bytes unchanged as %s", put, putType, imgspecv1.MediaTypeImageManifest)
	}
	if got, err := c.ManifestDigest(ctx, "1.0"); err != nil || got != digest.FromBytes(raw) {
		t.Errorf("after: %s, %v", got, err)
	}
	if want := []string{"repository:team/agent:pull", "repository:team/agent:pull,push"}; !slices.Equal(tokens, want) {
		t.Errorf("tokens asked for %q, want %q (one pull, one push, none again)", tokens, want)
	}
	if want := []string{"HEAD /v2/team/agent/manifests/1.0", "HEAD /v2/team/agent/manifests/1.0", "PUT /v2/team/agent/manifests/1.0", "HEAD /v2/team/agent/manifests/1.0"}; !slices.Equal(seen, want) {
		t.Errorf("requests %q, want %q (the write goes with its push token at once)", seen, want)
	}
	n := len(seen)
	for _, ref := range []string{"../../other/manifests/x", "a/b", ".hidden", ""} {
		if err := c.PutManifest(ctx, ref, imgspecv1.MediaTypeImageManifest, raw); !errors.Is(err, errs.ErrInput) {
			t.Errorf("PutManifest(%q) = %v, want an input error", ref, err)
		}
	}
	if len(seen) != n {
		t.Errorf("bad refs sent requests: %q", seen[n:])
	}
}

// A blob's body that stops sending is abandoned after the idle time with a
// temporary *StallError, once the read from where it stopped stalls too;
// a slow body that keeps sending is read whole, however long it takes in
// all.
func TestClient_OpenBlobAbandonsAStalledBody(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var ranges []string
	reg := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fl := w.(http.Flusher)
		switch r.URL.Path {
		case "/v2/team/agent/blobs/" + digest.FromString("stalls").String():
			mu.Lock()
			ranges = append(ranges, r.Header.Get("Range"))
			mu.Unlock()
			fmt.Fprint(w, "sta")
			fl.Flush()
			<-release // and nothing more
		case "/v2/team/agent/blobs/" + digest.FromString("slow but steady").String():
			for _, b := range []byte("slow but steady") {
				w.Write([]byte{b})
				fl.Flush()
				time.Sleep(20 * time.Millisecond) // 300 ms in all, never 100 ms idle
			}
		default:
			http.NotFound(w, r)
		}
	}))
	defer reg.Close()
	defer close(release) // before Close, which waits for the handler
	c := (&fakeRegistry{srv: reg}).client(t, "u", "p", false)
	c.blobIdle, c.resumeWait = 100*time.Millisecond, time.Millisecond

	rc, err := c.OpenBlob(context.Background(), digest.FromString("slow but steady"))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(body) != "slow but steady" {
		t.Errorf("slow body: %q, %v", body, err)
	}

	rc, err = c.OpenBlob(context.Background(), digest.FromString("stalls"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	body, err = io.ReadAll(rc)
	rc.Close()
	var stall *StallError
	if !errors.As(err, &stall) || !Temporary(err) || string(body) != "sta" {
		t.Fatalf("stalled body: %q, %v; want what came, then a temporary *StallError", body, err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("abandoned after %s, want about 200 ms", took)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(ranges, ",") != ",bytes=3-" {
		t.Errorf("GETs with Range %q, want a second one from byte 3", ranges)
	}
}

// A registry's Retry-After (seconds or an HTTP date) is the wait before
// the next try, at most a minute.
func TestRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		header string
		min    time.Duration
		max    time.Duration
	}{
		{"", 0, 0},
		{"2", 2 * time.Second, 2 * time.Second},
		{"0", 0, 0},
		{"-5", 0, 0},
		{"junk", 0, 0},
		{"86400", time.Minute, time.Minute},
		{time.Now().Add(30 * time.Second).UTC().Format(http.TimeFormat), 28 * time.Second, 30 * time.Second},
		{time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat), 0, 0},
	} {
		got := retryAfter(http.Header{"Retry-After": {tc.header}})
		if got < tc.min || got > tc.max {
			t.Errorf("Retry-After %q: %s, want %s to %s", tc.header, got, tc.min, tc.max)
		}
	}
	var tries []time.Time
	err := RetryPolicy{Attempts: 2, Delay: time.Millisecond}.Do(context.Background(), nil, "x", func() error {
		tries = append(tries, time.Now())
		return &Error{Method: http.MethodGet, URL: "https://r/v2/", StatusCode: http.StatusTooManyRequests, RetryAfter: time.Second}
	})
	if err == nil || len(tries) != 2 {
		t.Fatalf("%d tries, %v", len(tries), err)
	}
	if gap := tries[1].Sub(tries[0]); gap < time.Second {
		t.Errorf("retried after %s, the registry asked for 1 s", gap)
	}
}

// Mount goes with a token for both repositories from the start (pull,push
// here, pull on the source; one scope parameter each, as distribution
// reads them), fetched from the realm a read's challenge named: a registry
// that lacks the source's scope answers with a quiet 202 (an upload), as
// Quay does, and mounts nothing. A 201 is mounted; a 202 is not, and its
// session is deleted if the token allows, without a token fetched for it
// (distribution wants a delete scope there).
func TestClient_Mount(t *testing.T) {
	var mu sync.Mutex
	var tokenScopes [][]string
	var requests []string
	mountable := digest.FromString("in staging")
	const own, both = "Bearer tok-repository:team/agent:pull", "Bearer tok-repository:team/agent:pull,push+repository:staging/app:pull"
	f := &fakeRegistry{}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path == "/token" {
			tokenScopes = append(tokenScopes, r.URL.Query()["scope"])
			json.NewEncoder(w).Encode(map[string]string{"token": "tok-" + strings.Join(r.URL.Query()["scope"], "+")})
			return
		}
		authz := r.Header.Get("Authorization")
		requests = append(requests, r.Method+" "+strings.TrimPrefix(authz, "Bearer tok-"))
		switch {
		case authz == "" || r.Method == http.MethodDelete:
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="test",scope="repository:team/agent:pull"`, f.srv.URL))
			w.WriteHeader(http.StatusUnauthorized)
		case r.Method == http.MethodHead && authz == own:
			w.Header().Set("Docker-Content-Digest", mountable.String())
		case r.Method == http.MethodPost && r.URL.Query().Get("from") == "staging/app":
			if authz == both && r.URL.Query().Get("mount") == mountable.String() {
				w.WriteHeader(http.StatusCreated)
				return
			}
			w.Header().Set("Location", "/v2/team/agent/blobs/uploads/session-1?_state=x")
			w.WriteHeader(http.StatusAccepted)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(f.srv.Close)
	c := f.client(t, "u", "p", false)
	from, _ := reference.ParseNormalizedNamed(f.host() + "/staging/app")
	ctx := context.Background()
	if _, err := c.ManifestDigest(ctx, "1"); err != nil { // a read first, as a transfer's
		t.Fatal(err)
	}
	if ok, err := c.Mount(ctx, mountable, from); !ok || err != nil {
		t.Fatalf("mount: %v, %v", ok, err)
	}
	if ok, err := c.Mount(ctx, digest.FromString("not there"), from); ok || err != nil {
		t.Errorf("a 202: %v, %v; want not mounted, no error", ok, err)
	}
	if want := [][]string{{"repository:team/agent:pull"}, {"repository:team/agent:pull,push", "repository:staging/app:pull"}}; !reflect.DeepEqual(tokenScopes, want) {
		t.Errorf("token scopes %q, want %q (the mount's asked for once, up front; none for the DELETE)", tokenScopes, want)
	}
	b := strings.TrimPrefix(both, "Bearer tok-")
	if want := []string{"HEAD ", "HEAD repository:team/agent:pull", "POST " + b, "POST " + b, "DELETE " + b}; !slices.Equal(requests, want) {
		t.Errorf("requests %q, want %q", requests, want)
	}
	other, _ := reference.ParseNormalizedNamed("other.example/staging/app")
	if _, err := c.Mount(ctx, mountable, other); !errors.Is(err, errs.ErrInput) {
		t.Errorf("a mount from another registry: %v, want an input error", err)
	}
}
