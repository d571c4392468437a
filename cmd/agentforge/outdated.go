package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/builder/update"
	"github.com/agentforge/agentforge/images"
	"github.com/agentforge/agentforge/images/cpython"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/publisher/release"
	"github.com/spf13/cobra"
	"go.podman.io/image/v5/docker/reference"
)

// updateFlags say where outdated and bump look.
type updateFlags struct {
	sources   sourceFlags
	pythonOrg string
	image     string
	kinds     []string
	keyrings  []string
	maxAge    time.Duration
	set       []string
}

func (f *updateFlags) AddFlags(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.pythonOrg, "python-org", cpython.DefaultBase, "python.org, or a mirror of its /ftp/python/ tree")
	fl.StringVar(&f.image, "image", "", "the image released from the definition (docker://…, oci:…, or local): the base digest it was built on and the OS packages it has; docker://REPO with no tag means the definition's first rolling tag")
	fl.StringArrayVar(&f.keyrings, "apt-keyring", nil, "an OpenPGP keyring (binary or armored) also trusted to sign the apt archives' InRelease files, besides the keys apt in --image trusts: a mirror that signs its own copy (repeatable)")
	fl.DurationVar(&f.maxAge, "apt-max-age", update.DefaultAptMaxAge, "how old a security or updates suite's InRelease may be where it has no Valid-Until (Ubuntu's): an older one is an old copy replayed; 0 for no bound")
	fl.StringSliceVar(&f.kinds, "kind", nil, "check only these kinds: "+strings.Join(update.Kinds, ", ")+" (repeatable or comma-separated; default all)")
	fl.StringArrayVar(&f.set, "set", nil, "check the definition as a build with these overrides renders it (a release file's set:): KEY=VALUE, e.g. java.version=17, which also names --image's rolling tag; bump still writes only what it adopts, and refuses (exit 2) what an override, not the file, leads to (--set python.version or base.image) (repeatable)")
	f.sources.AddFlags(cmd)
}

// check runs update.Check on the definition arg names.
func (a *app) checkDefinition(ctx context.Context, arg string, f updateFlags) (*images.Definition, *update.Report, error) {
	kinds, err := update.ParseKinds(f.kinds)
	if err != nil {
		return nil, nil, err
	}
	overrides, err := images.ParseOverrides(f.set)
	if err != nil {
		return nil, nil, err
	}
	def, err := images.Find(arg, overrides)
	if err != nil {
		return nil, nil, err
	}
	fetcher, err := f.sources.fetcher(a)
	if err != nil {
		return nil, nil, err
	}
	hosts, err := a.hosts(nil, remote.RetryPolicy{})
	if err != nil {
		return nil, nil, err
	}
	opts := update.Options{Kinds: kinds, PythonOrg: f.pythonOrg, Mirrors: fetcher.Mirrors, Hosts: hosts, Log: a.log, AptMaxAge: f.maxAge}
	if f.maxAge <= 0 {
		opts.AptMaxAge = -1
	}
	for _, p := range f.keyrings {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, nil, errs.Inputf("--apt-keyring: %w", err)
		}
		if opts.AptKeyrings == nil {
			opts.AptKeyrings = map[string][]byte{}
		}
		opts.AptKeyrings[p] = data
	}
	if f.image != "" {
		image, err := releasedImage(f.image, def)
		if err != nil {
			return nil, nil, err
		}
		if opts.Image, err = a.parseRef(image); err != nil {
			return nil, nil, err
		}
		if named := opts.Image.DockerReference(); named != nil && strings.HasPrefix(f.image, "docker://") {
			opts.ImageSys = hosts.For(reference.Domain(named))
		}
	}
	return def, update.Check(ctx, def, opts), nil
}

