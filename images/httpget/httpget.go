// Package httpget fetches small documents over HTTP (checksums, signatures,
// keys, release listings) the one way every package of agentforge does:
// a size limit, the HTTP status carried as data, and URLs in errors with any
// credentials removed. It imports only the standard library, so every
// package may use it.
package httpget

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// DefaultClient is used when a caller passes no client.
var DefaultClient = &http.Client{Timeout: time.Minute}

// ErrInsecureRedirect means a request that was made over https was
// redirected to a URL that is not https: what comes back could be swapped
// in transit, so the redirect is not followed.
var ErrInsecureRedirect = errors.New("redirected from https to a URL that is not https")

// maxRedirects is net/http's own limit, kept by Secure for clients with
// no CheckRedirect.
const maxRedirects = 10

// Secure returns a copy of client (DefaultClient when nil) that refuses,
// with ErrInsecureRedirect, to follow a redirect from https to anything
// else (a checksum or signature served over https could otherwise be
// swapped by a redirect to plain http); the client's own CheckRedirect
// still applies after that. A request whose URL is http to begin with
// (a mirror the user chose) may be redirected anywhere.
func Secure(client *http.Client) *http.Client {
	if client == nil {
		client = DefaultClient
	}
	c := *client
	next := client.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		for _, prev := range via {
			if prev.URL.Scheme == "https" && req.URL.Scheme != "https" {
				return fmt.Errorf("%w: %s to %s (point it, or the mirror, at a server that stays on https)",
					ErrInsecureRedirect, RedactURL(prev.URL.String()), RedactURL(req.URL.String()))
			}
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= maxRedirects {
			return fmt.Errorf("stopped after %d redirects", maxRedirects)
		}
		return nil
	}
	return &c
}

// StatusError is an HTTP answer other than the one expected.
type StatusError struct {
	Method string
	URL    string // credentials removed
	// StatusCode is the HTTP status, e.g. 404.
	StatusCode int
	Status     string
}

func (e *StatusError) Error() string { return fmt.Sprintf("%s %s: %s", e.Method, e.URL, e.Status) }

// ErrTooLarge means a document exceeded the caller's limit.
var ErrTooLarge = errors.New("larger than the limit")

// Get fetches rawURL (http, https or file://) and returns at most limit
// bytes; a longer document is ErrTooLarge, an answer other than 200 a
// *StatusError.
func Get(ctx context.Context, client *http.Client, rawURL string, limit int64) ([]byte, error) {
	if p, ok := strings.CutPrefix(rawURL, "file://"); ok {
		return readFile(p, limit)
	}
	resp, err := do(ctx, client, http.MethodGet, rawURL)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &StatusError{Method: http.MethodGet, URL: RedactURL(rawURL), StatusCode: resp.StatusCode, Status: resp.Status}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", RedactURL(rawURL), err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("GET %s: %w (%d bytes)", RedactURL(rawURL), ErrTooLarge, limit)
	}
	return data, nil
}

// Open starts reading rawURL (http, https or file://) for a caller that
// streams it (a large index); an answer other than 200 is a
// *StatusError. The caller closes the body and bounds what it reads.
func Open(ctx context.Context, client *http.Client, rawURL string) (io.ReadCloser, error) {
	if p, ok := strings.CutPrefix(rawURL, "file://"); ok {
		f, err := os.Open(p)
		if errors.Is(err, os.ErrNotExist) {
			return nil, &StatusError{Method: http.MethodGet, URL: rawURL, StatusCode: http.StatusNotFound, Status: "404 Not Found"}
		}
		return f, err
	}
	resp, err := do(ctx, client, http.MethodGet, rawURL)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, &StatusError{Method: http.MethodGet, URL: RedactURL(rawURL), StatusCode: resp.StatusCode, Status: resp.Status}
	}
	return resp.Body, nil
}

// Exists reports whether a HEAD of rawURL answers 200 (true) or 404
// (false); any other answer is a *StatusError.
func Exists(ctx context.Context, client *http.Client, rawURL string) (bool, error) {
	resp, err := do(ctx, client, http.MethodHead, rawURL)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusNotFound {
		return resp.StatusCode == http.StatusOK, nil
	}
	return false, &StatusError{Method: http.MethodHead, URL: RedactURL(rawURL), StatusCode: resp.StatusCode, Status: resp.Status}
}

func do(ctx context.Context, client *http.Client, method, rawURL string) (*http.Response, error) {
	client = Secure(client)
	req, err := http.NewRequestWithContext(ctx, method, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, RedactURL(rawURL), ParseError(rawURL, err))
	}
	resp, err := client.Do(req)
	if err != nil {
		// net/http's own errors quote the URL: keep only ours.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%s %s: %w", method, RedactURL(rawURL), err)
	}
	return resp, nil
}

func readFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: %w (%d bytes)", path, ErrTooLarge, limit)
	}
	return data, nil
}

// ParseError is err, rawURL's failure to parse, without what it quotes of
// rawURL: net/url's error quotes the URL whole, and its cause may quote a
// part of the credentials (user:pa/ss@host is host "user:pa" with an
// invalid port ":pa"). For a URL with an '@' in it, the cause is left out.
func ParseError(rawURL string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if strings.Contains(rawURL, "@") {
		return errors.New("not a valid URL (the parse error is left out: it may quote the credentials)")
	}
	return err
}

// RedactURL drops user information from a URL so that credentials embedded
// in it never reach a log line or an error.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		// A URL that does not parse (a bad escape, a '/' in the password)
		// may still carry credentials: whatever comes before its last '@'
		// may be one.
		at := strings.LastIndex(raw, "@")
		if at < 0 {
			return raw
		}
		scheme, _, ok := strings.Cut(raw[:at], "://")
		if !ok {
			return "xxxxx" + raw[at:]
		}
		return scheme + "://xxxxx" + raw[at:]
	}
	if u.User == nil {
		return raw
	}
	u.User = url.User("xxxxx")
	return u.String()
}

// Truncate shortens s to at most n bytes, marking the cut.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
