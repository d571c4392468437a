package remote

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/images/redact"
	"github.com/opencontainers/go-digest"
	"github.com/sirupsen/logrus"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/docker/config"
	"go.podman.io/image/v5/pkg/tlsclientconfig"
	"go.podman.io/image/v5/types"
)

// Client speaks the distribution API to one repository: the calls c/image
// does not offer (the OCI 1.1 referrers API), and the manifest and blob
// reads and writes (and mounts) that would each cost a c/image client. It
// reaches the registry as c/image would with Hosts.For: the same
// credentials (auth file, credential helpers, identity tokens), CA
// certificates and insecure hosts (HTTPS without verification, then plain
// HTTP, only for those), and it answers the registry's challenge with
// Basic auth or a bearer token, as Docker Hub, Harbor, ghcr and
// distribution ask: for a read, the scope the challenge names; for a
// write, pull and push on the repository (and pull on a mount's source),
// asked for up front, as c/image asks.
//
// Credentials are sent only after the registry asks for them, and never
// over plain HTTP to a host that is not insecure. A token realm on another
// host gets them only over HTTPS with a verified certificate: an insecure
// registry may be plain HTTP or have a bad certificate, nothing more. They
// never appear in errors: every error body is redacted (a proxy's page may
// echo the request's Authorization header).
type Client struct {
	repo    reference.Named
	host    string // host[:port] to dial (docker.io is registry-1.docker.io)
	http    *http.Client
	blobs   *http.Client // as http, and follows a blob's redirect to storage on another host over HTTPS
	uploads *http.Client // as http, without its time limit: a blob's upload takes as long as the link needs
	probe   *http.Client // as http, and a redirect is the answer (a blob's HEAD sent to its storage)
	realms  *http.Client // for token realms on other hosts: TLS verified
	secure  bool         // TLS verified; false for insecure hosts
	creds   types.DockerAuthConfig
	secrets *redact.Set
	// blobIdle is how long a blob's body may stall (0: blobIdle).
	blobIdle time.Duration
	// resumeWait is the pause before a broken blob read or upload goes on (0:
	// resumeWait).
	resumeWait time.Duration
	log        logrus.FieldLogger // nil: nothing logged

	mu     sync.Mutex
	scheme string            // https, or http once an insecure host answered only that
	authz  string            // Authorization header value, once known
	push   map[string]string // Authorization for writes, by the scopes it was asked for
	bearer map[string]string // the last bearer challenge (realm, service): where a push token comes from

	chunked atomic.Bool // the registry refused a blob's body in the session's PUT: it goes in a PATCH
}

// Client returns a client for repo's repository, configured as For(host).
// Clients are kept per repository for the life of h, so that their
// connections and bearer token serve every call.
func (h *Hosts) Client(repo reference.Named) (*Client, error) {
	key := reference.TrimNamed(repo).String()
	if c, ok := h.clients.Load(key); ok {
		return c.(*Client), nil
	}
	c, err := h.newClient(repo)
	if err != nil {
		return nil, err
	}
	got, _ := h.clients.LoadOrStore(key, c)
	return got.(*Client), nil
}

// Repository is the repository the client reads and writes.
func (c *Client) Repository() reference.Named { return c.repo }

