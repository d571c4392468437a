package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/publisher"
	"github.com/agentforge/agentforge/publisher/sign"
	"github.com/spf13/cobra"
	"go.podman.io/image/v5/docker/reference"
)

// signFlags are the signing flags of publish, index, release and sign:
// --sign-key and --sign-passphrase-file. The passphrase otherwise comes
// from $COSIGN_PASSWORD, as for cosign; never from a flag value.
type signFlags struct {
	key            string
	passphraseFile string
}

// register adds the flags to cmd.
func (f *signFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.key, "sign-key", "", "sign the pushed digest with this cosign private key (cosign generate-key-pair, agentforge keygen)")
	fl.StringVar(&f.passphraseFile, "sign-passphrase-file", "", "file holding the key's passphrase (default: $COSIGN_PASSWORD)")
}

// enabled reports whether --sign-key was given.
func (f *signFlags) enabled() bool { return f.key != "" }

// signer loads the key; nil when --sign-key was not given. Call it before
// pushing anything, so that a wrong passphrase changes nothing.
func (f *signFlags) signer() (sign.Signer, error) {
	if !f.enabled() {
		if f.passphraseFile != "" {
			return nil, errs.Inputf("--sign-passphrase-file goes with --sign-key")
		}
		return nil, nil
	}
	pass, err := readPassphrase(f.passphraseFile, "--sign-passphrase-file")
	if err != nil {
		return nil, err
	}
	k, err := sign.LoadPrivateKey(f.key, pass)
	if err != nil {
		return nil, fmt.Errorf("--sign-key: %w", err)
	}
	return k, nil
}

// readPassphrase reads a passphrase from file (one trailing newline
// dropped) or, without one, from $COSIGN_PASSWORD (which may be set and
// empty, for a key without passphrase).
func readPassphrase(file, flag string) ([]byte, error) {
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, errs.Inputf("%s: %w", flag, err)
		}
		s := strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
		return []byte(s), nil
	}
	if p, ok := os.LookupEnv("COSIGN_PASSWORD"); ok {
		return []byte(p), nil
	}
	return nil, errs.Inputf("no passphrase for the key: set $COSIGN_PASSWORD (empty for none) or %s", flag)
}

// signing is what publish and index sign with s (nil without --sign-key):
// the pushed digest, with sbom (when not nil) attached as a signed SPDX
// attestation (cosign verify-attestation --type spdxjson), on every
// destination after verification and before the tags; see
// publisher.Signing. Load the key (sf.signer) before pushing, so that a
// wrong passphrase changes nothing.
func signing(s sign.Signer, sbom []byte) *publisher.Signing {
	if s == nil {
		return nil
	}
	return &publisher.Signing{Signer: s, SBOM: sbom}
}

// canonical parses host/repo@digest (docker:// optional).
func canonical(s string) (reference.Canonical, error) { return sign.ParseRef(s) }

// signatureCheck is what checkSignature found on one image.
type signatureCheck struct {
	Signature *sign.Verification `json:"signature"`
	SBOM      *sign.Verification `json:"sbom,omitempty"`
	// SBOMAbsent is true when no SBOM attestation was there (and none was
	// required).
	SBOMAbsent bool `json:"sbomAbsent,omitempty"`
}

// sbomMode says what checkSignature does about the SBOM attestation.
type sbomMode int

const (
	sbomIfPresent sbomMode = iota // verify it when there is one
	sbomRequired                  // there must be one, and it must verify
	sbomIgnored
)

// checkSignature verifies the cosign signature of ref (host/repo@digest)
// with the public key file pub, and its SBOM attestation as mode says. A
// failure is an integrity error (exit 3).
func (a *app) checkSignature(ctx context.Context, ref reference.Canonical, pub string, mode sbomMode) (*signatureCheck, error) {
	key, err := sign.LoadPublicKey(pub)
	if err != nil {
		return nil, err
	}
	hosts, err := a.hosts(nil, remote.RetryPolicy{})
	if err != nil {
		return nil, err
	}
	opts := sign.Options{Hosts: hosts, Log: a.log}
	res := &signatureCheck{}
	if res.Signature, err = sign.Verify(ctx, ref, key, opts); err != nil {
		return res, err
	}
	if mode == sbomIgnored {
		return res, nil
	}
	res.SBOM, err = sign.VerifyAttestation(ctx, ref, key, sign.PredicateSPDX, opts)
	if err != nil && mode == sbomIfPresent && sign.IsMissing(err) {
		res.SBOM, res.SBOMAbsent = nil, true
		return res, nil
	}
	return res, err
}

func printSignatureCheck(w io.Writer, c *signatureCheck) {
	if c == nil || c.Signature == nil {
		return
	}
	fmt.Fprintf(w, "  signature %s: %d of %d verify with the key\n", c.Signature.Attachment, c.Signature.Verified, c.Signature.Total)
	switch {
	case c.SBOM != nil:
		fmt.Fprintf(w, "  sbom      %s: %d of %d SPDX attestations verify with the key\n", c.SBOM.Attachment, c.SBOM.Verified, c.SBOM.Total)
	case c.SBOMAbsent:
		fmt.Fprintf(w, "  sbom      none attached\n")
	}
}
