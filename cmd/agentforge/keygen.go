package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/publisher/sign"
	"github.com/spf13/cobra"
)

// keygenReport is keygen's JSON output.
type keygenReport struct {
	PrivateKey string `json:"privateKey"`
	PublicKey  string `json:"publicKey"`
}

func (a *app) keygenCommand() *cobra.Command {
	var (
		prefix, passphraseFile string
		force                  bool
	)
	cmd := &cobra.Command{
		Use:   "keygen",
		Short: "Write a cosign key pair (PREFIX.key, PREFIX.pub) for --sign-key and --key",
		Long: `Keygen writes an ECDSA P-256 key pair in cosign's format, as
"cosign generate-key-pair" does: PREFIX.key (the private key, encrypted with the
passphrase, mode 0600) and PREFIX.pub. The passphrase comes from
--passphrase-file or $COSIGN_PASSWORD (set and empty: no passphrase), never
from a flag value. Existing files are not overwritten unless --force.`,
		Example: `  COSIGN_PASSWORD=… agentforge keygen            # cosign.key, cosign.pub
  agentforge keygen --prefix keys/agents --passphrase-file /run/secrets/cosign-pass`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			pass, err := readPassphrase(passphraseFile, "--passphrase-file")
			if err != nil {
				return err
			}
			var rep keygenReport
			rep.PrivateKey, rep.PublicKey, err = sign.WriteKeyPair(prefix, pass, force)
			if err != nil {
				if errors.Is(err, errs.ErrInput) {
					return fmt.Errorf("keygen: %w (--force to replace it)", err)
				}
				return fmt.Errorf("keygen: %w", err)
			}
			a.emit(rep, func(w io.Writer) {
				fmt.Fprintf(w, "private key %s\npublic key  %s\n", rep.PrivateKey, rep.PublicKey)
			})
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&prefix, "prefix", "cosign", "write PREFIX.key and PREFIX.pub")
	fl.StringVar(&passphraseFile, "passphrase-file", "", "file holding the passphrase (default: $COSIGN_PASSWORD)")
	fl.BoolVar(&force, "force", false, "overwrite existing key files")
	return cmd
}