func (h *Hosts) newClient(repo reference.Named) (*Client, error) {
	domain := reference.Domain(repo)
	sys := h.For(domain)
	host := domain
	if host == "docker.io" {
		host = "registry-1.docker.io"
	}
	tlsc := &tls.Config{MinVersion: tls.VersionTLS12}
	if dir := certDir(sys, domain); dir != "" {
		if err := tlsclientconfig.SetupCertificates(dir, tlsc); err != nil {
			return nil, fmt.Errorf("%s: certificates in %s: %w", host, dir, err)
		}
	}
	insecure := sys.DockerInsecureSkipTLSVerify == types.OptionalBoolTrue
	tlsc.InsecureSkipVerify = insecure
	creds, err := config.GetCredentialsForRef(sys, reference.TrimNamed(repo))
	if err != nil {
		return nil, fmt.Errorf("%s: credentials: %w", host, err)
	}
	sec := h.secrets
	sec.AddBasic(creds.Username, creds.Password)
	sec.Add(creds.IdentityToken, 1)
	tr := tlsclientconfig.NewTransport()
	tr.TLSClientConfig = tlsc
	// A copy reads several blobs of the repository at once: their
	// connections are kept for the next ones.
	tr.MaxIdleConnsPerHost = 8
	// A registry that takes a request and never answers fails it: http
	// and realms have a time limit; a blob's read or upload, however slow
	// the link, is abandoned only when it stalls (OpenBlob, PutBlob).
	// A token realm on another host is reached with TLS verified, whatever
	// the registry's own setting: its certificates are those c/image
	// would read for that host.
	realmTLS := &tls.Config{MinVersion: tls.VersionTLS12}
	if sys.DockerCertPath != "" {
		if err := tlsclientconfig.SetupCertificates(sys.DockerCertPath, realmTLS); err != nil {
			return nil, fmt.Errorf("%s: certificates in %s: %w", host, sys.DockerCertPath, err)
		}
	}
	realmTr := tlsclientconfig.NewTransport()
	realmTr.TLSClientConfig = realmTLS
	return &Client{
		repo: reference.TrimNamed(repo),
		host: host,
		http: &http.Client{Transport: &redact.Transport{Base: tr, Secrets: sec}, Timeout: 5 * time.Minute,
			CheckRedirect: stayOn(insecure)},
		blobs:   &http.Client{Transport: &redact.Transport{Base: tr, Secrets: sec}, CheckRedirect: toStorage(insecure)},
		uploads: &http.Client{Transport: &redact.Transport{Base: tr, Secrets: sec}, CheckRedirect: stayOn(insecure)},
		probe: &http.Client{Transport: &redact.Transport{Base: tr, Secrets: sec}, Timeout: 5 * time.Minute,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		realms: &http.Client{Transport: &redact.Transport{Base: realmTr, Secrets: sec}, Timeout: 5 * time.Minute,
			CheckRedirect: stayOn(false)},
		secure:  !insecure,
		creds:   creds,
		secrets: sec,
		scheme:  "https",
		log:     h.cfg.Log,
	}, nil
}

// stayOn refuses redirects off the host a request started on, and off
// HTTPS unless plainOK: Go keeps the Authorization header on a redirect
// to the same host name, whatever the scheme or port.
func stayOn(plainOK bool) func(req *http.Request, via []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return &RefusedError{Reason: "stopped after 10 redirects"}
		}
		if req.URL.Host != via[0].URL.Host {
			return &RefusedError{Reason: fmt.Sprintf("refusing the redirect from %s to another host, %s", via[0].URL.Host, withoutQuery(req.URL))}
		}
		if req.URL.Scheme != "https" && !plainOK {
			return &RefusedError{Reason: fmt.Sprintf("refusing the redirect to %s: not HTTPS", withoutQuery(req.URL))}
		}
		if req.Method != via[0].Method {
			// A 301, 302 or 303 turns a write into a GET, whose 200 would
			// pass for the write: the redirect is the answer.
			return http.ErrUseLastResponse
		}
		return nil
	}
}

// toStorage is stayOn, except that a redirect to another host (a
// registry's blob storage: S3, a CDN) is followed over HTTPS, without the
// registry's credentials (Go would keep them for another port of the
// same host name).
func toStorage(plainOK bool) func(req *http.Request, via []*http.Request) error {
	same := stayOn(plainOK)
	return func(req *http.Request, via []*http.Request) error {
		if req.URL.Host != via[0].URL.Host && req.URL.Scheme == "https" && len(via) < 10 {
			req.Header.Del("Authorization")
			return nil
		}
		return same(req, via)
	}
}

// certDir is where c/image reads a host's certificates: the configured
// folder, else the first of the per-user, containers and Docker per-host
// folders that exists ("" for none).
func certDir(sys *types.SystemContext, host string) string {
	if sys.DockerCertPath != "" {
		return sys.DockerCertPath
	}
	if sys.DockerPerHostCertDirPath != "" {
		return filepath.Join(sys.DockerPerHostCertDirPath, host)
	}
	var bases []string
	if home, err := os.UserHomeDir(); err == nil {
		bases = append(bases, filepath.Join(home, ".config", "containers", "certs.d"))
	}
	for _, base := range append(bases, "/etc/containers/certs.d", "/etc/docker/certs.d") {
		dir := filepath.Join(base, host)
		if _, err := os.Stat(dir); err == nil {
			return dir
		}
	}
	return ""
}

