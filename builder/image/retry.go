package image

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math/rand/v2"
	"net/http"
	"reflect"
	"time"

	"github.com/agentforge/agentforge/images/errs"
	"github.com/docker/distribution/registry/api/errcode"
	"github.com/sirupsen/logrus"
	"go.podman.io/image/v5/docker"
)

// RetryPolicy bounds retries of registry operations.
type RetryPolicy struct {
	// Attempts is the total number of tries; 0 means 4.
	Attempts int
	// Delay is the first wait, doubled after each failure (with up to 25 %
	// jitter); 0 means 1 s.
	Delay time.Duration
}

// Do runs fn until it succeeds, fails in a way retrying cannot fix (see
// Retryable), or the attempts are used up. Every retry is logged on log.
// (c/image itself already waits out 429 answers, honouring Retry-After.)
func (p RetryPolicy) Do(ctx context.Context, log logrus.FieldLogger, what string, fn func() error) error {
	attempts, delay := p.Attempts, p.Delay
	if attempts <= 0 {
		attempts = 4
	}
	if delay <= 0 {
		delay = time.Second
	}
	if log == nil {
		log = Discard
	}
	var err error
	for i := 1; ; i++ {
		if err = fn(); err == nil || !Retryable(err) || i >= attempts {
			return err
		}
		wait := delay + time.Duration(rand.Int64N(int64(delay)/4+1))
		log.WithField("attempt", i).Warnf("%s failed, retrying in %s: %v", what, wait.Round(time.Millisecond), err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		delay *= 2
	}
}

// StatusCode returns the HTTP status a registry answered with, as carried
// by c/image's errors, or 0 when err carries none.
func StatusCode(err error) int {
	var (
		status docker.UnexpectedHTTPStatusError
		unauth docker.ErrUnauthorizedForCredentials
		code   errcode.Error
		codes  errcode.Errors
	)
	switch {
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
	// c/image wraps a non-JSON error body in an unexported type that still
	// carries the status as an exported field.
	for e := err; e != nil; e = errors.Unwrap(e) {
		v := reflect.ValueOf(e)
		if v.Kind() == reflect.Pointer {
			v = v.Elem()
		}
		if v.Kind() == reflect.Struct {
			if f := v.FieldByName("StatusCode"); f.IsValid() && f.CanInt() {
				return int(f.Int())
			}
		}
	}
	return 0
}

// IsNotFound reports whether a registry answered 404 (no such manifest,
// tag, blob or repository).
func IsNotFound(err error) bool { return StatusCode(err) == http.StatusNotFound }

// Retryable tells failures worth another try (network errors, 408, 429,
// 5xx) from those that will fail the same way again (credentials,
// permissions, other 4xx, bad input, integrity failures, TLS trust,
// cancellation).
func Retryable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, errs.ErrInput) || errors.Is(err, errs.ErrIntegrity) || errors.Is(err, errs.ErrNotFound) {
		return false
	}
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
		final     interface{ Final() bool }
	)
	if errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalid) || errors.As(err, &verify) {
		return false
	}
	if errors.As(err, &final) && final.Final() {
		return false
	}
	if s := StatusCode(err); s != 0 {
		return s == http.StatusRequestTimeout || s == http.StatusTooManyRequests || s >= 500
	}
	return true
}
