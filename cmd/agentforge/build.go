package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/agentforge/agentforge/builder"
	"github.com/agentforge/agentforge/builder/image"
	"github.com/agentforge/agentforge/images"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/publisher/release"
	"github.com/spf13/cobra"
)

// defaultDefinition is what build and release build when not told.
const defaultDefinition = "images/python-agent"

// buildFlags are the flags of "build" (and of the commands that build).
type buildFlags struct {
	set            []string
	sourceMirrors  []string
	registryMirror []string
	tags           []string
	noCache        bool
	cacheDir       string
	epoch          string
	revision       string
	skipSignature  []string
	keyServer      string
	podmanURL      string
	platforms      []string
	// cache and sign are the registry layer cache's flags; --sign-key
	// signs its entries.
	cache cacheFlags
	sign  signFlags
}

func (f *buildFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVar(&f.set, "set", nil, "override a definition value: KEY=VALUE (a variable, version, base.image, base.digest, sourceDateEpoch, args.NAME, labels.NAME; repeatable)")
	fl.StringArrayVar(&f.registryMirror, "registry-mirror", nil, "pull base images through a mirror: REGISTRY=MIRROR, e.g. docker.io=mirror.example/docker.io (repeatable)")
	fl.StringArrayVar(&f.tags, "tag", nil, "extra tag for the built image (repeatable)")
	fl.BoolVar(&f.noCache, "no-cache", false, "rebuild every step instead of reusing cached layers")
	fl.StringVar(&f.epoch, "source-date-epoch", "", "timestamp for every file and date in the image, in seconds (default: the definition's, else the last git commit of the definition; $SOURCE_DATE_EPOCH)")
	fl.StringVar(&f.revision, "revision", "", "source revision recorded in org.opencontainers.image.revision (default: the last git commit of the definition)")
	fl.StringSliceVar(&f.platforms, "platform", nil, "platform to build for, os/arch[/variant] (repeatable or comma-separated; default: this machine's); each one the definition declares; several make a manifest list, foreign ones build under qemu-user emulation")
	fl.StringVar(&f.podmanURL, "podman-url", "", "build through a podman service instead of in-process (e.g. unix:///run/podman/podman.sock); the image lands in the service's storage")
	f.registerSources(cmd)
	f.cache.register(cmd)
	f.sign.register(cmd)
}

// registerSources adds the flags about fetching and checking sources.
func (f *buildFlags) registerSources(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVar(&f.sourceMirrors, "source-mirror", nil, "fetch sources from a mirror: URL-PREFIX=MIRROR-PREFIX (repeatable)")
	fl.StringVar(&f.cacheDir, "cache-dir", defaultCacheDir(), "where checked source downloads are kept ($AGENTFORGE_CACHE)")
	fl.StringArrayVar(&f.skipSignature, "skip-signature", nil, "skip the OpenPGP check of the named source (its checksum is still checked; loudly logged; repeatable)")
	fl.StringVar(&f.keyServer, "keyserver", builder.DefaultKeyServer, "keyserver (VKS API) for signing keys not kept in the definition")
}

// options turns the flags into builder options.
func (f *buildFlags) options(a *app) (builder.BuildOptions, map[string]string, error) {
	var opts builder.BuildOptions
	overrides, err := images.ParseOverrides(f.set)
	if err != nil {
		return opts, nil, fmt.Errorf("--set: %w", err)
	}
	srcMirrors, err := parseMirrors(f.sourceMirrors)
	if err != nil {
		return opts, nil, fmt.Errorf("--source-mirror: %w", err)
	}
	regMirrors, err := parseMirrors(f.registryMirror)
	if err != nil {
		return opts, nil, fmt.Errorf("--registry-mirror: %w", err)
	}
	if opts.SourceDateEpoch, err = sourceDateEpoch(f.epoch); err != nil {
		return opts, nil, err
	}
	skip := map[string]bool{}
	for _, s := range f.skipSignature {
		skip[s] = true
	}
	opts.Fetcher = &builder.Fetcher{CacheDir: f.cacheDir, Mirrors: srcMirrors, KeyServer: f.keyServer, SkipSignature: skip, Log: a.log}
	opts.Registries = a.registryConfig(regMirrors)
	opts.Platforms = f.platforms
	opts.Revision = f.revision
	opts.ExtraTags = f.tags
	opts.NoCache = f.noCache
	// The key is loaded before anything is built: a wrong passphrase
	// costs nothing.
	signer, err := f.sign.signer()
	if err != nil {
		return opts, nil, err
	}
	if opts.Cache, err = f.cache.cache(signer); err != nil {
		return opts, nil, err
	}
	opts.Output = a.stderr
	opts.Log = a.log
	return opts, overrides, nil
}