// RefusedError is a request the client will not make or follow (credentials
// over plain HTTP, a redirect or next page elsewhere): trying again cannot
// help.
type RefusedError struct {
	Reason string
}

func (e *RefusedError) Error() string { return e.Reason }

// Get reads path (relative to /v2/<repository>/, e.g. "referrers/sha256:…")
// or an absolute URL on the same registry, asking for accept, and returns
// the answer with at most max bytes of body. Statuses other than 200 are
// *Error (404 included: the caller decides what absent means); a
// larger body is an *errs.IntegrityError.
func (c *Client) Get(ctx context.Context, path, accept string, max int64) (*http.Response, []byte, error) {
	u, err := c.url(nil, path)
	if err != nil {
		return nil, nil, err
	}
	resp, body, err := c.get(ctx, u, accept, max)
	return resp, body, c.secrets.Error(err)
}

// Next reads the page a previous answer's Link header names (rel="next"),
// resolved against that answer's URL: "" when there is none. The page must
// be on the same registry, under the same path as the first one.
func (c *Client) Next(ctx context.Context, prev *http.Response, accept string, max int64) (*http.Response, []byte, error) {
	link := NextLink(prev.Header)
	if link == "" {
		return nil, nil, nil
	}
	u, err := c.url(prev.Request.URL, link)
	if err != nil {
		return nil, nil, err
	}
	first := prev.Request.URL.Path
	// The path as it is sent: dot segments, plain or escaped, could climb
	// out of the prefix once the registry decodes them.
	sent := strings.ToLower(u.EscapedPath())
	if i := strings.LastIndex(first, "/"); i < 0 || !strings.HasPrefix(u.Path, first[:i+1]) ||
		path.Clean(u.Path) != u.Path || strings.Contains(sent, "%2e") || strings.Contains(sent, "%2f") {
		return nil, nil, &RefusedError{Reason: fmt.Sprintf("%s: refusing to follow the next page %s outside %s", c.host, u.Redacted(), first[:i+1])}
	}
	resp, body, err := c.get(ctx, u, accept, max)
	return resp, body, c.secrets.Error(err)
}

func (c *Client) get(ctx context.Context, u *url.URL, accept string, max int64) (*http.Response, []byte, error) {
	resp, err := c.do(ctx, c.http, request{method: http.MethodGet, url: u, accept: accept})
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, nil, fmt.Errorf("GET %s: %w", u.Redacted(), err)
	}
	if resp.StatusCode != http.StatusOK {
		return resp, body, c.statusError(http.MethodGet, u, resp, body)
	}
	if int64(len(body)) > max {
		return nil, nil, &errs.IntegrityError{What: "GET " + u.Redacted(), Check: fmt.Sprintf("size: more than %d bytes", max)}
	}
	return resp, body, nil
}

// url resolves ref against base (nil: the repository's API root); the
// result must name the same registry, over HTTPS unless it is insecure (a
// registry cannot send us elsewhere).
func (c *Client) url(base *url.URL, ref string) (*url.URL, error) {
	if base == nil {
		c.mu.Lock()
		scheme := c.scheme
		c.mu.Unlock()
		base = &url.URL{Scheme: scheme, Host: c.host, Path: "/v2/" + reference.Path(c.repo) + "/"}
	}
	u, err := base.Parse(ref)
	if err != nil {
		return nil, &RefusedError{Reason: fmt.Sprintf("%s: bad URL %q: %v", c.host, ref, err)}
	}
	if !sameHost(u, c.host) || (u.Scheme != "https" && u.Scheme != "http") || (u.Scheme == "http" && c.secure) {
		return nil, &RefusedError{Reason: fmt.Sprintf("%s: refusing to follow %s to another registry or scheme", c.host, u.Redacted())}
	}
	return u, nil
}

// sameHost reports whether u is on host, however spelled: in any case,
// with or without the scheme's default port (distribution builds an
// upload's Location from the Host or X-Forwarded-Host it was sent).
func sameHost(u *url.URL, host string) bool {
	canonical := func(h string) string {
		h = strings.ToLower(h)
		if hn, port, err := net.SplitHostPort(h); err == nil && ((u.Scheme == "https" && port == "443") || (u.Scheme == "http" && port == "80")) {
			h = hn
			if strings.Contains(hn, ":") {
				h = "[" + hn + "]"
			}
		}
		return h
	}
	return canonical(u.Host) == canonical(host)
}

