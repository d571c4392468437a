package publisher

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/agentforge/agentforge/builder"
	"github.com/sirupsen/logrus"
	"go.podman.io/image/v5/docker"
)

// RetryPolicy bounds retries of registry operations.
type RetryPolicy struct {
	// Attempts is the total number of tries; 0 means 4.
	Attempts int
	// Delay is the first wait, doubled after each failure; 0 means 1 s.
	Delay time.Duration
}

// retry runs fn until it succeeds, fails in a way retrying cannot fix, or
// the attempts are used up. Every retry is logged. (c/image itself already
// waits out 429 answers, honouring Retry-After.)
func (p RetryPolicy) retry(ctx context.Context, log logrus.FieldLogger, what string, fn func() error) error {
	attempts, delay := p.Attempts, p.Delay
	if attempts <= 0 {
		attempts = 4
	}
	if delay <= 0 {
		delay = time.Second
	}
	var err error
	for i := 1; ; i++ {
		if err = fn(); err == nil || !retryable(err) || i >= attempts {
			return err
		}
		log.WithField("attempt", i).Warnf("%s failed, retrying in %s: %v", what, delay, err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
		delay *= 2
	}
}

// retryable tells failures worth another try (network errors, 408, 429,
// 5xx, dropped connections) from those that will fail the same way again
// (credentials, permissions, bad input, a tag conflict, corrupt content).
func retryable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var (
		unauth   docker.ErrUnauthorizedForCredentials
		input    *InputError
		conflict *TagConflictError
		status   docker.UnexpectedHTTPStatusError
	)
	switch {
	case errors.As(err, &unauth), errors.As(err, &input), errors.As(err, &conflict), builder.IsIntegrity(err):
		return false
	case errors.As(err, &status):
		return status.StatusCode == 408 || status.StatusCode == 429 || status.StatusCode >= 500
	}
	msg := strings.ToLower(err.Error())
	for _, final := range []string{"unauthorized", "authentication required", "denied", "manifest unknown", "name unknown", "name invalid", "digest did not match", "x509:", "certificate"} {
		if strings.Contains(msg, final) {
			return false
		}
	}
	return true
}