// releasedImage is --image as given, except a docker:// repository with
// neither tag nor digest: that names the definition's newest release, its
// first rolling tag, rendered as a build renders it (with java.tagSuffix,
// say), so that a pipeline need not work the tag out.
func releasedImage(image string, def *images.Definition) (string, error) {
	repo, ok := strings.CutPrefix(image, "docker://")
	if !ok {
		return image, nil
	}
	named, err := reference.ParseNormalizedNamed(repo)
	if err != nil {
		return "", errs.Inputf("--image %q: %w", image, err)
	}
	if !reference.IsNameOnly(named) {
		return image, nil
	}
	if len(def.RollingTags) == 0 {
		return "", errs.Inputf("--image %q: no tag, and the definition has no rolling tag to take: give one", image)
	}
	return image + ":" + def.RollingTags[0], nil
}

// bumpDefinition checks the definition folder dir and adopts what is newer.
func (a *app) bumpDefinition(ctx context.Context, dir string, bf bumpFlags) (*update.BumpReport, error) {
	f := bf.update
	def, rep, err := a.checkDefinition(ctx, dir, f)
	if err != nil {
		return nil, err
	}
	fetcher, err := f.sources.fetcher(a)
	if err != nil {
		return nil, err
	}
	// Bump refuses a finding whose inputs the file no longer holds: an
	// override's, or a value edited while the lookups ran.
	opts := update.BumpOptions{Fetcher: fetcher, PythonSHA256: bf.sha256, DryRun: bf.dryRun, Log: a.log, Checked: def, Overridden: len(f.set) > 0}
	b, err := update.Bump(ctx, dir, rep.Findings, opts)
	if b != nil {
		// A kind that could not be checked was not adopted either: it
		// fails the bump with the others, listed with them.
		b.Failed = append(b.Failed, rep.Problems...)
	}
	return b, errors.Join(err, rep.Err())
}

func (a *app) outdatedCommand() *cobra.Command {
	var f updateFlags
	cmd := &cobra.Command{
		Use:   "outdated [DEFINITION]",
		Short: "List every pinned input of a definition that has something newer, and why",
		Long: `Outdated looks up each pinned input of a definition (default
images/python-agent): the CPython patch release (python.org's listing), the
remoting jar (its Maven metadata), the base image (its tag's digest now
against the definition's pin or the one --image was built on), and the OS
packages with pending updates, security first (--image's dpkg database
against the distribution's apt indexes: its suite, -updates and -security;
updates apt holds back by phasing are listed, not pending). The indexes are
authenticated as apt does: each suite's InRelease signed by a key apt in
--image trusts for its distribution's archive (its archive keyring, which
the default sources name with Signed-By; without one, trusted.gpg.d) or
one --apt-keyring gives, naming that suite, within its Valid-Until (or
--apt-max-age of its Date, for a security or updates suite without one),
and every index read matching the SHA256 it lists; one that is not is a
problem with exit 3, never "nothing pending". The release
kind says whether --image was built from this definition (its labels and
base digest): a definition bumped whose release failed is behind there,
with nothing to adopt. Every URL goes through --source-mirror. A kind that cannot be checked (a
registry or python.org that cannot be reached, a definition value it cannot
read) is listed under problems and the others are still checked; the
report is printed all the same, and the exit code is 1 (2 when the
definition or a flag is at fault), so that a check that could not look
never reads as "nothing newer". Without --image the OS packages and the
release are skipped (listed under skipped), unless --kind names them. Read "outdated"
(a count) in the JSON.`,
		Example: `  agentforge outdated -o json
  agentforge outdated images/python-agent --image docker://registry.example/agents/python-agent:0.6.0-rc0 \
      --source-mirror http://deb.debian.org/=http://mirror.example/`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			_, rep, err := a.checkDefinition(cmd.Context(), firstOr(argv, release.DefaultDefinition), f)
			if err != nil {
				return err
			}
			a.emit(rep, func(w io.Writer) { printOutdated(w, rep) })
			return rep.Err()
		},
	}
	f.AddFlags(cmd)
	return cmd
}

