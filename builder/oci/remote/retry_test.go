package remote

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"syscall"
	"testing"
	"time"

	"github.com/agentforge/agentforge/images/errs"
	"github.com/docker/distribution/registry/api/errcode"
	v2 "github.com/docker/distribution/registry/api/v2"
	"go.podman.io/image/v5/docker"
)

// Only what is known to be temporary is retried (the model is
// go-containerregistry's transport.Error.Temporary): an error nobody
// recognises is final, so that a bug or a refusal is reported at once
// instead of being hammered four times.
func TestTemporary(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"our 503", &Error{Method: "GET", URL: "https://r/v2/", StatusCode: 503}, true},
		{"our 429", &Error{StatusCode: 429}, true},
		{"our 408", &Error{StatusCode: 408}, true},
		{"our 501 (not implemented)", &Error{StatusCode: 501}, false},
		{"our 404", &Error{StatusCode: 404}, false},
		{"our 401", &Error{StatusCode: 401}, false},
		{"c/image 502", fmt.Errorf("put blob: %w", docker.UnexpectedHTTPStatusError{StatusCode: 502}), true},
		{"c/image 429", fmt.Errorf("x: %w", docker.ErrTooManyRequests), true},
		{"c/image denied", errcode.Errors{v2.ErrorCodeManifestUnknown.WithMessage("no")}, false},
		{"c/image unauthorized", docker.ErrUnauthorizedForCredentials{Err: errors.New("bad")}, false},
		{"connection closed before the answer", &url.Error{Op: "Put", URL: "https://r/", Err: io.EOF}, true},
		{"connection closed while the body was sent", &url.Error{Op: "Put", URL: "https://r/", Err: net.ErrClosed}, true},
		{"our own closed connection, not an HTTP call", fmt.Errorf("read: %w", net.ErrClosed), false},
		{"connection reset", fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{"connection refused", &url.Error{Op: "Get", URL: "https://r/", Err: syscall.ECONNREFUSED}, true},
		{"unexpected EOF", fmt.Errorf("copy: %w", io.ErrUnexpectedEOF), true},
		{"unknown certificate authority", &url.Error{Op: "Get", URL: "https://r/", Err: x509.UnknownAuthorityError{}}, false},
		{"refused on principle", &RefusedError{Reason: "no"}, false},
		{"cancelled", fmt.Errorf("x: %w", context.Canceled), false},
		{"integrity, even over a 503", &errs.IntegrityError{What: "layer", Check: "digest"}, false},
		{"bad input", errs.Inputf("bad"), false},
		{"an error nobody recognises", errors.New("something odd"), false},
	} {
		if got := Temporary(tc.err); got != tc.want {
			t.Errorf("%s: Temporary(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

func TestRetryPolicy_RetriesOnlyTemporary(t *testing.T) {
	p := RetryPolicy{Attempts: 3, Delay: time.Millisecond}
	for _, tc := range []struct {
		name  string
		err   error
		calls int
	}{
		{"temporary: every attempt", &Error{StatusCode: 503}, 3},
		{"unknown: once", errors.New("odd"), 1},
		{"final status: once", &Error{StatusCode: 403}, 1},
	} {
		calls := 0
		err := p.Do(context.Background(), nil, "op", func() error { calls++; return tc.err })
		if calls != tc.calls || err != tc.err {
			t.Errorf("%s: %d calls, error %v; want %d calls and the error", tc.name, calls, err, tc.calls)
		}
	}
}

// Retries follow progress: an operation of a group keeps being retried
// while the others keep getting through (the registry is taking work; a
// refusal here and there is not it failing), and gives up after Attempts
// tries in a row with nobody getting through, or at Deadline whatever the
// others do. Alone, it is the fixed count.
func TestRetryPolicy_FollowsProgress(t *testing.T) {
	ctx := context.Background()
	flaky := &Error{StatusCode: 503}
	p := RetryPolicy{Attempts: 4, Delay: time.Millisecond, MaxDelay: 2 * time.Millisecond}
	for _, tc := range []struct {
		name     string
		policy   RetryPolicy
		fails    int  // tries that fail before one succeeds
		others   bool // another operation succeeds between two tries
		wantErr  bool
		wantRuns int
	}{
		{"others progress: ten failures are waited out", p, 10, true, false, 11},
		{"nobody progresses: four tries", p, 10, false, true, 4},
		{"others progress, but past the deadline", RetryPolicy{Attempts: 4, Delay: time.Millisecond, MaxDelay: time.Millisecond, Deadline: 30 * time.Millisecond}, 1 << 20, true, true, -1},
		{"three failures alone: within four tries", p, 3, false, false, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &Progress{}
			runs := 0
			start := time.Now()
			err := tc.policy.DoWith(ctx, g, nil, "blob", func() error {
				if runs++; runs <= tc.fails {
					if tc.others {
						g.done() // another blob of the transfer got through
					}
					return flaky
				}
				return nil
			})
			if (err != nil) != tc.wantErr || tc.wantRuns >= 0 && runs != tc.wantRuns {
				t.Errorf("%d runs, error %v; want %d runs, error %t", runs, err, tc.wantRuns, tc.wantErr)
			}
			if tc.policy.Deadline > 0 && time.Since(start) > tc.policy.Deadline+time.Second {
				t.Errorf("retried for %s, past the deadline %s", time.Since(start), tc.policy.Deadline)
			}
		})
	}
	// A success counts as progress for the others.
	g := &Progress{}
	p.DoWith(ctx, g, nil, "ok", func() error { return nil })
	if g.load() != 1 {
		t.Errorf("progress %d after one success, want 1", g.load())
	}
}
