package registrytest

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	ggcr "github.com/google/go-containerregistry/pkg/registry"
)

// OCI is a registry with the OCI 1.1 referrers API.
type OCI struct {
	*Registry
	referrers atomic.Int64
	tokens    atomic.Int64
	mu        sync.Mutex
	rewrite   func(subject string, body []byte) []byte
	intercept func(http.ResponseWriter, *http.Request) bool
}

// Intercept makes the registry lie as fn likes: every authenticated
// request goes to fn first, and fn returning true means it answered (nil
// stops it).
func (o *OCI) Intercept(fn func(w http.ResponseWriter, r *http.Request) bool) {
	o.mu.Lock()
	o.intercept = fn
	o.mu.Unlock()
}

// RewriteReferrers makes the registry lie: every referrers answer's body
// goes through fn first, with the digest asked about (nil stops it).
func (o *OCI) RewriteReferrers(fn func(subject string, body []byte) []byte) {
	o.mu.Lock()
	o.rewrite = fn
	o.mu.Unlock()
}

// ReferrersCalls counts the GETs of /v2/<name>/referrers/<digest>.
func (o *OCI) ReferrersCalls() int { return int(o.referrers.Load()) }

// TokensIssued counts the bearer tokens the token endpoint handed out.
func (o *OCI) TokensIssued() int { return int(o.tokens.Load()) }

// NewOCI starts go-containerregistry's registry (in memory) with the OCI
// 1.1 referrers API, behaving as registries that serve that API (zot,
// Harbor 2.9+) do: a manifest pushed with a subject is listed under
// /v2/<name>/referrers/<digest> and its push is answered with the
// OCI-Subject header, so clients write no tag-schema index there.
//
// With Auth it asks for a bearer token, as Harbor, ghcr and Docker Hub do
// (WWW-Authenticate: Bearer realm="…/token",service=…,scope=…), which its
// token endpoint issues for the user's Basic credentials; with TLS it
// serves HTTPS with a certificate from a fresh test CA. It stops when the
// test ends.
func NewOCI(t testing.TB, opts Options) *OCI {
	t.Helper()
	o := &OCI{Registry: &Registry{Scheme: "http"}}
	reg := ggcr.New(ggcr.WithReferrersSupport(true), ggcr.Logger(log.New(io.Discard, "", 0)))
	var (
		mu     sync.Mutex
		issued = map[string]bool{}
	)
	srv := httptest.NewUnstartedServer(nil)
	o.Host = srv.Listener.Addr().String()
	if opts.Auth {
		o.User, o.Password = "agentforge", "correct horse battery staple"
		o.AuthFile = WriteAuthFile(t, map[string][2]string{o.Host: {o.User, o.Password}})
	}
	if opts.TLS {
		o.Scheme = "https"
	}
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			user, pass, ok := r.BasicAuth()
			if !ok || subtle.ConstantTimeCompare([]byte(user+"\x00"+pass), []byte(o.User+"\x00"+o.Password)) != 1 {
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}`, http.StatusUnauthorized)
				return
			}
			b := make([]byte, 16)
			rand.Read(b)
			tok := hex.EncodeToString(b)
			mu.Lock()
			issued[tok] = true
			mu.Unlock()
			o.tokens.Add(1)
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"token": tok, "expires_in": 300})
			return
		}
		if opts.Auth {
			tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			mu.Lock()
			ok = ok && issued[tok]
			mu.Unlock()
			if !ok {
				scope := ""
				if parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/v2/"), "/"); len(parts) > 2 {
					scope = `,scope="repository:` + strings.Join(parts[:len(parts)-2], "/") + `:pull,push"`
				}
				w.Header().Set("WWW-Authenticate", `Bearer realm="`+o.Scheme+"://"+o.Host+`/token",service="registrytest"`+scope)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
				return
			}
		}
		o.mu.Lock()
		intercept := o.intercept
		o.mu.Unlock()
		if intercept != nil && intercept(w, r) {
			return
		}
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/referrers/") {
			o.referrers.Add(1)
			o.mu.Lock()
			fn := o.rewrite
			o.mu.Unlock()
			if fn != nil {
				rec := httptest.NewRecorder()
				reg.ServeHTTP(rec, r)
				body := fn(path.Base(r.URL.Path), rec.Body.Bytes())
				for k, v := range rec.Header() {
					w.Header()[k] = v
				}
				w.Header().Set("Content-Length", strconv.Itoa(len(body)))
				w.WriteHeader(rec.Code)
				w.Write(body)
				return
			}
		}
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/") {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			var m struct {
				Subject *struct {
					Digest string `json:"digest"`
				} `json:"subject"`
			}
			if json.Unmarshal(body, &m) == nil && m.Subject != nil {
				w = &subjectWriter{ResponseWriter: w, subject: m.Subject.Digest}
			}
		}
		reg.ServeHTTP(w, r)
	})
	if opts.TLS {
		dir := t.TempDir()
		var certFile, keyFile string
		o.CAFile, certFile, keyFile = writeTLS(t, dir)
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return o
}

// subjectWriter adds OCI-Subject to a successful manifest push.
type subjectWriter struct {
	http.ResponseWriter
	subject string
}

func (s *subjectWriter) WriteHeader(code int) {
	if code == http.StatusCreated {
		s.Header().Set("OCI-Subject", s.subject)
	}
	s.ResponseWriter.WriteHeader(code)
}
