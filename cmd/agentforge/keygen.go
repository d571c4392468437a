package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

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
			rep := keygenReport{PrivateKey: prefix + ".key", PublicKey: prefix + ".pub"}
			if !force {
				for _, p := range []string{rep.PrivateKey, rep.PublicKey} {
					if _, err := os.Stat(p); err == nil {
						return errs.Inputf("%s exists: not overwritten (--force to replace it)", p)
					} else if !errors.Is(err, fs.ErrNotExist) {
						return errs.Inputf("%s: %w", p, err)
					}
				}
			}
			priv, pub, err := sign.GenerateKeyPair(pass)
			if err != nil {
				return err
			}
			if dir := filepath.Dir(prefix); dir != "." {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					return fmt.Errorf("keygen: %w", err)
				}
			}
			if err := writeFileMode(rep.PrivateKey, priv, 0o600, force); err != nil {
				return err
			}
			if err := writeFileMode(rep.PublicKey, pub, 0o644, force); err != nil {
				return err
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

// writeFileMode writes data to a new file in path's folder, created with
// mode perm (never readable by others, not even for a moment), and renames
// it over path (replace) or links it there only if path does not exist: a
// file or symbolic link at path is never written through.
func writeFileMode(path string, data []byte, perm os.FileMode, replace bool) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("keygen: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("keygen: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	if !replace {
		// A link fails if path exists: no check-then-write window.
		if err := os.Link(tmp.Name(), path); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return errs.Inputf("%s exists: not overwritten (--force to replace it)", path)
			}
			return fmt.Errorf("keygen: %w", err)
		}
		return nil
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	return nil
}
