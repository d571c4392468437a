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
)

// verifyFlags are verify's flags.
type verifyFlags struct {
	expect, key string
	requireSBOM bool
}

func (f *verifyFlags) AddFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.expect, "expect-digest", "", "fail unless the manifest digest is this one (sha256:…)")
	cmd.Flags().StringVar(&f.key, "key", "", "also check the cosign signature (and SBOM attestation, if any) with this public key")
	cmd.Flags().BoolVar(&f.requireSBOM, "require-sbom", false, "with --key: fail unless a signed SPDX SBOM attestation is attached")
}

// check validates the flags for ref, and loads the key (nil without
// --key), before anything is read.
func (f *verifyFlags) check(arg string) (oci.VerifyOptions, *sign.PublicKey, sign.SBOMPolicy, error) {
	var opts oci.VerifyOptions
	policy := sign.SBOMIfPresent
	if f.requireSBOM {
		policy = sign.SBOMRequired
	}
	if f.expect != "" {
		d, err := digest.Parse(f.expect)
		if err != nil {
			return opts, nil, policy, errs.Inputf("--expect-digest %q: %w", f.expect, err)
		}
		opts.ExpectDigest = d
	}
	switch {
	case f.key == "" && f.requireSBOM:
		return opts, nil, policy, errs.Inputf("--require-sbom goes with --key")
	case f.key == "":
		return opts, nil, policy, nil
	case !strings.HasPrefix(arg, "docker://"):
		return opts, nil, policy, errs.Inputf("--key checks signatures on a registry: REF must be docker://host/repo[:tag|@digest]")
	}
	key, err := sign.LoadPublicKey(f.key)
	return opts, key, policy, err
}

func (a *app) verifyCommand() *cobra.Command {
	var f verifyFlags
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
		RunE: func(cmd *cobra.Command, argv []string) error {
			opts, key, policy, err := f.check(argv[0])
			if err != nil {
				return err
			}
			opts.Log, opts.Progress = a.log, a.progress
			ref, err := a.parseRef(argv[0])
			if err != nil {
				return err
			}
			hosts, err := a.hosts(nil, remote.RetryPolicy{})
			if err != nil {
				return err
			}
			if named := ref.DockerReference(); named != nil && strings.HasPrefix(argv[0], "docker://") {
				opts.SystemContext = hosts.For(reference.Domain(named))
			}
			rep, err := oci.Verify(cmd.Context(), ref, opts)
			if rep == nil {
				return err
			}
			rep.Ref = argv[0]
			out := &verifyOutput{VerifyReport: rep}
			if key != nil && err == nil {
				signed, _ := reference.WithDigest(reference.TrimNamed(ref.DockerReference()), digest.Digest(rep.Digest))
				out.Check, err = sign.CheckImage(cmd.Context(), signed, key, policy, sign.Options{Hosts: hosts, Log: a.log})
				if err != nil {
					out.OK, out.SignatureError = false, err.Error()
				}
			}
			a.emit(out, func(w io.Writer) { printVerify(w, rep, ""); printCheck(w, out.Check) })
			return err
		},
	}
	f.AddFlags(cmd)
	return cmd
}

// verifyOutput is verify's report with the signature check (--key).
type verifyOutput struct {
	*oci.VerifyReport
	*sign.Check
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

func printCheck(w io.Writer, c *sign.Check) {
	if c == nil || c.Signature == nil {
		return
	}
	fmt.Fprintf(w, "  signature %s: %d of %d verify with the key%s\n", c.Signature.Attachment, c.Signature.Verified, c.Signature.Total, notRead(c.Signature.NotRead))
	switch {
	case c.SBOM != nil:
		fmt.Fprintf(w, "  sbom      %s: %d of %d SPDX attestations verify with the key%s\n", c.SBOM.Attachment, c.SBOM.Verified, c.SBOM.Total, notRead(c.SBOM.NotRead))
	case c.SBOMAbsent && c.SBOMNotRead > 0:
		fmt.Fprintf(w, "  sbom      none by this key among the newest read%s\n", notRead(c.SBOMNotRead))
	case c.SBOMAbsent && c.SBOMByOtherKeys > 0:
		fmt.Fprintf(w, "  sbom      none by this key (%d by other keys, not checked)\n", c.SBOMByOtherKeys)
	case c.SBOMAbsent:
		fmt.Fprintf(w, "  sbom      none attached\n")
	}
}

// notRead says how many older signatures or attestations a check left
// unread (it reads a bounded number, newest first).
func notRead(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d older ones not read: past the bound)", n)
}