// request is one call to the registry: a body (a manifest) is small
// enough to be sent again after a challenge; a stream (a blob) is sent
// once, by send alone.
type request struct {
	method      string
	url         *url.URL
	accept      string
	contentType string
	// contentRange is an upload chunk's Content-Range ("F-L"), when set.
	contentRange string
	body         []byte
	stream       io.Reader // with length bytes (-1: unknown)
	length       int64
	rangeFrom    int64    // > 0: ask for the body from this byte on (Range: bytes=N-)
	authz        string   // Authorization to send; "" for the client's current one
	scopes       []string // a write's token scopes besides pull,push on the repository
}

// do sends one request, answering an auth challenge once (a read's
// token is for pull; a write's challenge names push, and its token then
// serves the reads too). An insecure host that does not speak TLS is
// tried again over plain HTTP.
func (c *Client) do(ctx context.Context, hc *http.Client, r request) (*http.Response, error) {
	u := r.url
	write := r.method != http.MethodGet && r.method != http.MethodHead
	if write && r.authz == "" {
		// A write goes with a push token from the start, as c/image
		// does: some registries answer a pull token's write with 403
		// (GCR), or challenge it for pull alone (ghcr's placeholder).
		v, err := c.writeAuthz(ctx, u, r.scopes)
		if err != nil {
			return nil, err
		}
		r.authz = v
	}
	resp, err := c.send(ctx, hc, r)
	if err != nil && !c.secure && u.Scheme == "https" {
		plain := *u
		plain.Scheme = "http"
		r.url = &plain
		if resp2, err2 := c.send(ctx, hc, r); err2 == nil {
			c.mu.Lock()
			c.scheme = "http"
			c.mu.Unlock()
			resp, err, u = resp2, nil, &plain
		} else {
			r.url = u
		}
	}
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusUnauthorized {
		return resp, nil
	}
	challenge := resp.Header.Get("WWW-Authenticate")
	resp.Body.Close()
	if resp.Request != nil && resp.Request.URL.Host != c.host {
		return nil, &RefusedError{Reason: fmt.Sprintf("%s: refusing to answer the challenge of %s", c.host, resp.Request.URL.Host)}
	}
	// The answer is sent with the Authorization just earned, whatever a
	// concurrent call stored meanwhile (a read's pull token must not stand
	// in for this write's push token).
	r.authz, err = c.authorize(ctx, u, r.method, challenge, write, r.scopes)
	if err != nil {
		return nil, err
	}
	return c.send(ctx, hc, r)
}

func (c *Client) send(ctx context.Context, hc *http.Client, r request) (*http.Response, error) {
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	if r.stream != nil {
		body = r.stream
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.url.String(), body)
	if err != nil {
		return nil, err
	}
	switch {
	case r.stream != nil && r.length == 0:
		req.Body, req.ContentLength = http.NoBody, 0
	case r.stream != nil:
		req.ContentLength = r.length
	}
	req.Header.Set("User-Agent", "agentforge")
	if r.rangeFrom > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", r.rangeFrom))
	}
	if r.accept != "" {
		req.Header.Set("Accept", r.accept)
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	if r.contentRange != "" {
		req.Header.Set("Content-Range", r.contentRange)
	}
	authz := r.authz
	if authz == "" {
		c.mu.Lock()
		authz = c.authz
		c.mu.Unlock()
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			if at, perr := url.Parse(ue.URL); perr == nil && at.String() != r.url.String() {
				ue.URL = withoutQuery(at) // where a redirect led: a signed storage URL's signature
			}
		}
		return nil, fmt.Errorf("%s %s: %w", r.method, r.url.Redacted(), err)
	}
	return resp, nil
}

// manifestTypes is what a manifest request accepts: every image and index
// type, so that the registry serves a manifest as it was pushed.
var manifestTypes = strings.Join([]string{
	"application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
	"application/vnd.docker.distribution.manifest.v2+json", "application/vnd.docker.distribution.manifest.list.v2+json",
}, ", ")

