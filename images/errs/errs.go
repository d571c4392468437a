// Package errs is agentforge's error model: a few sentinel kinds that every
// package wraps with %w, and the typed details that travel with them.
//
//	errors.Is(err, errs.ErrInput)      bad input: flags, config, definition, reference
//	errors.Is(err, errs.ErrIntegrity)  a digest, size, checksum or signature that does not match
//	errors.Is(err, errs.ErrJenkins)    Jenkins refused: auth, permission, missing cloud or plugin
//	errors.Is(err, errs.ErrNotFound)   the thing named does not exist (an image, a tag, a template)
//
// Anything else is a runtime failure. The CLI derives its exit codes from
// these kinds in one place.
//
// The package lives under images because images is the root of the import
// graph (images ← builder ← publisher; jenkins on its own): every package of
// the module may import it, and it imports nothing of ours.
package errs

import (
	"errors"
	"fmt"
)

// The error kinds.
var (
	ErrInput     = errors.New("bad input")
	ErrIntegrity = errors.New("integrity check failed")
	ErrJenkins   = errors.New("jenkins refused")
	ErrNotFound  = errors.New("not found")
)

// kindError marks err as being of kind, keeping err's own message and chain.
type kindError struct {
	kind error
	err  error
}

func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.err, e.kind} }

// Mark returns err marked as of kind (one of the Err* values), or nil when
// err is nil. The message is err's own.
func Mark(kind, err error) error {
	if err == nil {
		return nil
	}
	return &kindError{kind: kind, err: err}
}

// Input marks err as bad input.
func Input(err error) error { return Mark(ErrInput, err) }

// Inputf is fmt.Errorf marked as bad input (%w works as usual).
func Inputf(format string, args ...any) error { return Input(fmt.Errorf(format, args...)) }

// NotFoundf is fmt.Errorf marked as not found.
func NotFoundf(format string, args ...any) error {
	return Mark(ErrNotFound, fmt.Errorf(format, args...))
}

// Integrityf is fmt.Errorf marked as an integrity failure, for content
// that cannot be trusted where there are no two values to compare (an
// unsigned or expired index).
func Integrityf(format string, args ...any) error {
	return Mark(ErrIntegrity, fmt.Errorf(format, args...))
}

// IntegrityError reports content that is not what it must be: a source
// file's checksum or signature, a manifest's, config's or layer's digest,
// size or diffID. errors.Is(err, ErrIntegrity) holds for it.
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

// Is makes errors.Is(err, ErrIntegrity) true.
func (e *IntegrityError) Is(target error) bool { return target == ErrIntegrity }
