package main

import (
	"fmt"

	"errors"
	"github.com/spf13/cobra"

	"github.com/agentforge/agentforge/builder"
	"github.com/agentforge/agentforge/images"
	"github.com/agentforge/agentforge/jenkins"
	"github.com/agentforge/agentforge/publisher"
)

// Exit codes, part of the command-line contract (README "Exit codes").
const (
	exitOK        = 0
	exitRuntime   = 1 // network, registry, build step
	exitInput     = 2 // flags, config, definition, reference
	exitIntegrity = 3 // a digest, size, checksum or signature that does not match
	exitJenkins   = 4 // Jenkins refused
)

// usageError marks bad command-line input.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// exitCode decides the exit code from the kind of error, in one place.
// Integrity wins over input: a build that fails a checksum says so.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var (
		ie *builder.IntegrityError
		de *images.DefinitionError
		in *builder.InputError
		ue *usageError
		je *jenkins.Error
		ji *jenkins.InputError
		pi *publisher.InputError
	)
	switch {
	case errors.As(err, &ie):
		return exitIntegrity
	case errors.As(err, &je):
		return exitJenkins
	case errors.As(err, &de), errors.As(err, &in), errors.As(err, &ue), errors.As(err, &ji), errors.As(err, &pi):
		return exitInput
	}
	return exitRuntime
}

// args wraps a cobra argument check so that a wrong number of arguments is
// reported as bad input (exit 2).
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := check(cmd, a); err != nil {
			return &usageError{fmt.Errorf("%s: %w", cmd.CommandPath(), err)}
		}
		return nil
	}
}