// MaxManifest bounds a manifest read, as c/image bounds it (4 MiB).
const MaxManifest = 4 << 20

// manifestURL is the URL of the manifest ref names: a tag or a digest,
// nothing else (a "tag" with slashes or dots could name another path).
func (c *Client) manifestURL(ref string) (*url.URL, error) {
	if _, err := digest.Parse(ref); err != nil {
		if _, err := reference.WithTag(c.repo, ref); err != nil {
			return nil, errs.Inputf("%s: %q is neither a tag nor a digest", c.host, ref)
		}
	}
	return c.url(nil, "manifests/"+ref)
}

// Manifest reads the manifest a tag or digest names, as the registry
// serves it (every image and index type accepted), at most max bytes. A
// manifest the registry does not have is an *Error with StatusCode 404.
// The caller checks the bytes against a digest it was given.
func (c *Client) Manifest(ctx context.Context, ref string, max int64) ([]byte, error) {
	u, err := c.manifestURL(ref)
	if err != nil {
		return nil, c.secrets.Error(err)
	}
	_, body, err := c.get(ctx, u, manifestTypes, max)
	return body, c.secrets.Error(err)
}

// ManifestDigest is the digest of the manifest a tag (or digest) names
// now: from the registry's Docker-Content-Digest header on a HEAD, or by
// hashing the manifest when the registry sends none. A tag the registry
// does not have is an *Error with StatusCode 404.
func (c *Client) ManifestDigest(ctx context.Context, ref string) (digest.Digest, error) {
	d, err := c.manifestDigest(ctx, ref)
	return d, c.secrets.Error(err)
}

func (c *Client) manifestDigest(ctx context.Context, ref string) (digest.Digest, error) {
	u, err := c.manifestURL(ref)
	if err != nil {
		return "", err
	}
	resp, err := c.do(ctx, c.http, request{method: http.MethodHead, url: u, accept: manifestTypes})
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", c.statusError(http.MethodHead, u, resp, nil)
	}
	if d, err := digest.Parse(resp.Header.Get("Docker-Content-Digest")); err == nil {
		return d, nil
	}
	_, body, err := c.get(ctx, u, manifestTypes, MaxManifest)
	if err != nil {
		return "", err
	}
	return digest.FromBytes(body), nil
}

// ServedDigest is the digest (in algorithm alg) of the manifest bytes the
// registry serves for ref now: what a pull of ref gets, read and hashed,
// where ManifestDigest takes a HEAD's header at its word (a cache in front
// of the registry can answer a HEAD from a stale entry). A tag the
// registry does not have is an *Error with StatusCode 404.
func (c *Client) ServedDigest(ctx context.Context, ref string, alg digest.Algorithm) (digest.Digest, error) {
	if !alg.Available() {
		return "", errs.Inputf("digest algorithm %q is not available", alg)
	}
	body, err := c.Manifest(ctx, ref, MaxManifest)
	if err != nil {
		return "", err
	}
	return alg.FromBytes(body), nil
}

