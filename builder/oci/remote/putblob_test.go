package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentforge/agentforge/images/errs"
	"github.com/opencontainers/go-digest"
)

// countingReader counts what was read from it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// PutBlob opens an upload session and sends the whole blob in its one PUT
// with the digest (two requests, as containerd's pusher does:
// containerd/containerd core/remotes/docker/pusher.go), with the push
// token asked for up front; HasBlob is a HEAD. Whatever the registry or
// the source does wrong is an error: a session elsewhere (nothing sent
// there), a digest the registry refuses, a source longer than its size
// (read one byte past it, no more), an answer with another digest, a
// registry that stops taking the body (a temporary *StallError, soon).
func TestClient_PutBlob(t *testing.T) {
	blob := []byte("a layer's bytes")
	d := digest.FromBytes(blob)
	for _, tc := range []struct {
		name     string
		location string // the POST's Location (HOST: the fake's)
		answer   string // how the PUT is answered: "", "400", "202", "other digest", "stall"
		source   []byte // what the source sends (nil: blob)
		size     int64  // the size given (0: len(blob))
		want     func(error) bool
	}{
		{name: "relative location", location: "/v2/team/agent/blobs/uploads/s1?_state=x"},
		{name: "absolute location", location: "https://HOST/v2/team/agent/blobs/uploads/s1?_state=x"},
		{name: "unknown size", location: "/v2/team/agent/blobs/uploads/s1", size: -1},
		{name: "empty blob", location: "/v2/team/agent/blobs/uploads/s1", source: []byte{}},
		{name: "session on another host", location: "https://elsewhere.example/v2/team/agent/blobs/uploads/s1",
			want: func(err error) bool { var r *RefusedError; return errors.As(err, &r) }},
		{name: "digest refused", location: "/v2/team/agent/blobs/uploads/s1", answer: "400",
			want: func(err error) bool {
				return StatusCode(err) == http.StatusBadRequest && strings.Contains(err.Error(), "DIGEST_INVALID")
			}},
		{name: "202 instead of 201", location: "/v2/team/agent/blobs/uploads/s1", answer: "202",
			want: func(err error) bool { return StatusCode(err) == http.StatusAccepted }},
		{name: "answered with another digest", location: "/v2/team/agent/blobs/uploads/s1", answer: "other digest",
			want: func(err error) bool { var i *errs.IntegrityError; return errors.As(err, &i) }},
		{name: "source longer than its size", location: "/v2/team/agent/blobs/uploads/s1", source: append(slices.Clone(blob), bytes.Repeat([]byte("x"), 1<<20)...),
			want: func(err error) bool { return err != nil }},
		{name: "registry stops reading", location: "/v2/team/agent/blobs/uploads/s1", answer: "stall", size: 1 << 40,
			want: func(err error) bool { var s *StallError; return errors.As(err, &s) && Temporary(err) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			source, size, dig := tc.source, tc.size, d
			if source == nil {
				source = blob
			} else if len(source) == 0 {
				dig = digest.FromBytes(nil)
			}
			if size == 0 && len(source) > 0 {
				size = int64(len(blob))
			}
			var mu sync.Mutex
			var tokens, requests []string
			var got []byte
			var gotLength int64
			release := make(chan struct{})
			f := &fakeRegistry{}
			f.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/token" {
					mu.Lock()
					tokens = append(tokens, r.URL.Query().Get("scope"))
					mu.Unlock()
					json.NewEncoder(w).Encode(map[string]string{"token": "tok-" + r.URL.Query().Get("scope")})
					return
				}
				authz := r.Header.Get("Authorization")
				mu.Lock()
				requests = append(requests, r.Method+" "+r.URL.Path+" "+strings.TrimPrefix(authz, "Bearer tok-"))
				mu.Unlock()
				switch {
				case authz == "":
					w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="test",scope="repository:team/agent:pull"`, f.srv.URL))
					w.WriteHeader(http.StatusUnauthorized)
				case r.Method == http.MethodHead:
					mu.Lock()
					present := got != nil && r.URL.Path == "/v2/team/agent/blobs/"+dig.String()
					mu.Unlock()
					if !present {
						http.NotFound(w, r)
					}
				case r.Method == http.MethodPost && r.URL.Path == "/v2/team/agent/blobs/uploads/":
					w.Header().Set("Location", strings.ReplaceAll(tc.location, "HOST", f.host()))
					w.WriteHeader(http.StatusAccepted)
				case r.Method == http.MethodPut && r.URL.Path == "/v2/team/agent/blobs/uploads/s1":
					if tc.answer == "stall" {
						<-release // takes nothing of the body
						return
					}
					body, _ := io.ReadAll(r.Body)
					if r.URL.Query().Get("digest") != dig.String() || (strings.Contains(tc.location, "_state") && r.URL.Query().Get("_state") != "x") {
						t.Errorf("PUT %s: want the session's query and the digest", r.URL)
					}
					switch tc.answer {
					case "400":
						w.WriteHeader(http.StatusBadRequest)
						fmt.Fprint(w, `{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match uploaded content"}]}`)
						return
					case "202":
						w.WriteHeader(http.StatusAccepted)
						return
					case "other digest":
						w.Header().Set("Docker-Content-Digest", digest.FromString("other").String())
					}
					mu.Lock()
					got, gotLength = body, r.ContentLength
					mu.Unlock()
					w.WriteHeader(http.StatusCreated)
				default:
					http.NotFound(w, r)
				}
			}))
			defer f.srv.Close()
			defer close(release) // before Close, which waits for the handlers
			c := f.client(t, "u", "p", false)
			c.blobIdle = 200 * time.Millisecond
			ctx := context.Background()

			if ok, err := c.HasBlob(ctx, dig); ok || err != nil {
				t.Fatalf("HasBlob before: %v, %v; want false", ok, err)
			}
			var r io.Reader = bytes.NewReader(source)
			if tc.answer == "stall" {
				r = zeros{}
			}
			src := &countingReader{r: r}
			start := time.Now()
			err := c.PutBlob(ctx, dig, size, src)
			if tc.want != nil {
				if !tc.want(err) {
					t.Fatalf("PutBlob: %v", err)
				}
				if took := time.Since(start); took > 10*time.Second {
					t.Errorf("failed after %s", took)
				}
				if tc.source != nil && len(tc.source) > len(blob) && src.n > size+1 {
					t.Errorf("read %d bytes of a source whose size is %d, want at most one past it", src.n, size)
				}
				if tc.name == "session on another host" && slices.ContainsFunc(requests, func(s string) bool { return strings.HasPrefix(s, "PUT") }) {
					t.Errorf("requests %q: the body went somewhere", requests)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, source) || gotLength != size {
				t.Errorf("registry got %q with Content-Length %d, want %q, %d", got, gotLength, source, size)
			}
			if ok, err := c.HasBlob(ctx, dig); !ok || err != nil {
				t.Errorf("HasBlob after: %v, %v; want true", ok, err)
			}
			const pull, push = "repository:team/agent:pull", "repository:team/agent:pull,push"
			if want := []string{pull, push}; !slices.Equal(tokens, want) {
				t.Errorf("tokens %q, want %q (one pull, one push, none again)", tokens, want)
			}
			blobPath := "/v2/team/agent/blobs/" + dig.String()
			want := []string{"HEAD " + blobPath + " ", "HEAD " + blobPath + " " + pull,
				"POST /v2/team/agent/blobs/uploads/ " + push, "PUT /v2/team/agent/blobs/uploads/s1 " + push, "HEAD " + blobPath + " " + push}
			if !slices.Equal(requests, want) {
				t.Errorf("requests\n%q, want\n%q", requests, want)
			}
		})
	}
	c := newFake(t, true).client(t, "u", "p", false)
	if err := c.PutBlob(context.Background(), "sha256:short", 1, strings.NewReader("x")); !errors.Is(err, errs.ErrInput) {
		t.Errorf("a bad digest: %v, want an input error", err)
	}
	if _, err := c.HasBlob(context.Background(), "../../x"); !errors.Is(err, errs.ErrInput) {
		t.Errorf("HasBlob of a bad digest: %v, want an input error", err)
	}
}

