package builder

import (
	"errors"
	"fmt"
)

// IntegrityError reports content that does not match what it must be: a
// source file's checksum or signature, a layer's digest, size or diffID.
type IntegrityError struct {
	// What names the thing checked: `source "python" (https://…)`, `layer 2 sha256:…`.
	What string
	// Check names the property: sha256, sha1, signature, digest, size, diffID, content.
	Check string
	// Expected and Actual are the values compared, when there are two.
	Expected, Actual string
}

func (e *IntegrityError) Error() string {
	if e.Expected == "" && e.Actual == "" {
		return fmt.Sprintf("integrity check failed: %s: %s", e.What, e.Check)
	}
	return fmt.Sprintf("integrity check failed: %s: %s mismatch: expected %s, got %s", e.What, e.Check, e.Expected, e.Actual)
}

// InputError reports bad input from the caller: an unknown image, a malformed
// reference, an option that makes no sense. The CLI maps it to exit code 2.
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

func inputErrorf(format string, args ...any) error {
	return &InputError{Err: fmt.Errorf(format, args...)}
}

// IsIntegrity reports whether err is, or wraps, an *IntegrityError.
func IsIntegrity(err error) bool {
	var ie *IntegrityError
	return errors.As(err, &ie)
}