// PutManifest writes raw, a manifest of mediaType, unchanged under ref (a
// tag, or the digest of raw) in the repository. The registry's challenge
// for push access is answered as a read's is; the credentials are the
// ones For(host) gives c/image.
func (c *Client) PutManifest(ctx context.Context, ref, mediaType string, raw []byte) error {
	u, err := c.manifestURL(ref)
	if err != nil {
		return c.secrets.Error(err)
	}
	resp, err := c.do(ctx, c.http, request{method: http.MethodPut, url: u, contentType: mediaType, body: raw})
	if err != nil {
		return c.secrets.Error(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return c.statusError(http.MethodPut, u, resp, body)
	}
	return nil
}

// HasBlob reports whether the repository has the blob d (HEAD
// blobs/d): true for a 200, or a redirect to its storage on another host
// (distribution on S3, GCS or Azure answers so; it is not followed);
// false for a 404; an *Error for any other answer.
func (c *Client) HasBlob(ctx context.Context, d digest.Digest) (bool, error) {
	if err := d.Validate(); err != nil {
		return false, errs.Inputf("blob %q: %w", d, err)
	}
	u, err := c.url(nil, "blobs/"+d.String())
	if err != nil {
		return false, c.secrets.Error(err)
	}
	resp, err := c.do(ctx, c.probe, request{method: http.MethodHead, url: u})
	if err != nil {
		return false, c.secrets.Error(err)
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		// To storage on another host; one on this host (a login page, a
		// moved registry) says nothing about the blob.
		if to, err := resp.Location(); err == nil && !sameHost(to, c.host) {
			return true, nil
		}
	}
	return false, c.statusError(http.MethodHead, u, resp, nil)
}

// Mount makes the blob d of the repository from, on the same registry,
// a blob of this repository without sending it (POST
// blobs/uploads/?mount=…&from=…), as a write (see PutManifest). It reports
// false, with no error, when the registry does not mount it: it opened an
// upload session instead, which is cancelled.
func (c *Client) Mount(ctx context.Context, d digest.Digest, from reference.Named) (bool, error) {
	if err := d.Validate(); err != nil {
		return false, errs.Inputf("blob %q: %w", d, err)
	}
	if reference.Domain(from) != reference.Domain(c.repo) {
		return false, errs.Inputf("mount %s from %s: another registry", d, from.Name())
	}
	q := url.Values{"mount": {d.String()}, "from": {reference.Path(from)}}
	u, err := c.url(nil, "blobs/uploads/?"+q.Encode())
	if err != nil {
		return false, c.secrets.Error(err)
	}
	// The token reads the source too, from the start, as c/image asks:
	// a registry may answer a token without it by quietly opening an
	// upload instead (Quay).
	r := request{method: http.MethodPost, url: u, scopes: []string{"repository:" + reference.Path(from) + ":pull"}}
	resp, err := c.do(ctx, c.http, r)
	if err != nil {
		return false, c.secrets.Error(err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusCreated:
		return true, nil
	case http.StatusAccepted:
		// Not mounted (the source lacks it, or the registry does not
		// mount): the session it opened is ended, if the token allows
		// (distribution wants a delete scope, which is not asked for).
		if loc, err := c.url(resp.Request.URL, resp.Header.Get("Location")); err == nil {
			r := request{method: http.MethodDelete, url: loc, authz: resp.Request.Header.Get("Authorization")}
			if resp, err := c.send(ctx, c.http, r); err == nil {
				resp.Body.Close()
			}
		}
		return false, nil
	}
	return false, c.statusError(http.MethodPost, u, resp, body)
}

// authorize answers a WWW-Authenticate challenge: Basic with the
// credentials, or a bearer token from the realm: for a read, for the scope
// the challenge names (pull on the repository when it names none); for a
// write, see pushToken.
func (c *Client) authorize(ctx context.Context, u *url.URL, method, challenge string, write bool, scopes []string) (string, error) {
	scheme, params := ParseChallenge(challenge)
	hasCreds := c.creds.Username != "" || c.creds.IdentityToken != ""
	if u.Scheme == "http" && c.secure {
		return "", &RefusedError{Reason: fmt.Sprintf("%s: refusing to send credentials over plain HTTP", c.host)}
	}
	switch scheme {
	case "basic":
		if c.creds.Username == "" {
			return "", &Error{Method: method, URL: u.Redacted(), StatusCode: http.StatusUnauthorized, Detail: "the registry wants credentials and none are configured for " + c.host}
		}
		req, _ := http.NewRequest(http.MethodGet, "/", nil)
		req.SetBasicAuth(c.creds.Username, c.creds.Password)
		return c.setAuthz(req.Header.Get("Authorization")), nil
	case "bearer":
		c.mu.Lock()
		c.bearer = map[string]string{"realm": params["realm"], "service": params["service"]}
		c.mu.Unlock()
		if write {
			return c.pushToken(ctx, u, params, scopes)
		}
		tok, err := c.token(ctx, u, params, hasCreds)
		if err != nil {
			return "", err
		}
		return c.setAuthz("Bearer " + tok), nil
	}
	return "", &Error{Method: method, URL: u.Redacted(), StatusCode: http.StatusUnauthorized, Detail: fmt.Sprintf("unsupported authentication scheme %q", scheme)}
}

// writeAuthz is the Authorization for a write whose token needs scopes
// besides pull and push on the repository: a token fetched for the same
// scopes before, else one fetched now from the realm a read's challenge
// named; "" when no bearer challenge came yet (Basic credentials, or the
// write's own challenge then says).
func (c *Client) writeAuthz(ctx context.Context, u *url.URL, scopes []string) (string, error) {
	c.mu.Lock()
	v, bearer := c.push[strings.Join(scopes, " ")], c.bearer
	c.mu.Unlock()
	if v != "" || bearer == nil {
		return v, nil
	}
	return c.pushToken(ctx, u, bearer, scopes)
}

// pushToken fetches a token for pull and push on the repository and for
// scopes, from the realm and service params name (whatever scope they
// name: a write needs these, and a challenge may name less, or a
// placeholder), and keeps it for the client's next calls, reads included.
func (c *Client) pushToken(ctx context.Context, u *url.URL, params map[string]string, scopes []string) (string, error) {
	p := map[string]string{"realm": params["realm"], "service": params["service"],
		"scope": strings.Join(append([]string{"repository:" + reference.Path(c.repo) + ":pull,push"}, scopes...), " ")}
	tok, err := c.token(ctx, u, p, c.creds.Username != "" || c.creds.IdentityToken != "")
	if err != nil {
		return "", err
	}
	v := "Bearer " + tok
	c.mu.Lock()
	if c.push == nil {
		c.push = map[string]string{}
	}
	c.authz, c.push[strings.Join(scopes, " ")] = v, v
	c.mu.Unlock()
	return v, nil
}

// forgetPush drops the tokens kept for writes (one expired).
func (c *Client) forgetPush() {
	c.mu.Lock()
	c.push = nil
	c.mu.Unlock()
}

// setAuthz keeps v as the Authorization for the client's next calls and
// returns it.
func (c *Client) setAuthz(v string) string {
	c.mu.Lock()
	c.authz = v
	c.mu.Unlock()
	return v
}

// maxToken bounds a token endpoint's answer.
const maxToken = 1 << 20

// token fetches a bearer token from the challenge's realm: with the
// identity token (OAuth2 refresh-token grant) or the user name and
// password (Basic), or anonymously.
func (c *Client) token(ctx context.Context, u *url.URL, params map[string]string, hasCreds bool) (string, error) {
	realm, err := url.Parse(params["realm"])
	if err != nil || realm.Host == "" || (realm.Scheme != "https" && realm.Scheme != "http") {
		return "", &RefusedError{Reason: fmt.Sprintf("%s: bad token realm %q", c.host, params["realm"])}
	}
	// The registry's own host follows its setting (an insecure registry
	// may be plain HTTP); credentials go to any other host only over
	// HTTPS with a verified certificate.
	client := c.http
	if realm.Host != c.host {
		client = c.realms
	}
	if realm.Scheme == "http" && hasCreds && (c.secure || realm.Host != c.host) {
		return "", &RefusedError{Reason: fmt.Sprintf("%s: refusing to send credentials to the plain-HTTP token realm %s", c.host, realm.Redacted())}
	}
	scope := params["scope"]
	if scope == "" {
		scope = "repository:" + reference.Path(c.repo) + ":pull"
	}
	var req *http.Request
	if c.creds.IdentityToken != "" {
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {c.creds.IdentityToken}, "client_id": {"agentforge"}, "scope": {scope}}
		if s := params["service"]; s != "" {
			form.Set("service", s)
		}
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, realm.String(), strings.NewReader(form.Encode()))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	} else {
		q := realm.Query()
		q.Del("scope")
		for _, sc := range strings.Fields(scope) { // one parameter per scope, as distribution's token server reads them
			q.Add("scope", sc)
		}
		if s := params["service"]; s != "" {
			q.Set("service", s)
		}
		realm.RawQuery = q.Encode()
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, realm.String(), nil)
		if err == nil && c.creds.Username != "" {
			req.SetBasicAuth(c.creds.Username, c.creds.Password)
		}
	}
	if err != nil {
		return "", fmt.Errorf("%s: token request: %w", c.host, err)
	}
	req.Header.Set("User-Agent", "agentforge")
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("%s: token from %s: %w", c.host, realm.Redacted(), redactErr(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxToken))
	if err != nil {
		return "", fmt.Errorf("%s: token from %s: %w", c.host, realm.Redacted(), err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", &Error{Method: req.Method, URL: realm.Scheme + "://" + realm.Host + realm.Path, StatusCode: resp.StatusCode, Detail: c.errorDetail(body)}
	}
	var t struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &t); err != nil {
		return "", &RefusedError{Reason: fmt.Sprintf("%s: token from %s: not JSON: %v", c.host, realm.Redacted(), err)}
	}
	if t.Token == "" {
		t.Token = t.AccessToken
	}
	if t.Token == "" {
		return "", &RefusedError{Reason: fmt.Sprintf("%s: token from %s: empty", c.host, realm.Redacted())}
	}
	return t.Token, nil
}

