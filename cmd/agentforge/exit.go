package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/jenkins"
	"github.com/agentforge/agentforge/publisher"
)

// Exit codes, part of the command-line contract (README "Exit codes").
const (
	exitOK        = 0
	exitRuntime   = 1 // network, registry, build step
	exitInput     = 2 // flags, config, definition, reference (also: it names nothing that exists)
	exitIntegrity = 3 // a digest, size, checksum or signature that does not match
	exitJenkins   = 4 // Jenkins refused
)

// exitCode decides the exit code from the kind of error, in one place.
// Integrity wins over input: a build that fails a checksum says so.
func exitCode(err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errs.ErrIntegrity):
		return exitIntegrity
	case errors.Is(err, errs.ErrJenkins):
		return exitJenkins
	case errors.Is(err, errs.ErrInput), errors.Is(err, errs.ErrNotFound):
		return exitInput
	}
	return exitRuntime
}

// withHints adds the command-line flag that would change the outcome to
// library errors, which do not know about flags.
func withHints(err error) error {
	var (
		conflict *publisher.TagConflictError
		refused  *jenkins.Error
		input    *jenkins.InputError
	)
	switch {
	case errors.As(err, &conflict) && !conflict.Lost:
		return fmt.Errorf("%w (--allow-overwrite to move it, or publish it as a rolling tag)", err)
	case errors.As(err, &refused):
		if hint, ok := jenkinsHints[refused.Reason]; ok {
			return fmt.Errorf("%w (%s)", err, hint)
		}
	case errors.As(err, &input) && len(input.Fields) > 0:
		var flags []string
		for _, f := range input.Fields {
			flags = append(flags, templateFlags[f])
		}
		hint := "check " + strings.Join(flags, ", ")
		if errors.Is(err, jenkins.ErrNotPinned) {
			hint += "; --allow-tag accepts a tag"
		}
		return fmt.Errorf("%w (%s)", err, hint)
	}
	return err
}

// templateFlags are register's flags for jenkins.Template's fields.
var templateFlags = map[string]string{
	"cloud": "--cloud", "template": "--template", "label": "--label", "image": "--image",
	"namespace": "--namespace", "service-account": "--service-account",
	"cpu-request": "--cpu-request", "memory-request": "--memory-request", "cpu-limit": "--cpu-limit", "memory-limit": "--memory-limit",
	"idle-minutes": "--idle-minutes", "instance-cap": "--instance-cap", "node-usage-mode": "--node-usage-mode",
	"emptyDir": "--podman-storage", "podman-storage": "--podman-storage", "podman": "--podman", "user-namespace": "--user-namespace",
	"image-pull-secret": "--image-pull-secret", "node-selector": "--node-selector", "env": "--env",
	"yaml": "--yaml-file", "yaml-merge": "--yaml-merge", "inherit-from": "--inherit-from",
	"run-as-user": "--run-as-user", "run-as-group": "--run-as-group", "fs-group": "--fs-group", "arch": "--arch",
}

// jenkinsHints name the flag that helps with a refusal, by jenkins.Error
// reason.
var jenkinsHints = map[string]string{
	"not-managed":    "--adopt takes it over",
	"no-such-cloud":  "--cloud names another",
	"script-console": "--casc-file FILE --casc-reload or --helm-values register through configuration as code instead",
	"casc-managed":   "--casc-file FILE --casc-reload keeps the template in the configuration-as-code YAML, --helm-values prints the chart's form; --script-console registers by script anyway; in a release file: jenkins.cascFile + cascReload, or scriptConsole: true",
	"casc-missing":   "--casc-reload needs the configuration-as-code plugin",
	"casc-reload":    "check the YAML in --casc-file",
	"not-jenkins":    "check --jenkins-url",
}

// args wraps a cobra argument check so that a wrong number of arguments is
// reported as bad input (exit 2).
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := check(cmd, a); err != nil {
			return errs.Inputf("%s: %w", cmd.CommandPath(), err)
		}
		return nil
	}
}
