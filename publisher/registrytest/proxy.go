package registrytest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// Entry is one request that went through a Proxy.
type Entry struct {
	Method, Path string
	// Query is the request's raw query (a finished upload's ?digest=).
	Query  string
	Status int
	At     time.Time
}

// Faults say what a Proxy breaks. Fields are read under the proxy's lock;
// set them with Proxy.Set.
type Faults struct {
	// CorruptBlob flips one byte in every download of this blob digest.
	CorruptBlob string
	// FailEveryNthUpload answers every Nth finishing blob upload (the PUT
	// with ?digest=) with 500, or drops the connection when DropConnection.
	FailEveryNthUpload int
	DropConnection     bool
	// FailEveryNthSession refuses every Nth blob upload session (the POST
	// that starts one) with 503 Service Unavailable.
	FailEveryNthSession int
	// SwapManifest answers requests for the manifest named by each key
	// (a digest or tag) with the manifest named by its value: a registry
	// that lies about what a digest is.
	SwapManifest map[string]string
	// HeadDigest answers HEADs of the manifest named by each key (a tag
	// or digest) with 200 and this value as Docker-Content-Digest,
	// whatever the registry holds, as a cache in front of it with a stale
	// entry, or a registry that lies, may; a GET still gets the stored
	// manifest.
	HeadDigest map[string]string
	// EchoAuthorization answers every request whose path contains it
	// with a 400 page quoting the request's Authorization header, as a
	// misconfigured proxy may ("" for none).
	EchoAuthorization string
	// AcceptWithoutStoring answers every PUT whose path and query contain
	// one of these strings with 201 Created, as a registry that stored it
	// would (Location, Docker-Content-Digest), and stores nothing: a
	// registry that loses what it acknowledged.
	AcceptWithoutStoring []string
	// UnavailableBlobs answers GETs of the blobs named (by digest) with
	// 503 Service Unavailable: the first N reads for a value N > 0, every
	// read for a value below 0.
	UnavailableBlobs map[string]int
	// BreakBlobs sends half of the body of GETs of the blobs named (by
	// digest), then breaks the connection: the first N reads for a value
	// N > 0, every read for a value below 0.
	BreakBlobs map[string]int
	// BreakUploads forwards half of the body of the uploads (a PUT or
	// PATCH with ?digest=) of the blobs named to the registry, then breaks
	// both connections: the registry keeps what it got, and the client's
	// request fails. It counts as BreakBlobs does.
	BreakUploads map[string]int
	// BusyManifests answers reads (GET, HEAD) of the manifests named (by
	// tag or digest) with 429 Too Many Requests and Retry-After: 1, as
	// UnavailableBlobs counts.
	BusyManifests map[string]int
	// RefuseMounts answers cross-repository mounts (POST
	// …/uploads/?mount=…) with a plain upload session (202), as a registry
	// that does not mount does.
	RefuseMounts bool
	// Latency delays every request by this much before it is forwarded:
	// one round trip over a far link, paid by each request a client makes.
	Latency time.Duration
	// OnRequest, when set, is called with each request (Status 0) before
	// it is forwarded: a hook that blocks holds it, answer and all.
	OnRequest func(Entry)
	// OnResponse, when set, is called after each proxied response, before
	// the client has all of it: a hook that blocks holds the request.
	OnResponse func(Entry)
}

// Proxy is a plain-HTTP reverse proxy in front of a Registry that records
// every request and injects faults.
type Proxy struct {
	// Host is the proxy's 127.0.0.1:port.
	Host string

	mu        sync.Mutex
	faults    Faults
	uploads   int
	sessions  int
	dropped   int
	refused   map[string]int // reads refused (503, 429), by blob digest or manifest ref
	broken    map[string]int // blob reads broken, by digest
	cut       map[string]int // uploads broken, by digest
	swallowed int
	log       []Entry
}

