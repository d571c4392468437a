package jenkins

import "github.com/agentforge/agentforge/images/errs"

// Is makes errors.Is(err, errs.ErrJenkins) true: Jenkins refused.
func (e *Error) Is(target error) bool { return target == errs.ErrJenkins }

// Is makes errors.Is(err, errs.ErrInput) true: bad input (and
// errors.Is(err, ErrNotPinned) when the image was given by tag).
func (e *InputError) Is(target error) bool {
	return target == errs.ErrInput || target == ErrNotPinned && e.notPinned
}
