package main

import (
	"fmt"
	"io"

	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/publisher/sign"
	"github.com/spf13/cobra"
	"go.podman.io/image/v5/docker/reference"
)

func (a *app) signCommand() *cobra.Command {
	var (
		f        signFlags
		sbomFile string
	)
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
			if !f.enabled() {
				return errs.Inputf("--sign-key is required")
			}
			var refs []reference.Canonical
			for _, s := range argv {
				ref, err := canonical(s)
				if err != nil {
					return err
				}
				refs = append(refs, ref)
			}
			s, err := f.signer()
			if err != nil {
				return err
			}
			sbom, err := readSBOM(sbomFile, s)
			if err != nil {
				return err
			}
			hosts, err := a.hosts(nil, remote.RetryPolicy{})
			if err != nil {
				return err
			}
			out, err := sign.SignAll(cmd.Context(), refs, s, sbom, sign.Options{Hosts: hosts, Log: a.log})
			// One object on stdout, as every command prints.
			a.emit(struct {
				Signatures []sign.Signed `json:"signatures"`
			}{out}, func(w io.Writer) {
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
			})
			return err
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&sbomFile, "sbom", "", "attach this SPDX JSON document as a signed attestation")
	return cmd
}