// NewProxy starts a proxy to upstream; it stops when the test ends.
func NewProxy(t testing.TB, upstream *Registry) *Proxy {
	t.Helper()
	target, _ := url.Parse(upstream.Scheme + "://" + upstream.Host)
	rp := httputil.NewSingleHostReverseProxy(target)
	if upstream.CAFile != "" {
		pem, err := os.ReadFile(upstream.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		rp.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	}
	p := &Proxy{}
	rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		if r.Context().Value(cutUpload{}) != nil {
			panic(http.ErrAbortHandler) // the client's connection breaks too
		}
		w.WriteHeader(http.StatusBadGateway)
	}
	rp.ModifyResponse = func(resp *http.Response) error {
		p.breakBlob(resp)
		p.mu.Lock()
		corrupt := p.faults.CorruptBlob
		p.mu.Unlock()
		if corrupt != "" && resp.Request.Method == http.MethodGet && strings.HasSuffix(resp.Request.URL.Path, "/blobs/"+corrupt) && resp.StatusCode == http.StatusOK {
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return err
			}
			if len(body) > 0 {
				body[len(body)/2] ^= 0x01
			}
			resp.Body = io.NopCloser(bytes.NewReader(body))
		}
		return nil
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			if v := recover(); v != nil {
				p.record(r, rec.status) // a response aborted mid-body (BreakBlobs)
				panic(v)
			}
		}()
		p.mu.Lock()
		for from, to := range p.faults.SwapManifest {
			if strings.HasSuffix(r.URL.Path, "/manifests/"+from) {
				r.URL.Path = strings.TrimSuffix(r.URL.Path, from) + to
			}
		}
		_, ref, _ := strings.Cut(r.URL.Path, "/manifests/")
		head, lie := p.faults.HeadDigest[ref]
		echo, refuseMounts, latency, onRequest := p.faults.EchoAuthorization, p.faults.RefuseMounts, p.faults.Latency, p.faults.OnRequest
		p.mu.Unlock()
		if lie && r.Method == http.MethodHead {
			rec.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
			rec.Header().Set("Docker-Content-Digest", head)
			rec.WriteHeader(http.StatusOK)
			p.record(r, rec.status)
			return
		}
		time.Sleep(latency)
		if onRequest != nil {
			onRequest(Entry{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, At: time.Now()})
		}
		if echo != "" && r.Method != http.MethodHead && strings.Contains(r.URL.Path, echo) && r.Header.Get("Authorization") != "" {
			io.Copy(io.Discard, r.Body)
			rec.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(rec, "Authorization: %s (rejected by proxy)\n", r.Header.Get("Authorization"))
			p.record(r, rec.status)
			return
		}
		if p.unavailable(rec, r) || p.swallow(rec, r) || p.fault(rec, r) {
			p.record(r, rec.status)
			return
		}
		fwd := p.cutUpload(r)
		if refuseMounts && r.Method == http.MethodPost && r.URL.Query().Has("mount") {
			// Forwarded without the mount: the registry opens an upload
			// (202), as one that does not mount does.
			fwd = fwd.Clone(fwd.Context())
			fwd.URL.RawQuery = ""
		}
		rp.ServeHTTP(rec, fwd)
		p.record(r, rec.status)
	}))
	t.Cleanup(srv.Close)
	p.Host = strings.TrimPrefix(srv.URL, "http://")
	return p
}

// breakBlob makes resp's body end in an error half way, as
// Faults.BreakBlobs says: the reverse proxy then aborts the response, and
// the client is left with an unexpected EOF.
func (p *Proxy) breakBlob(resp *http.Response) {
	_, d, blob := strings.Cut(resp.Request.URL.Path, "/blobs/")
	if !blob || resp.Request.Method != http.MethodGet || resp.ContentLength < 2 || (resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent) {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	n, listed := p.faults.BreakBlobs[d]
	if !listed || (n >= 0 && p.broken[d] >= n) {
		return
	}
	if p.broken == nil {
		p.broken = map[string]int{}
	}
	p.broken[d]++
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(io.LimitReader(resp.Body, resp.ContentLength/2), errReader{}), resp.Body}
}

// cutUpload marks a request whose body the proxy cuts (BreakUploads).
type cutUpload struct{}

// cutUpload returns r with half its body then an error, as
// Faults.BreakUploads says, or r as it is.
func (p *Proxy) cutUpload(r *http.Request) *http.Request {
	d := r.URL.Query().Get("digest")
	if (r.Method != http.MethodPut && r.Method != http.MethodPatch) || d == "" || !strings.Contains(r.URL.Path, "/blobs/uploads/") || r.ContentLength < 2 {
		return r
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	n, listed := p.faults.BreakUploads[d]
	if !listed || (n >= 0 && p.cut[d] >= n) {
		return r
	}
	if p.cut == nil {
		p.cut = map[string]int{}
	}
	p.cut[d]++
	out := r.Clone(context.WithValue(r.Context(), cutUpload{}, true))
	out.Body = io.NopCloser(io.MultiReader(io.LimitReader(r.Body, r.ContentLength/2), errReader{}))
	return out
}

// BrokenUploads counts the uploads broken (Faults.BreakUploads).
func (p *Proxy) BrokenUploads() int { return p.total(func() map[string]int { return p.cut }) }

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("injected: connection broken") }

// Broken counts the blob reads broken (Faults.BreakBlobs).
func (p *Proxy) Broken() int { return p.total(func() map[string]int { return p.broken }) }

// total is the sum of the counts in the map m returns, read under the lock.
func (p *Proxy) total(m func() map[string]int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range m() {
		n += c
	}
	return n
}

