package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/agentforge/agentforge/builder"
	"github.com/agentforge/agentforge/builder/sbom"
	"github.com/agentforge/agentforge/publisher/release"
	"github.com/spf13/cobra"
)

func (a *app) buildCommand() *cobra.Command {
	var f buildFlags
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
		RunE: func(cmd *cobra.Command, argv []string) error {
			def, err := f.definition(firstOr(argv, release.DefaultDefinition))
			if err != nil {
				return err
			}
			opts, err := f.options(a)
			if err != nil {
				return err
			}
			if f.podmanURL != "" {
				res, err := builder.BuildPodman(cmd.Context(), f.podmanURL, def, opts)
				if res != nil {
					a.emit(res, func(w io.Writer) { printBuild(w, res) })
				}
				return err
			}
			if opts.Store, err = a.openStore(); err != nil {
				return err
			}
			defer a.closeStore(opts.Store)
			res, err := builder.Build(cmd.Context(), def, opts)
			if err != nil {
				return err
			}
			out := &buildOutput{Result: res}
			if f.sbom != "" {
				out.SBOM, err = sbom.WriteFiles(f.sbom, res.SBOMs())
			}
			a.emit(out, func(w io.Writer) { printBuild(w, res, out.SBOM...) })
			return err
		},
	}
	f.AddFlags(cmd)
	return cmd
}

// firstOr is argv's first element, or fallback.
func firstOr(argv []string, fallback string) string {
	if len(argv) > 0 {
		return argv[0]
	}
	return fallback
}

// buildOutput is build's result with the SBOM files written.
type buildOutput struct {
	*builder.Result
	SBOM []string `json:"sbom,omitempty"`
}

func printBuild(w io.Writer, r *builder.Result, sboms ...string) {
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
	for _, p := range sboms {
		fmt.Fprintf(w, "  sbom    %s\n", p)
	}
}
