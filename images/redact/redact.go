// Package redact keeps credentials out of what agentforge prints. A Set
// holds every secret a client has sent or will send (registry passwords
// and identity tokens, bearer tokens, the Jenkins API token, CSRF crumbs,
// session cookies), in each encoding a server might echo it in; Transport
// learns them from the requests it sends; String and Error remove them
// from any text, such as the body of an error page that echoes the
// request's Authorization header.
//
// Every HTTP client of agentforge (the Jenkins client, the registry client
// for the referrers API) and the command line's error and log output go
// through one Set. It imports only the standard library, so every package
// may use it.
package redact

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Mask replaces a secret.
const Mask = "*****"

// MinLearnt is the shortest value learnt from a request header (crumb,
// cookie, token) that is treated as a secret, so that cookie attributes
// such as "Path=/" are not.
const MinLearnt = 8

// Set is a concurrency-safe set of secrets. The zero value is empty and
// ready to use; a nil *Set redacts nothing.
type Set struct {
	mu   sync.Mutex
	vals []string
}

// New returns an empty Set.
func New() *Set { return &Set{} }

// Add records v, when it is at least min bytes long, in the forms an echo
// may show it in: as is, URL-encoded, with escaped slashes, and as a JSON
// string holds it.
func (s *Set) Add(v string, min int) {
	if s == nil || v == "" || len(v) < min {
		return
	}
	quoted, _ := json.Marshal(v)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, form := range []string{v, url.QueryEscape(v), strings.ReplaceAll(v, "/", `\/`), string(quoted[1 : len(quoted)-1])} {
		if !slices.Contains(s.vals, form) {
			s.vals = append(s.vals, form)
		}
	}
	// Longest first, so that no shorter secret breaks up a longer one.
	sort.SliceStable(s.vals, func(i, j int) bool { return len(s.vals[i]) > len(s.vals[j]) })
}

// AddBasic records a user name and password as HTTP Basic auth sends them:
// the password, "user:password" and its base64 (the Authorization header).
// The user name alone is not a secret.
func (s *Set) AddBasic(user, password string) {
	if password == "" {
		return
	}
	s.Add(password, 1)
	s.Add(user+":"+password, 1)
	s.Add(base64.StdEncoding.EncodeToString([]byte(user+":"+password)), 1)
}

// AddHeader records the credentials a request header carries:
// Authorization (the whole value, its credential, and for Basic the
// decoded user:password and password), any header naming a crumb, and the
// values of Cookie.
func (s *Set) AddHeader(name, value string) {
	switch lower := strings.ToLower(name); {
	case lower == "authorization":
		s.Add(value, MinLearnt)
		if _, cred, ok := strings.Cut(value, " "); ok {
			s.Add(cred, MinLearnt)
			if dec, err := base64.StdEncoding.DecodeString(cred); err == nil {
				if user, pw, ok := strings.Cut(string(dec), ":"); ok {
					s.AddBasic(user, pw)
				}
			}
		}
	case strings.Contains(lower, "crumb"):
		s.Add(value, MinLearnt)
	case lower == "cookie":
		for _, part := range strings.Split(value, ";") {
			if _, val, ok := strings.Cut(part, "="); ok {
				s.Add(strings.TrimSpace(val), MinLearnt)
			}
		}
	}
}

// MinCut is the shortest start of a secret that String masks where a
// message was cut short (c/image quotes the first 50 bytes of an error
// page and appends "...").
const MinCut = 12

// String returns text with every secret replaced by Mask, and every start
// of one (MinCut bytes or more) that ends where the text was cut: before
// "...", "…", or at the end of the text.
func (s *Set) String(text string) string {
	if s == nil {
		return text
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range s.vals {
		text = strings.ReplaceAll(text, v, Mask)
	}
	for _, v := range s.vals {
		for n := len(v) - 1; n >= MinCut; n-- {
			p := v[:n]
			for _, cut := range []string{"...", "…"} {
				text = strings.ReplaceAll(text, p+cut, Mask+cut)
			}
			if strings.HasSuffix(text, p) {
				text = strings.TrimSuffix(text, p) + Mask
			}
		}
	}
	return text
}

// Error returns err with every secret removed from its message. The result
// still answers errors.Is and errors.As for err's chain (the kinds the
// command line turns into exit codes); a caller that prints a wrapped
// error it finds with errors.As must redact that too. It returns err
// itself when its message holds no secret.
func (s *Set) Error(err error) error {
	if err == nil || s == nil {
		return err
	}
	msg := s.String(err.Error())
	if msg == err.Error() {
		return err
	}
	return &redacted{msg: msg, err: err}
}

type redacted struct {
	msg string
	err error
}

func (e *redacted) Error() string { return e.msg }
func (e *redacted) Unwrap() error { return e.err }

// Transport is an http.RoundTripper that records into Secrets the
// credentials of every request it sends (see AddHeader) before sending it
// through Base (http.DefaultTransport when nil).
type Transport struct {
	Base    http.RoundTripper
	Secrets *Set
}

// RoundTrip records r's credentials and sends it.
func (t *Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	for name, values := range r.Header {
		for _, v := range values {
			t.Secrets.AddHeader(name, v)
		}
	}
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(r)
}
