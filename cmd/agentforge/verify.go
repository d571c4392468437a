package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/publisher/sign"
	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/storage"
)

func (a *app) verifyCommand() *cobra.Command {
	var (
		expect, key string
		requireSBOM bool
	)
	cmd := &cobra.Command{
		Use:   "verify REF",
		Short: "Verify an image's manifest, config and every layer",
		Long: `Verify reads an image back and checks its manifest digest, its config blob, the
layer count against rootfs.diff_ids, and every layer: blob digest and size against
the manifest, uncompressed digest against the config's diff_id. Layers are read
in parallel, each in one pass. A mismatch exits 3 and names the layer.

--key PUB (a cosign public key) also checks, on a registry reference, that the
verified digest carries a cosign signature by that key (sha256-<hex>.sig) and,
when one is attached, that its SPDX SBOM attestation verifies too
(--require-sbom: there must be one). No signature, a signature by another key
or of another digest: exit 3.

REF: a local image name or ID, containers-storage:NAME, oci:DIR[:tag], or
docker://host/repo[:tag|@digest].`,
		Example: `  agentforge verify localhost/python-agent:0.6.0-rc0
  agentforge verify -o json oci:/tmp/layout:latest
  agentforge verify docker://registry.example/agents/python@sha256:… --key cosign.pub --require-sbom`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := oci.VerifyOptions{Log: a.log}
			if expect != "" {
				d, err := digest.Parse(expect)
				if err != nil {
					return errs.Inputf("--expect-digest %q: %w", expect, err)
				}
				opts.ExpectDigest = d
			}
			var store storage.Store
			if oci.IsLocal(args[0]) {
				s, err := a.openStore()
				if err != nil {
					return err
				}
				defer a.closeStore(s)
				store = s
			}
			ref, err := oci.ParseReference(args[0], store)
			if err != nil {
				return err
			}
			onRegistry := ref.DockerReference() != nil && strings.HasPrefix(args[0], "docker://")
			if onRegistry {
				hosts, err := a.hosts(nil, remote.RetryPolicy{})
				if err != nil {
					return err
				}
				opts.SystemContext = hosts.For(reference.Domain(ref.DockerReference()))
			}
			switch {
			case key == "" && requireSBOM:
				return errs.Inputf("--require-sbom goes with --key")
			case key != "" && !onRegistry:
				return errs.Inputf("--key checks signatures on a registry: REF must be docker://host/repo[:tag|@digest]")
			}
			if key != "" {
				// A bad key file is found before a long verification.
				if _, err := sign.LoadPublicKey(key); err != nil {
					return err
				}
			}
			rep, err := oci.Verify(cmd.Context(), ref, opts)
			if key == "" || err != nil || rep == nil {
				if rep != nil {
					rep.Ref = args[0]
					a.emit(rep, func(w io.Writer) { printVerify(w, rep, "") })
				}
				return err
			}
			rep.Ref = args[0]
			out := &verifyOutput{VerifyReport: rep}
			mode := sbomIfPresent
			if requireSBOM {
				mode = sbomRequired
			}
			signedRef, err := reference.WithDigest(reference.TrimNamed(ref.DockerReference()), digest.Digest(rep.Digest))
			if err == nil {
				out.signatureCheck, err = a.checkSignature(cmd.Context(), signedRef, key, mode)
			}
			if err != nil {
				out.OK = false
				out.SignatureError = err.Error()
			}
			a.emit(out, func(w io.Writer) {
				printVerify(w, rep, "")
				printSignatureCheck(w, out.signatureCheck)
			})
			return err
		},
	}
	cmd.Flags().StringVar(&expect, "expect-digest", "", "fail unless the manifest digest is this one (sha256:…)")
	cmd.Flags().StringVar(&key, "key", "", "also check the cosign signature (and SBOM attestation, if any) with this public key")
	cmd.Flags().BoolVar(&requireSBOM, "require-sbom", false, "with --key: fail unless a signed SPDX SBOM attestation is attached")
	return cmd
}

// verifyOutput is verify's report with the signature check (--key).
type verifyOutput struct {
	*oci.VerifyReport
	*signatureCheck
	SignatureError string `json:"signatureError,omitempty"`
}

func printVerify(w io.Writer, r *oci.VerifyReport, indent string) {
	status := "OK"
	if !r.OK {
		status = "FAILED"
	}
	if r.Index {
		fmt.Fprintf(w, "%s%s %s (index of %d images)\n%s  digest  %s\n", indent, status, r.Ref, len(r.Manifests), indent, r.Digest)
		for _, m := range r.Manifests {
			printVerify(w, m, indent+"  ")
		}
		return
	}
	fmt.Fprintf(w, "%s%s %s %s\n%s  digest  %s\n", indent, status, r.Ref, r.Platform, indent, r.Digest)
	if r.Config != nil {
		fmt.Fprintf(w, "%s  config  %s ok=%t\n", indent, r.Config.Digest, r.Config.OK)
	}
	for _, l := range r.Layers {
		mark := "ok"
		if !l.OK {
			mark = "MISMATCH: " + l.Problem
		}
		fmt.Fprintf(w, "%s  layer %d %s %d bytes diffID %s %s\n", indent, l.Index, l.Digest, l.Size, l.DiffID, mark)
	}
}
