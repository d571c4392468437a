package remote

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/agentforge/agentforge/images/errs"
	"github.com/docker/distribution/registry/api/errcode"
	"github.com/sirupsen/logrus"
	"go.podman.io/image/v5/docker"
)

// RetryPolicy bounds retries of registry operations.
type RetryPolicy struct {
	// Attempts is how many tries in a row an operation makes without the
	// registry making progress meanwhile (see Progress); 0 means 4.
	// Alone (Do), that is its number of tries.
	Attempts int
	// Delay is the first wait, doubled after each failure (with up to 25 %
	// jitter) up to MaxDelay; 0 means 1 s.
	Delay time.Duration
	// MaxDelay caps the wait between two tries; 0 means 30 s.
	MaxDelay time.Duration
	// Deadline bounds how long one operation keeps being retried, from
	// its first failure, however much progress others make; 0 means
	// 10 minutes.
	Deadline time.Duration
}

// Progress is what the operations of one transfer (the blobs of an image
// to one registry) share: each success counts. An operation that fails
// while others succeed is not failing alone; the registry is accepting
// work, so its tries in a row start again (see RetryPolicy.DoWith). The
// zero value is ready to use; a nil *Progress counts nothing.
type Progress struct {
	n atomic.Int64
}

func (g *Progress) load() int64 {
	if g == nil {
		return 0
	}
	return g.n.Load()
}

func (g *Progress) done() {
	if g != nil {
		g.n.Add(1)
	}
}

// Do runs fn until it succeeds, fails in a way not known to be temporary
// (see Temporary), or the attempts are used up. Every retry is logged on
// log (nil: not logged). A registry's Retry-After is honoured (up to a
// minute), as c/image honours it for its own requests.
func (p RetryPolicy) Do(ctx context.Context, log logrus.FieldLogger, what string, fn func() error) error {
	return p.DoWith(ctx, nil, log, what, fn)
}