// parseMirrors parses PREFIX=REPLACEMENT values.
func parseMirrors(list []string) ([]image.Mirror, error) {
	var out []image.Mirror
	for _, s := range list {
		m, err := image.ParseMirror(s)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// sourceDateEpoch parses --source-date-epoch, or else $SOURCE_DATE_EPOCH;
// nil when neither is set.
func sourceDateEpoch(flag string) (*time.Time, error) {
	epoch := flag
	if epoch == "" {
		epoch = os.Getenv("SOURCE_DATE_EPOCH")
	}
	if epoch == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil || n < 0 || n > 253402300799 {
		return nil, errs.Inputf("--source-date-epoch %q: want seconds since 1970, before the year 10000", epoch)
	}
	t := time.Unix(n, 0).UTC()
	return &t, nil
}

// loadDefinition opens and loads the definition named by arg.
func loadDefinition(arg string, overrides map[string]string) (*images.Definition, error) {
	fsys, name, err := images.Open(arg)
	if err != nil {
		return nil, err
	}
	return images.Load(fsys, name, overrides)
}

func (a *app) buildCommand() *cobra.Command {
	var f buildFlags
	var sbomPath string
	cmd := &cobra.Command{
		Use:   "build [DEFINITION]",
		Short: "Build an image definition into local storage (default images/python-agent)",
		Long: `Build an image definition with the buildah library, in-process (chroot isolation).

DEFINITION is a folder holding image.yaml and a Containerfile, or the name of a
built-in definition (python-agent). Sources are downloaded into a cache and
checked (sha256, published checksum, OpenPGP signature) before the build. The
same definition and inputs give the same image digest.

A registry layer cache shares steps between builds that do not share a store
(Jenkins pods): --cache-to REPO pushes every step the build runs to REPO,
tagged with the step's cache key, and --cache-from REPO (repeatable) takes a
step whose key REPO has instead of running it. The key covers everything the
step depends on: its text, the build arguments declared before it with their
values, the content of what COPY and ADD take and of every file bind-mounted
into a RUN (CPython's tarball), the steps before it, the base image's ID and
the target platform. An entry is checked by digest when it is pulled and
must extend the step before it; a build from the cache gives the digest a
build without it gives. With --sign-key the entries pushed are signed
(cosign format), and with --cache-verify-key only entries signed with that
key are taken: the log names every entry ignored and why. --registry-mirror,
--authfile, --insecure-registry and --ca-file apply to the cache repositories
as to any other. A failed push is reported and does not fail the build. -o
json reports each step (cache.steps: key, status hit|built|local, entry).`,
		Example: `  agentforge build testdata/busybox
  agentforge build testdata/busybox --platform linux/amd64,linux/arm64 --sbom busybox.spdx.json
  agentforge build --set python.version=3.11.10 --set python.sha256=07a4... -o json
  agentforge build --cache-from registry.example/cache/python-agent --cache-to registry.example/cache/python-agent \
      --sign-key cosign.key --cache-verify-key cosign.pub
  agentforge build --source-mirror https://www.python.org/ftp/python/=https://mirror.example/python/`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			arg := defaultDefinition
			if len(args) == 1 {
				arg = args[0]
			}
			opts, overrides, err := f.options(a)
			if err != nil {
				return err
			}
			def, err := loadDefinition(arg, overrides)
			if err != nil {
				return err
			}
			if f.podmanURL != "" && sbomPath != "" {
				return errs.Inputf("--sbom: the podman service backend builds in the service's storage, which agentforge does not read: build in-process for an SBOM")
			}
			if f.podmanURL != "" {
				res, err := builder.BuildPodman(cmd.Context(), f.podmanURL, def, opts)
				if err != nil {
					return err
				}
				a.emit(res, func(w io.Writer) { printBuild(w, res) })
				return nil
			}
			store, err := a.openStore()
			if err != nil {
				return err
			}
			defer a.closeStore(store)
			opts.Store = store
			res, err := builder.Build(cmd.Context(), def, opts)
			if err != nil {
				return err
			}
			out := &buildOutput{Result: res}
			if sbomPath != "" {
				if out.SBOM, err = release.WriteSBOMs(sbomPath, res); err != nil {
					return err
				}
			}
			a.emit(out, func(w io.Writer) {
				printBuild(w, res)
				for _, p := range out.SBOM {
					fmt.Fprintf(w, "  sbom    %s\n", p)
				}
			})
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&sbomPath, "sbom", "", "write the image's SPDX 2.3 JSON SBOM to this file (a list: one per platform, FILE-os-arch.spdx.json)")
	return cmd
}

// buildOutput is build's result with the SBOM files written.
type buildOutput struct {
	*builder.Result
	SBOM []string `json:"sbom,omitempty"`
}

func printBuild(w io.Writer, r *builder.Result) {
	fmt.Fprintf(w, "built %s in %.1fs\n", strings.Join(r.Names, ", "), r.Seconds)
	fmt.Fprintf(w, "  id      %s\n  digest  %s\n", r.ID, r.Digest)
	for _, m := range r.Manifests {
		fmt.Fprintf(w, "  %-14s %s (%s, %d layers)\n", m.Platform, m.Digest, strings.Join(m.Names, ", "), len(m.Layers))
	}
	if r.Base.Ref != "scratch" && r.Base.Ref != "" {
		fmt.Fprintf(w, "  base    %s (%s)\n", r.Base.Ref, r.Base.Digest)
	}
	for _, s := range r.Sources {
		note := strings.Join(s.Checks, ", ")
		if s.SignatureSkipped {
			note += ", SIGNATURE CHECK SKIPPED"
		}
		fmt.Fprintf(w, "  source  %s sha256:%s (%s)\n", s.Name, s.SHA256, note)
	}
	printCache(w, "  ", r.Cache)
	for _, m := range r.Manifests {
		if m.Cache != nil {
			fmt.Fprintf(w, "  %s:\n", m.Platform)
			printCache(w, "    ", m.Cache)
		}
	}
	for i, l := range r.Layers {
		if l.Size >= 0 {
			fmt.Fprintf(w, "  layer %d %s %d bytes\n", i, l.Digest, l.Size)
		} else {
			fmt.Fprintf(w, "  layer %d %s\n", i, l.Digest)
		}
	}
}
