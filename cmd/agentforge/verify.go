package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/agentforge/agentforge/builder"
	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"
	"go.podman.io/image/v5/types"
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
			} else if strings.HasPrefix(args[0], "docker://") {
				opts.SystemContext = a.remoteSystemContext()
			}
			ref, err := builder.ParseReference(args[0], store)
			if err != nil {
				return err
			}
			rep, err := builder.Verify(cmd.Context(), ref, opts)
			if rep != nil {
				a.emit(rep, func(w io.Writer) { printVerify(w, rep) })
			}
			return err
		},
	}
	cmd.Flags().StringVar(&expect, "expect-digest", "", "fail unless the manifest digest is this one (sha256:…)")
	return cmd
}

// remoteSystemContext reaches registries with the global flags.
func (a *app) remoteSystemContext() *types.SystemContext {
	sys := &types.SystemContext{AuthFilePath: a.authFile}
	if len(a.insecure) > 0 {
		sys.DockerInsecureSkipTLSVerify = types.OptionalBoolTrue
	}
	return sys
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
