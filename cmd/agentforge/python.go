package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/agentforge/agentforge/builder/source"
	"github.com/agentforge/agentforge/images/errs"

	"github.com/agentforge/agentforge/images"
	"github.com/agentforge/agentforge/images/cpython"
	"github.com/spf13/cobra"
)

// bumpReport is the JSON output of "python bump".
type bumpReport struct {
	Status     string            `json:"status"` // bumped, current, would-bump
	Definition string            `json:"definition"`
	From       string            `json:"from"`
	To         string            `json:"to"`
	SHA256     string            `json:"sha256,omitempty"`
	Checks     []string          `json:"checks,omitempty"`
	Latest     *cpython.Release  `json:"latest"`
	Set        map[string]string `json:"set,omitempty"`
}

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
		Args:  args(cobra.NoArgs),
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

	var f sourceFlags
	var dryRun bool
	var sha string
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
			dir := "images/python-agent"
			if len(argv) == 1 {
				dir = argv[0]
			}
			fetcher, err := f.fetcher(a)
			if err != nil {
				return err
			}
			rep, err := a.bump(cmd.Context(), dir, &cpython.Finder{Base: base}, fetcher, sha, dryRun)
			if rep != nil {
				a.emit(rep, func(w io.Writer) {
					fmt.Fprintf(w, "%s: %s -> %s (%s)\n", rep.Definition, rep.From, rep.To, rep.Status)
				})
			}
			return err
		},
	}
	f.AddFlags(bump)
	bump.Flags().BoolVar(&dryRun, "dry-run", false, "check the new release but do not write the definition")
	bump.Flags().StringVar(&sha, "sha256", "", "the new tarball's sha256, when python.org publishes no sigstore bundle for it")
	cmd.AddCommand(latest, bump)
	return cmd
}

func (a *app) bump(ctx context.Context, dir string, finder *cpython.Finder, fetcher *source.Fetcher, sha string, dryRun bool) (*bumpReport, error) {
	fsys, name, err := images.Open(dir)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(name, "builtin:") {
		return nil, errs.Inputf("bump edits a definition folder; %s is built in (give the folder, e.g. images/python-agent in a checkout)", dir)
	}
	def, err := images.Load(fsys, name, nil)
	if err != nil {
		return nil, err
	}
	cur := def.Vars["python.version"]
	parts := strings.Split(cur, ".")
	if len(parts) != 3 {
		return nil, errs.Inputf("%s: python.version %q: want X.Y.Z", dir, cur)
	}
	if def.Vars["python.format"] != "tar.xz" {
		return nil, errs.Inputf("%s: python.format is %q; bump follows the tar.xz tarballs python.org signs with sigstore", dir, def.Vars["python.format"])
	}
	latest, err := finder.Latest(ctx, parts[0]+"."+parts[1])
	if err != nil {
		return nil, err
	}
	rep := &bumpReport{Definition: dir, From: cur, To: latest.Version, Latest: latest, Status: "current"}
	if !cpython.Newer(latest.Version, cur) {
		rep.To = cur
		return rep, nil
	}
	if sha == "" {
		sha = latest.SHA256
	}
	if sha == "" {
		return rep, fmt.Errorf("python.org publishes no sigstore bundle for %s: check the tarball's sha256 yourself and pass --sha256", latest.Version)
	}
	rep.SHA256 = sha
	rep.Set = map[string]string{"python.version": latest.Version, "python.sha256": sha}
	// Check the new tarball exactly as a build will: sha256 and signature.
	next, err := images.Load(fsys, name, rep.Set)
	if err != nil {
		return rep, err
	}
	for _, src := range next.Sources {
		if src.Name != "python" {
			continue
		}
		got, err := fetcher.Fetch(ctx, src)
		if err != nil {
			return rep, err
		}
		rep.Checks = got.Checks
	}
	if dryRun {
		rep.Status = "would-bump"
		return rep, nil
	}
	if err := images.SetVariables(dir, rep.Set); err != nil {
		return rep, err
	}
	rep.Status = "bumped"
	a.log.Infof("%s: CPython %s -> %s (%s)", dir, cur, latest.Version, strings.Join(rep.Checks, ", "))
	return rep, nil
}
