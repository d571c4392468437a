package main

import (
	"context"
	"fmt"
	"io"

	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/publisher/sign"
	"github.com/spf13/cobra"
	"go.podman.io/image/v5/docker/reference"
)

func (a *app) signCommand() *cobra.Command {
	var f signFlags
	cmd := &cobra.Command{
		Use:   "sign REF@DIGEST... --sign-key KEY",
		Short: "Sign images on registries by digest (cosign format), optionally attaching an SBOM",
		Long: `Sign signs each host/repo@sha256:… where it is, in the format "cosign verify
--key" accepts: a signature layer in the repository's sha256-<hex>.sig manifest.
The manifest the registry serves must hash to the digest named (exit 3
otherwise); exactly that digest is signed (for a multi-platform image, the
index). Signing again with the same key adds nothing. --sbom attaches an SPDX
JSON document as a signed attestation (cosign verify-attestation --type
spdxjson). No transparency-log entry is made: cosign v2 verifies with
--insecure-ignore-tlog=true.

The passphrase comes from --sign-passphrase-file or $COSIGN_PASSWORD.`,
		Example: `  COSIGN_PASSWORD=… agentforge sign registry.example/agents/python@sha256:… --sign-key cosign.key
  agentforge sign …@sha256:… --sign-key cosign.key --sbom python-agent.spdx.json`,
		Args: args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			if f.key == "" {
				return errs.Inputf("--sign-key is required")
			}
			var refs []reference.Canonical
			for _, s := range argv {
				ref, err := sign.ParseRef(s)
				if err != nil {
					return err
				}
				refs = append(refs, ref)
			}
			signing, err := f.signing()
			if err != nil {
				return err
			}
			hosts, err := a.hosts(nil, remote.RetryPolicy{})
			if err != nil {
				return err
			}
			out, err := sign.SignAll(cmd.Context(), refs, signing.Signer, signing.SBOM, sign.Options{Hosts: hosts, Log: a.log})
			// One object on stdout, as every command prints.
			a.emit(struct {
				Signatures []sign.Signed `json:"signatures"`
			}{out}, func(w io.Writer) { printSigned(w, refs, out) })
			return err
		},
	}
	f.AddFlags(cmd)
	f.AddSBOMFlag(cmd)
	return cmd
}

// checkSignature verifies the cosign signature of ref (host/repo@digest)
// with the public key file pub, and its SBOM attestation as policy says.
// A failure is an integrity error (exit 3).
func (a *app) checkSignature(ctx context.Context, ref reference.Canonical, pub string, policy sign.SBOMPolicy) (*sign.Check, error) {
	key, err := sign.LoadPublicKey(pub)
	if err != nil {
		return nil, err
	}
	hosts, err := a.hosts(nil, remote.RetryPolicy{})
	if err != nil {
		return nil, err
	}
	return sign.CheckImage(ctx, ref, key, policy, sign.Options{Hosts: hosts, Log: a.log})
}

// canonical parses host/repo@digest (docker:// optional).
func canonical(s string) (reference.Canonical, error) { return sign.ParseRef(s) }

func printSigned(w io.Writer, refs []reference.Canonical, out []sign.Signed) {
	for i, o := range out {
		switch {
		case o.Error != "":
			fmt.Fprintf(w, "FAILED %s: %s\n", refs[i], o.Error)
			continue
		case o.Signature != nil && o.Signature.Added:
			fmt.Fprintf(w, "signed %s\n  %s (%d signatures)\n", refs[i], o.Signature.Attachment, o.Signature.Layers)
		case o.Signature != nil:
			fmt.Fprintf(w, "already signed with this key %s\n  %s\n", refs[i], o.Signature.Attachment)
		}
		if o.SBOM != nil {
			fmt.Fprintf(w, "  %s (%d attestations, added: %t)\n", o.SBOM.Attachment, o.SBOM.Layers, o.SBOM.Added)
		}
	}
}