// Set replaces the faults.
func (p *Proxy) Set(f Faults) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = f
}

// Dropped counts the connections dropped on purpose.
func (p *Proxy) Dropped() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dropped
}

// Log returns the requests so far.
func (p *Proxy) Log() []Entry {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Entry(nil), p.log...)
}

// unavailable answers a blob read with 503 as Faults.UnavailableBlobs
// says, a manifest read with 429 as Faults.BusyManifests says; it
// reports whether it answered.
func (p *Proxy) unavailable(w http.ResponseWriter, r *http.Request) bool {
	var key string
	var faults map[string]int
	_, d, blob := strings.Cut(r.URL.Path, "/blobs/")
	_, m, man := strings.Cut(r.URL.Path, "/manifests/")
	switch {
	case blob && r.Method == http.MethodGet && !strings.HasPrefix(d, "uploads/"):
		key, faults = d, p.faults.UnavailableBlobs
	case man && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		key, faults = m, p.faults.BusyManifests
	default:
		return false
	}
	p.mu.Lock()
	n, listed := faults[key]
	if listed && (n < 0 || p.refused[key] < n) {
		if p.refused == nil {
			p.refused = map[string]int{}
		}
		p.refused[key]++
	} else {
		listed = false
	}
	p.mu.Unlock()
	if !listed {
		return false
	}
	w.Header().Set("Content-Type", "application/json")
	if blob {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"errors":[{"code":"UNAVAILABLE","message":"injected: try again later"}]}`)
		return true
	}
	w.Header().Set("Retry-After", "1")
	w.WriteHeader(http.StatusTooManyRequests)
	io.WriteString(w, `{"errors":[{"code":"TOOMANYREQUESTS","message":"injected: slow down"}]}`)
	return true
}

// swallow acknowledges a PUT without storing it, as
// Faults.AcceptWithoutStoring says; it reports whether it answered.
func (p *Proxy) swallow(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodPut {
		return false
	}
	uri := r.URL.Path + "?" + r.URL.RawQuery
	p.mu.Lock()
	match := slices.ContainsFunc(p.faults.AcceptWithoutStoring, func(s string) bool { return strings.Contains(uri, s) })
	if match {
		p.swallowed++
	}
	p.mu.Unlock()
	if !match {
		return false
	}
	body, _ := io.ReadAll(r.Body)
	d := r.URL.Query().Get("digest")
	if d == "" {
		d = digest.FromBytes(body).String()
	}
	w.Header().Set("Docker-Content-Digest", d)
	w.Header().Set("Location", r.URL.Path)
	w.WriteHeader(http.StatusCreated)
	return true
}

// Swallowed counts the PUTs acknowledged and not stored
// (Faults.AcceptWithoutStoring).
func (p *Proxy) Swallowed() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.swallowed
}

// Unavailable counts the reads refused (Faults.UnavailableBlobs, BusyManifests).
func (p *Proxy) Unavailable() int { return p.total(func() map[string]int { return p.refused }) }

// fault injects upload failures; it reports whether it answered.
func (p *Proxy) fault(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/blobs/uploads/") {
		p.mu.Lock()
		p.sessions++
		n, every := p.sessions, p.faults.FailEveryNthSession
		p.mu.Unlock()
		if every <= 0 || n%every != 0 {
			return false
		}
		io.Copy(io.Discard, r.Body)
		http.Error(w, `{"errors":[{"code":"UNAVAILABLE","message":"injected: no upload session now"}]}`, http.StatusServiceUnavailable)
		return true
	}
	if r.Method != http.MethodPut || !strings.Contains(r.URL.Path, "/blobs/uploads/") || r.URL.Query().Get("digest") == "" {
		return false
	}
	p.mu.Lock()
	p.uploads++
	n, drop, every := p.uploads, p.faults.DropConnection, p.faults.FailEveryNthUpload
	p.mu.Unlock()
	if every <= 0 || n%every != 0 {
		return false
	}
	io.Copy(io.Discard, r.Body)
	if drop {
		if hj, ok := w.(interface{ Unwrap() http.ResponseWriter }); ok {
			if h, ok := hj.Unwrap().(http.Hijacker); ok {
				if conn, _, err := h.Hijack(); err == nil {
					conn.Close()
					p.mu.Lock()
					p.dropped++
					p.mu.Unlock()
					return true
				}
			}
		}
	}
	http.Error(w, `{"errors":[{"code":"UNKNOWN","message":"injected failure"}]}`, http.StatusInternalServerError)
	return true
}

func (p *Proxy) record(r *http.Request, status int) {
	e := Entry{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Status: status, At: time.Now()}
	p.mu.Lock()
	p.log = append(p.log, e)
	hook := p.faults.OnResponse
	p.mu.Unlock()
	if hook != nil {
		hook(e)
	}
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