// withoutQuery is u as an error may show it: without its credentials or
// query (a signed storage URL's signature is in the query).
func withoutQuery(u *url.URL) string {
	v := *u
	v.User, v.RawQuery, v.ForceQuery, v.Fragment = nil, "", false, ""
	return v.String()
}

// redactErr drops the URL (with the refresh token's query, were it a
// GET) from a transport error.
func redactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// statusError is the *Error for an answer with an unexpected status: the
// start of its body, redacted, and the wait a 429 or 503 asks for.
func (c *Client) statusError(method string, u *url.URL, resp *http.Response, body []byte) *Error {
	if resp.Request != nil && resp.Request.URL.Host == u.Host && resp.Request.URL.Scheme != u.Scheme {
		// An insecure registry answered over plain HTTP: say so.
		plain := *u
		plain.Scheme = resp.Request.URL.Scheme
		u = &plain
	}
	return &Error{Method: method, URL: u.Redacted(), StatusCode: resp.StatusCode, Detail: c.errorDetail(body), RetryAfter: retryAfter(resp.Header)}
}

// maxRetryAfter bounds the wait a registry can ask for, as c/image does.
const maxRetryAfter = time.Minute

// retryAfter is the wait a Retry-After header asks for (seconds, or an
// HTTP date), at most maxRetryAfter; 0 when there is none.
func retryAfter(h http.Header) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = time.Until(t)
	}
	return max(0, min(d, maxRetryAfter))
}