// zeros is an endless source.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// A registry that refuses the body in the session's PUT (405, or 404 as
// Artifactory 6 answers: docker/buildx#196; older Pulp,
// pulp/pulp_container#1274) gets a temporary error to start again, and
// the body in a PATCH from then on, the PUT ending the session with the
// digest alone. A session the registry lost (404) or a write token that
// expired meanwhile (401) is temporary too, the token then asked again.
func TestClient_PutBlobStartsAgain(t *testing.T) {
	blob := []byte("a layer's bytes")
	d := digest.FromBytes(blob)
	for _, tc := range []struct {
		refusal int
		code    string // in the refusal's body
	}{{http.StatusMethodNotAllowed, ""}, {http.StatusNotFound, "BLOB_UNKNOWN"}, {http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN"}, {http.StatusUnauthorized, ""}} {
		refusal := tc.refusal
		t.Run(strconv.Itoa(refusal)+" "+tc.code, func(t *testing.T) {
			var mu sync.Mutex
			var requests []string
			tokens := 0
			f := &fakeRegistry{}
			f.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				defer mu.Unlock()
				if r.URL.Path == "/token" {
					tokens++
					json.NewEncoder(w).Encode(map[string]string{"token": "tok-" + strconv.Itoa(tokens)})
					return
				}
				if r.Header.Get("Authorization") == "" {
					w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="test"`, f.srv.URL))
					w.WriteHeader(http.StatusUnauthorized)
					return
				}
				body, _ := io.ReadAll(r.Body)
				requests = append(requests, fmt.Sprintf("%s %s %d", r.Method, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "), len(body)))
				switch {
				case r.Method == http.MethodPost:
					w.Header().Set("Location", "/v2/team/agent/blobs/uploads/s1")
					w.WriteHeader(http.StatusAccepted)
				case r.Method == http.MethodGet && r.URL.Path == "/v2/team/agent/blobs/uploads/s1":
					// The session's state, asked before its cancel.
					w.Header().Set("Range", "0-0")
					w.Header().Set("Location", "/v2/team/agent/blobs/uploads/s1?_state=asked")
					w.WriteHeader(http.StatusNoContent)
				case r.Method == http.MethodDelete && r.URL.Query().Get("_state") == "asked":
					w.WriteHeader(http.StatusNoContent)
				case r.Method == http.MethodPatch && bytes.Equal(body, blob):
					w.Header().Set("Location", "/v2/team/agent/blobs/uploads/s1?_state=patched")
					w.WriteHeader(http.StatusAccepted)
				case r.Method == http.MethodPut && len(requests) <= 2:
					w.WriteHeader(refusal)
					fmt.Fprintf(w, `{"errors":[{"code":"%s"}]}`, tc.code)
				case r.Method == http.MethodPut && r.URL.Query().Get("digest") == d.String() && bytes.Equal(body, blob):
					w.WriteHeader(http.StatusCreated)
				case r.Method == http.MethodPut && r.URL.Query().Get("digest") == d.String() && len(body) == 0 && r.URL.Query().Get("_state") == "patched":
					// The commit after a PATCH: slower than the client's
					// time limit for other requests (shortened below).
					time.Sleep(600 * time.Millisecond)
					w.WriteHeader(http.StatusCreated)
				default:
					w.WriteHeader(http.StatusBadRequest)
				}
			}))
			defer f.srv.Close()
			c := f.client(t, "u", "p", false)
			c.http.Timeout = 300 * time.Millisecond
			ctx := context.Background()
			err := c.PutBlob(ctx, d, int64(len(blob)), bytes.NewReader(blob))
			var e *Error
			if !errors.As(err, &e) || !e.Restart || !Temporary(err) || e.StatusCode != refusal {
				t.Fatalf("first upload: %v; want a temporary %d to start again", err, refusal)
			}
			if err := c.PutBlob(ctx, d, int64(len(blob)), bytes.NewReader(blob)); err != nil {
				t.Fatalf("again: %v", err)
			}
			n := strconv.Itoa(len(blob))
			// The refused session is cancelled, unless it is lost.
			cancel := []string{"GET tok-1 0", "DELETE tok-1 0"}
			want := slices.Concat([]string{"POST tok-1 0", "PUT tok-1 " + n}, cancel, []string{"POST tok-1 0", "PATCH tok-1 " + n, "PUT tok-1 0"})
			switch {
			case refusal == http.StatusUnauthorized:
				want = slices.Concat([]string{"POST tok-1 0", "PUT tok-1 " + n}, cancel, []string{"POST tok-2 0", "PUT tok-2 " + n})
			case tc.code == "BLOB_UPLOAD_UNKNOWN": // a lost session: the PUT again
				want = []string{"POST tok-1 0", "PUT tok-1 " + n, "POST tok-1 0", "PUT tok-1 " + n}
			}
			if !slices.Equal(requests, want) {
				t.Errorf("requests %q, want %q", requests, want)
			}
		})
	}
}

// The upload's answers that break the protocol are errors before any
// byte is sent: a session without a Location, a size below -1.
func TestClient_PutBlobRefusesBadSessions(t *testing.T) {
	var puts int
	f := &fakeRegistry{}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			puts++
		}
		w.WriteHeader(http.StatusAccepted) // and no Location
	}))
	defer f.srv.Close()
	c := f.client(t, "u", "p", false)
	if err := c.PutBlob(context.Background(), digest.FromString("x"), 1, strings.NewReader("x")); err == nil || !strings.Contains(err.Error(), "no Location") {
		t.Errorf("a session without a Location: %v", err)
	}
	if err := c.PutBlob(context.Background(), digest.FromString("x"), -5, strings.NewReader("x")); !errors.Is(err, errs.ErrInput) {
		t.Errorf("a size of -5: %v, want an input error", err)
	}
	if puts != 0 {
		t.Errorf("%d PUTs sent", puts)
	}
}

// A registry that has every byte may take longer than the idle time to
// answer (moving a large blob into S3 takes minutes): the upload waits.
// A HEAD that the registry redirects to the blob's storage says the blob
// is there (distribution on S3, GCS or Azure), without following it.
func TestClient_SlowCommitAndRedirectedHead(t *testing.T) {
	blob := []byte("a layer's bytes")
	d := digest.FromBytes(blob)
	var followed bool
	f := &fakeRegistry{}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/storage":
			followed = true
		case r.Method == http.MethodHead && r.URL.Path == "/v2/team/agent/blobs/"+d.String():
			http.Redirect(w, r, "https://storage.example/presigned?X-Amz-Signature=secret", http.StatusTemporaryRedirect)
		case r.Method == http.MethodHead:
			http.Redirect(w, r, "/login", http.StatusFound)
		case r.Method == http.MethodPost:
			w.Header().Set("Location", "/v2/team/agent/blobs/uploads/s1")
			w.WriteHeader(http.StatusAccepted)
		case r.Method == http.MethodPut:
			io.ReadAll(r.Body)
			time.Sleep(600 * time.Millisecond) // three idle times
			w.WriteHeader(http.StatusCreated)
		}
	}))
	defer f.srv.Close()
	c := f.client(t, "u", "p", false)
	c.blobIdle = 200 * time.Millisecond
	if err := c.PutBlob(context.Background(), d, int64(len(blob)), bytes.NewReader(blob)); err != nil {
		t.Errorf("a registry slow to answer once it has every byte: %v", err)
	}
	if ok, err := c.HasBlob(context.Background(), d); !ok || err != nil || followed {
		t.Errorf("a HEAD redirected to storage: %v, %v (followed: %v); want there, not followed", ok, err, followed)
	}
	if ok, err := c.HasBlob(context.Background(), digest.FromString("other")); ok || StatusCode(err) != http.StatusFound {
		t.Errorf("a HEAD redirected to a login page on the registry: %v, %v; want the 302 as an error", ok, err)
	}
}

func TestSameHost(t *testing.T) {
	for _, tc := range []struct {
		url, host string
		same      bool
	}{
		{"https://reg.example/v2/", "reg.example", true},
		{"https://reg.example:443/v2/", "reg.example", true},
		{"https://REG.Example/v2/", "reg.example", true},
		{"http://reg.example:80/v2/", "reg.example", true},
		{"https://reg.example:5000/v2/", "reg.example:5000", true},
		{"http://reg.example:443/v2/", "reg.example", false},
		{"https://reg.example:8443/v2/", "reg.example", false},
		{"https://other.example/v2/", "reg.example", false},
		{"https://[::1]:443/v2/", "[::1]", true},
		{"https://reg.example.evil/v2/", "reg.example", false},
	} {
		u, err := url.Parse(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		if got := sameHost(u, tc.host); got != tc.same {
			t.Errorf("sameHost(%s, %s) = %v, want %v", tc.url, tc.host, got, tc.same)
		}
	}
}
