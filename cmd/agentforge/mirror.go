package main

import (
	"io"
	"strings"

	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/publisher"
	"github.com/spf13/cobra"
	"go.podman.io/image/v5/docker/reference"
)

func (a *app) mirrorCommand() *cobra.Command {
	var f pushFlags
	var platform string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "mirror SRC --to DEST [--to DEST]...",
		Short: "Copy a remote image byte for byte (same digest) to other registries",
		Long: `Mirror copies an image from a registry to every destination without changing a
byte: the same manifest, the same digest; a multi-platform index is kept whole
(every platform's manifest by digest, then the index). Blobs a destination has
are not sent again, so re-running on an unchanged source transfers nothing.
The source's cosign signatures, attestations and SBOMs go with it (alongside
the blobs) and its OCI 1.1 referrers after the image, merged with what the
destination has and read back, all before any tag is written.
The source's tag is kept unless --tag says otherwise. --platform narrows an
index to one platform (the digest then changes to that platform's manifest).`,
		Example: `  agentforge mirror docker://docker.io/jenkins/inbound-agent:3355.v388858a_47b_33-1-jdk21 \
      --to mirror.example.cn/docker.io/jenkins/inbound-agent
  agentforge mirror registry.example/agents/python-agent:0.6.0-rc0 --to 127.0.0.1:5000/agents/python-agent --dry-run`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			srcArg := argv[0]
			if strings.HasPrefix(srcArg, "localhost/") {
				// What build names an image (localhost/NAME) is local
				// storage everywhere else in agentforge, as in podman.
				return errs.Inputf("mirror %s: localhost/NAME is a local image: publish pushes one; a registry on this machine is docker://localhost[:PORT]/NAME", srcArg)
			}
			if !strings.HasPrefix(srcArg, "docker://") {
				srcArg = "docker://" + srcArg
			}
			src, err := oci.ParseReference(srcArg, nil)
			if err != nil {
				return err
			}
			var tags []string
			if t, ok := src.DockerReference().(reference.Tagged); ok {
				tags = []string{t.Tag()}
			}
			dests, err := f.destinations(tags)
			if err != nil {
				return err
			}
			opts, err := f.options(a)
			if err != nil {
				return err
			}
			rep, err := publisher.Mirror(cmd.Context(), src, dests, publisher.MirrorOptions{Options: opts, Platform: platform, DryRun: dryRun})
			if rep != nil {
				a.emit(rep, func(w io.Writer) { printPublish(w, rep) })
			}
			return err
		},
	}
	f.AddFlags(cmd)
	cmd.Flags().StringVar(&platform, "platform", "", "copy only this platform's manifest (os/arch[/variant]); the digest changes")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "say which blobs would be copied, copy nothing")
	return cmd
}
