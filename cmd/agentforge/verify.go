package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/agentforge/agentforge/builder"
	"github.com/agentforge/agentforge/publisher"
	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/storage"
)

func (a *app) verifyCommand() *cobra.Command {
	var expect string
	cmd := &cobra.Command{
		Use:   "verify REF",
		Short: "Verify an image's manifest, config and every layer",
		Long: `Verify reads an image back and checks its manifest digest, its config blob, the
layer count against rootfs.diff_ids, and every layer: blob digest and size against
the manifest, uncompressed digest against the config's diff_id. Layers are read
in parallel, each in one pass. A mismatch exits 3 and names the layer.

REF: a local image name or ID, containers-storage:NAME, oci:DIR[:tag], or
docker://host/repo[:tag|@digest].`,
		Example: `  agentforge verify localhost/python-agent:0.6.0-rc0
  agentforge verify -o json oci:/tmp/layout:latest`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := builder.VerifyOptions{Log: a.log}
			if expect != "" {
				d, err := digest.Parse(expect)
				if err != nil {
					return &usageError{fmt.Errorf("--expect-digest %q: %v", expect, err)}
				}
				opts.ExpectDigest = d
			}
			var store storage.Store
			if !strings.HasPrefix(args[0], "oci:") && !strings.HasPrefix(args[0], "docker://") {
				s, err := a.openStore()
				if err != nil {
					return err
				}
				defer a.closeStore(s)
				store = s
			}
			ref, err := builder.ParseReference(args[0], store)
			if err != nil {
				return err
			}
			if named := ref.DockerReference(); named != nil && strings.HasPrefix(args[0], "docker://") {
				sys, cleanup, err := a.publishRegistries().SystemContext(reference.Domain(named))
				if err != nil {
					return err
				}
				defer cleanup()
				opts.SystemContext = sys
			}
			rep, err := builder.Verify(cmd.Context(), ref, opts)
			if errors.Is(err, builder.ErrIndex) {
				// A multi-platform index: check it and every platform's image.
				if err = publisher.VerifyRemote(cmd.Context(), ref, opts.ExpectDigest, publisher.VerifyFull, a.publishRegistries()); err == nil {
					a.emit(map[string]any{"ref": args[0], "ok": true, "index": true}, func(w io.Writer) { fmt.Fprintf(w, "OK %s (index and every platform)\n", args[0]) })
				}
				return err
			}
			if rep != nil {
				rep.Ref = args[0]
				a.emit(rep, func(w io.Writer) { printVerify(w, rep) })
			}
			return err
		},
	}
	cmd.Flags().StringVar(&expect, "expect-digest", "", "fail unless the manifest digest is this one (sha256:…)")
	return cmd
}

func printVerify(w io.Writer, r *builder.VerifyReport) {
	status := "OK"
	if !r.OK {
		status = "FAILED"
	}
	fmt.Fprintf(w, "%s %s\n  digest  %s\n  config  %s ok=%t\n", status, r.Ref, r.Digest, r.Config.Digest, r.Config.OK)
	for _, l := range r.Layers {
		mark := "ok"
		if !l.OK {
			mark = "MISMATCH: " + l.Problem
		}
		fmt.Fprintf(w, "  layer %d %s %d bytes diffID %s %s\n", l.Index, l.Digest, l.Size, l.DiffID, mark)
	}
}
