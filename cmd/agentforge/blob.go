package main

import (
	"fmt"
	"io"
	"os"

	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/publisher/sign"
	"github.com/spf13/cobra"
)

// blobReport is the JSON output of sign-blob and verify-blob.
type blobReport struct {
	File      string `json:"file"`
	Signature string `json:"signature"`
	Verified  bool   `json:"verified"`
}

func (a *app) signBlobCommand() *cobra.Command {
	var (
		f      signFlags
		output string
	)
	cmd := &cobra.Command{
		Use:   "sign-blob FILE --sign-key KEY",
		Short: "Sign a file (a release's SHA256SUMS) in cosign sign-blob's format",
		Long: `Sign-blob signs FILE with a cosign private key as "cosign sign-blob --key"
does: the base64 of the key's signature over the file, written to
--output-signature (default: printed). "cosign verify-blob --key PUB
--signature SIG --insecure-ignore-tlog=true FILE" and "agentforge verify-blob"
accept it. No transparency-log entry is made. make dist signs its SHA256SUMS
this way. The passphrase comes from --sign-passphrase-file or $COSIGN_PASSWORD.`,
		Example: `  COSIGN_PASSWORD=… agentforge sign-blob dist/SHA256SUMS --sign-key cosign.key --output-signature dist/SHA256SUMS.sig`,
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			if f.key == "" {
				return errs.Inputf("--sign-key is required")
			}
			data, err := os.ReadFile(argv[0])
			if err != nil {
				return errs.Inputf("sign-blob: %w", err)
			}
			s, err := f.signer()
			if err != nil {
				return err
			}
			sig, err := sign.SignBlob(cmd.Context(), s, data)
			if err != nil {
				return err
			}
			if output != "" {
				if err := os.WriteFile(output, sig, 0o644); err != nil {
					return fmt.Errorf("sign-blob: %w", err)
				}
			}
			rep := blobReport{File: argv[0], Signature: string(sig)}
			a.emit(rep, func(w io.Writer) {
				if output == "" {
					fmt.Fprintln(w, rep.Signature)
				} else {
					fmt.Fprintf(w, "signed %s: %s\n", argv[0], output)
				}
			})
			return nil
		},
	}
	f.AddFlags(cmd)
	cmd.Flags().StringVar(&output, "output-signature", "", "write the base64 signature to this file")
	return cmd
}

func (a *app) verifyBlobCommand() *cobra.Command {
	var key, sigFile string
	cmd := &cobra.Command{
		Use:   "verify-blob FILE --key PUB --signature SIG",
		Short: "Check a file's cosign sign-blob signature with a public key",
		Long: `Verify-blob checks that SIG (base64, as "cosign sign-blob" and "agentforge
sign-blob" write it) is a signature over FILE by the cosign public key PUB.
A signature that does not verify exits 3. To check a release of agentforge:
verify SHA256SUMS with SHA256SUMS.sig and the project's public key, then the
binaries with "sha256sum -c SHA256SUMS".`,
		Example: `  agentforge verify-blob SHA256SUMS --key agentforge.pub --signature SHA256SUMS.sig && sha256sum -c SHA256SUMS`,
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			if key == "" || sigFile == "" {
				return errs.Inputf("--key and --signature are required")
			}
			pub, err := sign.LoadPublicKey(key)
			if err != nil {
				return err
			}
			data, err := os.ReadFile(argv[0])
			if err != nil {
				return errs.Inputf("verify-blob: %w", err)
			}
			sig, err := os.ReadFile(sigFile)
			if err != nil {
				return errs.Inputf("verify-blob: %w", err)
			}
			if err := sign.VerifyBlob(pub, data, sig); err != nil {
				return fmt.Errorf("%s (signature %s, key %s): %w", argv[0], sigFile, key, err)
			}
			rep := blobReport{File: argv[0], Signature: sigFile, Verified: true}
			a.emit(rep, func(w io.Writer) { fmt.Fprintf(w, "verified %s: signed by %s\n", argv[0], key) })
			return nil
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "cosign public key (PEM)")
	cmd.Flags().StringVar(&sigFile, "signature", "", "the base64 signature file")
	return cmd
}
