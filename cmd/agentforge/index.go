package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/publisher"
	"github.com/spf13/cobra"
	"go.podman.io/image/v5/types"
)

func (a *app) indexCommand() *cobra.Command {
	var f pushFlags
	cmd := &cobra.Command{
		Use:   "index REF... --to DEST [--to DEST]...",
		Short: "Join single-platform images (by digest) into one multi-platform index on every destination",
		Long: `Index joins single-platform images that were each built and published on
their own agent (one per architecture) into one OCI image index, and publishes
it to every destination: a platform image a destination lacks is copied there
byte for byte from where it is, then the index is written by digest, verified
with every platform's image, and only then tagged. The platforms come from each
image's config; they are ordered, so every destination — and every run — gets
the same index digest, which is what the final Jenkins stage registers.

REF: host/repo@sha256:… (docker:// optional), one per platform.

--sign-key signs, on every destination, each platform image and then the
index digest (cosign format), after verification and before the tags.`,
		Example: `  agentforge index registry.example/agents/python-agent@sha256:<amd64> registry.example/agents/python-agent@sha256:<arm64> \
      --to registry.example/agents/python-agent:0.6.0-rc0 --to mirror.example.cn/registry.example/agents/python-agent:0.6.0-rc0 -o json`,
		Args: args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			var srcs []types.ImageReference
			for _, s := range argv {
				if !strings.HasPrefix(s, "docker://") {
					s = "docker://" + s
				}
				ref, err := oci.ParseReference(s, nil)
				if err != nil {
					return err
				}
				srcs = append(srcs, ref)
			}
			dests, err := f.destinations(nil)
			if err != nil {
				return err
			}
			opts, err := f.options(a)
			if err != nil {
				return err
			}
			rep, err := publisher.Index(cmd.Context(), srcs, dests, opts)
			a.emitIndex(rep)
			return err
		},
	}
	f.AddFlags(cmd)
	f.sign.AddFlags(cmd)
	return cmd
}

// emitIndex prints the outcome of an index or of a list's publish.
func (a *app) emitIndex(rep *publisher.IndexReport) {
	if rep == nil {
		return
	}
	a.emit(rep, func(w io.Writer) {
		printPublish(w, &rep.Report)
		for _, m := range rep.Manifests {
			fmt.Fprintf(w, "  %-14s %s (from %s)\n", m.Platform, m.Digest, m.Source)
		}
	})
}
