package main

import (
	"fmt"
	"io"

	"github.com/agentforge/agentforge/builder/update"
	"github.com/agentforge/agentforge/images/cpython"
	"github.com/agentforge/agentforge/publisher/release"
	"github.com/spf13/cobra"
)

func (a *app) pythonCommand() *cobra.Command {
	var base string
	cmd := &cobra.Command{
		Use:   "python",
		Short: "Find and adopt the newest CPython patch release",
	}
	cmd.PersistentFlags().StringVar(&base, "python-org", cpython.DefaultBase, "python.org, or a mirror of its /ftp/python/ tree")

	var series string
	latest := &cobra.Command{
		Use:   "latest",
		Short: "Print the newest CPython patch release of a series with a source tarball",
		Example: `  agentforge python latest --series 3.11 -o json
  agentforge python latest --python-org https://mirror.example/python.org`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := (&cpython.Finder{Base: base}).Latest(cmd.Context(), series)
			if err != nil {
				return err
			}
			a.emit(r, func(w io.Writer) { fmt.Fprintf(w, "%s %s\n", r.Version, r.URL) })
			return nil
		},
	}
	latest.Flags().StringVar(&series, "series", "3.11", "release series")

	var b bumpFlags
	bump := &cobra.Command{
		Use:   "bump [DEFINITION]",
		Short: "Adopt the newest patch release in a definition, after checking its tarball",
		Long: `Bump finds the newest patch release of the definition's CPython series
(python.version), downloads its tarball and checks it — against the sha256
python.org publishes in the release's sigstore bundle (or --sha256) and against
the release manager's OpenPGP signature — and only then writes python.version
and python.sha256 into the definition's image.yaml. Rebuild and release after
it (the Jenkinsfile or "agentforge release" does). Exit 3 when the tarball does
not match; the definition is then left as it was.`,
		Example: `  agentforge python bump images/python-agent
  agentforge python bump --dry-run -o json`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			b.update.pythonOrg, b.update.kinds = base, []string{update.KindCPython}
			return a.bump(cmd.Context(), firstOr(argv, release.DefaultDefinition), b)
		},
	}
	b.update.sources.AddFlags(bump)
	b.AddFlags(bump)
	cmd.AddCommand(latest, bump)
	return cmd
}