// DoWith is Do for one operation of a group sharing g: a try that fails
// after another operation of the group succeeded (since this one's
// previous try) starts the count of tries in a row again, and the wait
// with it: retries follow the registry's progress rather than a fixed
// count, so that a registry that refuses one request in three, but keeps
// accepting the others, is waited out. Without progress, Attempts tries in
// a row end it; in any case, Deadline after its first failure does.
func (p RetryPolicy) DoWith(ctx context.Context, g *Progress, log logrus.FieldLogger, what string, fn func() error) error {
	attempts, first, maxDelay, deadline := p.Attempts, p.Delay, p.MaxDelay, p.Deadline
	if attempts <= 0 {
		attempts = 4
	}
	if first <= 0 {
		first = time.Second
	}
	if maxDelay <= 0 {
		maxDelay = 30 * time.Second
	}
	if deadline <= 0 {
		deadline = 10 * time.Minute
	}
	delay, inARow := first, 0
	seen := g.load()
	var since time.Time
	for try := 1; ; try++ {
		err := fn()
		if err == nil {
			g.done()
			return nil
		}
		if !Temporary(err) {
			return err
		}
		if now := g.load(); now != seen {
			// Others got through since this one's last try: the
			// registry is working; this one is not failing alone.
			seen, inARow, delay = now, 0, first
		}
		inARow++
		if since.IsZero() {
			since = time.Now()
		}
		if inARow >= attempts {
			return err
		}
		if time.Since(since) >= deadline {
			return fmt.Errorf("%w (still failing %s after its first failure)", err, deadline)
		}
		wait := Jitter(delay)
		var asked *Error
		if errors.As(err, &asked) && asked.RetryAfter > wait {
			wait = asked.RetryAfter
		}
		if log != nil {
			log.WithField("attempt", try).Warnf("%s failed, retrying in %s: %v", what, wait.Round(time.Millisecond), err)
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		delay = min(delay*2, maxDelay)
	}
}

// Jitter is d plus up to a quarter of it, at random, so that clients that
// failed together do not retry together.
func Jitter(d time.Duration) time.Duration {
	return d + time.Duration(rand.Int64N(int64(d)/4+1))
}

// Error is a registry's answer with an unexpected HTTP status, to a
// request of ours. The URL carries no credentials and Detail, the start of
// the body, was redacted.
type Error struct {
	Method, URL string
	StatusCode  int
	// Detail is the start of the body (an OCI error list, or a proxy's page).
	Detail string
	// RetryAfter is the wait the registry asked for (Retry-After, with a
	// 429 or 503), at most a minute; 0 when it asked for none.
	RetryAfter time.Duration
	// Restart is an upload whose session the registry lost, or whose
	// token expired: it may start again from its first request.
	Restart bool
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%s %s: %d %s", e.Method, e.URL, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

// Temporary reports whether the same request may succeed later: a request
// timeout, too many requests, or a server error that is not "not
// implemented" (what go-containerregistry's transport.Error retries).
func (e *Error) Temporary() bool { return e.Restart || temporaryStatus(e.StatusCode) }

func temporaryStatus(s int) bool {
	switch s {
	case http.StatusRequestTimeout, http.StatusTooEarly, http.StatusTooManyRequests,
		http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// StatusCode returns the HTTP status a registry answered with, as carried
// by our Error or by c/image's exported errors, or 0 when err carries
// none that is known (c/image reports a 4xx answer whose body is not an
// OCI error list in a type of its own that it does not export).
func StatusCode(err error) int {
	var (
		ours   *Error
		status docker.UnexpectedHTTPStatusError
		unauth docker.ErrUnauthorizedForCredentials
		code   errcode.Error
		codes  errcode.Errors
	)
	switch {
	case errors.As(err, &ours):
		return ours.StatusCode
	case errors.As(err, &status):
		return status.StatusCode
	case errors.As(err, &unauth):
		return http.StatusUnauthorized
	case errors.Is(err, docker.ErrTooManyRequests):
		return http.StatusTooManyRequests
	case errors.As(err, &code):
		if code.Code == errcode.ErrorCodeUnknown {
			// c/image makes error codes only from 4xx answers (5xx are
			// UnexpectedHTTPStatusError); an unregistered code (a vendor's,
			// "UNKNOWN") maps to Unknown, whose nominal status is 500.
			return http.StatusBadRequest
		}
		return code.Code.Descriptor().HTTPStatusCode
	case errors.As(err, &codes) && len(codes) > 0:
		return StatusCode(codes[0])
	}
	return 0
}

// IsNotFound reports whether a registry answered 404 (no such manifest,
// tag, blob or repository).
func IsNotFound(err error) bool { return StatusCode(err) == http.StatusNotFound }

// Temporary reports whether err is known to be temporary, so that trying
// again may help: an HTTP answer whose status says so (408, 425, 429, 500,
// 502, 503, 504), or a failure of the connection itself (refused, reset,
// closed early, timed out). Everything else, unknown errors included, is
// final: bad credentials, other statuses, integrity failures, certificates
// that do not verify, requests refused on principle, cancellation.
func Temporary(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, errs.ErrInput) || errors.Is(err, errs.ErrIntegrity) || errors.Is(err, errs.ErrNotFound) {
		return false
	}
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
		refused   *RefusedError
	)
	if errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalid) || errors.As(err, &verify) || errors.As(err, &refused) {
		return false
	}
	var ours *Error
	if errors.As(err, &ours) {
		return ours.Temporary()
	}
	if s := StatusCode(err); s != 0 {
		return temporaryStatus(s)
	}
	var (
		netErr net.Error
		urlErr *url.Error
	)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, io.ErrUnexpectedEOF):
		return true
	case errors.As(err, &netErr) && netErr.Timeout():
		return true
	case errors.As(err, &urlErr) && (errors.Is(urlErr.Err, io.EOF) || errors.Is(urlErr.Err, net.ErrClosed)):
		// The server closed the connection before it answered; while the
		// transport was still sending a body, it says net.ErrClosed.
		return true
	}
	return false
}
