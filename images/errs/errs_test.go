package errs

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"
)

func TestKinds(t *testing.T) {
	cause := fs.ErrNotExist
	for _, tc := range []struct {
		name string
		err  error
		kind error
		msg  string
	}{
		{"input", Inputf("auth file %s: %w", "a.json", cause), ErrInput, "auth file a.json: file does not exist"},
		{"not found", NotFoundf("image %q", "x"), ErrNotFound, `image "x"`},
		{"integrity", &IntegrityError{What: "layer 1", Check: "digest", Expected: "a", Actual: "b"}, ErrIntegrity, "integrity check failed: layer 1: digest mismatch: expected a, got b"},
		{"integrity, formatted", Integrityf("index %s: %w", "trixie", cause), ErrIntegrity, "index trixie: file does not exist"},
		{"wrapped twice", fmt.Errorf("push r: %w", Mark(ErrJenkins, errors.New("403"))), ErrJenkins, "push r: 403"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !errors.Is(tc.err, tc.kind) {
				t.Errorf("errors.Is(%v, %v) is false", tc.err, tc.kind)
			}
			for _, other := range []error{ErrInput, ErrIntegrity, ErrJenkins, ErrNotFound} {
				if other != tc.kind && errors.Is(tc.err, other) {
					t.Errorf("%v is also %v", tc.err, other)
				}
			}
			if tc.err.Error() != tc.msg {
				t.Errorf("message %q, want %q", tc.err, tc.msg)
			}
		})
	}
	if !errors.Is(Inputf("x: %w", cause), fs.ErrNotExist) {
		t.Error("the cause is lost")
	}
	if Mark(ErrInput, nil) != nil {
		t.Error("Mark(nil) is not nil")
	}
}