func (a *app) bumpCommand() *cobra.Command {
	var b bumpFlags
	cmd := &cobra.Command{
		Use:   "bump [DEFINITION]",
		Short: "Adopt in a definition folder every pinned input that has something newer, after checking it",
		Long: `Bump runs what outdated checks and adopts each newer input in the
definition folder's image.yaml: python.version and python.sha256 (the new
tarball downloaded and checked against python.org's sha256 and the release
manager's OpenPGP signature), remoting.version (the new jar checked against
its published .sha1) and remoting.sha256 where the definition has it (that
jar's sha256, pinned; also for the current release while it is empty),
base.digest (the base pinned to its tag's digest now) and os.index (the
archive's index state: the build's apt step depends on it, so a rebuild
takes the pending OS updates). Each kind stands alone:
one whose check fails is not adopted (listed under failed; exit 3 for a
download that does not match what was published), and the others still
are, all written at once. --kind limits it (e.g. --kind cpython).`,
		Example: `  agentforge bump images/python-agent --image docker://registry.example/agents/python-agent:0.6.0-rc0 -o json
  agentforge bump --kind cpython,remoting --dry-run`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			return a.bump(cmd.Context(), firstOr(argv, release.DefaultDefinition), b)
		},
	}
	b.update.AddFlags(cmd)
	b.AddFlags(cmd)
	return cmd
}

// bumpFlags are bump's and python bump's: where to look (update; python
// bump sets it from its own flags) and their own.
type bumpFlags struct {
	update updateFlags
	dryRun bool
	sha256 string
}

func (f *bumpFlags) AddFlags(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&f.dryRun, "dry-run", false, "check what is newer and the new downloads, write nothing")
	cmd.Flags().StringVar(&f.sha256, "sha256", "", "the new CPython tarball's sha256, checked by you: needed when python.org publishes no sigstore bundle for it, or when no OpenPGP signature check vouches for the bundle's (the definition names none, or --skip-signature python)")
}

// bump adopts what is newer in the definition folder dir and prints what
// it did.
func (a *app) bump(ctx context.Context, dir string, b bumpFlags) error {
	rep, err := a.bumpDefinition(ctx, dir, b)
	if rep != nil {
		a.emit(rep, func(w io.Writer) { printBump(w, rep) })
	}
	return err
}

func printOutdated(w io.Writer, r *update.Report) {
	for _, f := range r.Findings {
		state := "current"
		if f.Outdated {
			state = "OUTDATED"
			if f.Security {
				state = "OUTDATED (security)"
			}
			if f.Current == f.Latest {
				// Not a newer version: why it is outdated all the same
				// (a remoting jar not pinned yet).
				state += ": " + f.Why
			}
		}
		fmt.Fprintf(w, "%-9s %-32s %s -> %s  %s\n", f.Kind, f.Name, f.Current, f.Latest, state)
		for _, p := range f.Packages {
			sec := ""
			if p.Security {
				sec = " (security)"
			}
			fmt.Fprintf(w, "          %s/%s %s -> %s from %s%s\n", p.Name, p.Architecture, p.Installed, p.Available, p.Suite, sec)
		}
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "%-9s not checked: %s\n", p.Kind, p.Error)
	}
	for _, sk := range r.Skipped {
		fmt.Fprintf(w, "%-9s skipped: %s\n", sk.Kind, sk.Why)
	}
}

func printBump(w io.Writer, r *update.BumpReport) {
	fmt.Fprintf(w, "%s: %s\n", r.Definition, r.Status)
	for _, c := range r.Changes {
		fmt.Fprintf(w, "  %s %s -> %s (%s)\n", c.Kind, c.From, c.To, strings.Join(c.Checks, ", "))
	}
	for _, p := range r.Failed {
		fmt.Fprintf(w, "  %s NOT adopted: %s\n", p.Kind, p.Error)
	}
}