// errorDetail is the first line of an error body, trimmed, at most 200
// characters, with every credential the client knows removed (before the
// cut, so that no part of one is left).
func (c *Client) errorDetail(body []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(c.secrets.String(string(body))), "\n")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// ParseChallenge parses a WWW-Authenticate value such as
// `Bearer realm="https://auth.example/token",service="registry",scope="repository:a/b:pull"`
// into its scheme (lower case) and parameters (keys lower case, quoted
// values unescaped). Only the first challenge is read.
func ParseChallenge(h string) (string, map[string]string) {
	h = strings.TrimSpace(h)
	scheme, rest, _ := strings.Cut(h, " ")
	params := map[string]string{}
	for rest = strings.TrimSpace(rest); rest != ""; {
		key, after, ok := strings.Cut(rest, "=")
		if !ok {
			break
		}
		key = strings.ToLower(strings.TrimSpace(key))
		var val string
		if strings.HasPrefix(after, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(after) && after[i] != '"'; i++ {
				if after[i] == '\\' && i+1 < len(after) {
					i++
				}
				b.WriteByte(after[i])
			}
			val, rest = b.String(), after[min(i+1, len(after)):]
		} else {
			val, rest, _ = strings.Cut(after, ",")
			val = strings.TrimSpace(val)
			rest = "," + rest
		}
		if _, seen := params[key]; !seen && key != "" {
			params[key] = val
		}
		rest = strings.TrimSpace(rest)
		if !strings.HasPrefix(rest, ",") {
			break
		}
		rest = strings.TrimSpace(rest[1:])
	}
	return strings.ToLower(scheme), params
}

// NextLink is the target of a Link header's rel="next" (the referrers
// API's and tag list's pagination), or "".
func NextLink(h http.Header) string {
	for _, v := range h.Values("Link") {
		for _, part := range strings.Split(v, ",") {
			target, attrs, ok := strings.Cut(strings.TrimSpace(part), ";")
			if !ok || !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
				continue
			}
			for _, a := range strings.Split(attrs, ";") {
				k, v, _ := strings.Cut(strings.TrimSpace(a), "=")
				if strings.EqualFold(k, "rel") && slices.Contains(strings.Fields(strings.Trim(v, `"`)), "next") {
					return target[1 : len(target)-1]
				}
			}
		}
	}
	return ""
}
