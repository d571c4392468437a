package sign

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"github.com/agentforge/agentforge/images/errs"
	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
	"go.podman.io/image/v5/signature/sigstore"
)

// PEM block types of cosign's key files.
const (
	pemSigstorePrivateKey = "ENCRYPTED SIGSTORE PRIVATE KEY" // cosign ≥ 2.0 writes this
	pemCosignPrivateKey   = "ENCRYPTED COSIGN PRIVATE KEY"   // older cosign, and c/image
	pemPublicKey          = "PUBLIC KEY"
)

// Signer makes signatures. A cosign key file gives one (LoadPrivateKey);
// a keyless signer (Fulcio certificate, Rekor entry) would be another
// implementation, which this package does not provide (see the package
// documentation).
type Signer interface {
	// SignMessage signs msg, hashing it as the key's algorithm requires
	// (SHA-256 for ECDSA and RSA, as cosign does), and returns the raw
	// signature.
	SignMessage(ctx context.Context, msg []byte) ([]byte, error)
	// Verifier checks the signatures this Signer makes.
	Verifier() Verifier
}

// Verifier checks signatures made by a Signer.
type Verifier interface {
	// VerifyMessage returns nil when sig is a valid signature of msg.
	VerifyMessage(msg, sig []byte) error
}

// PrivateKey is a decrypted cosign private key. It is a Signer.
type PrivateKey struct {
	key crypto.Signer
	pub *PublicKey
}

// PublicKey is a cosign public key (ECDSA, Ed25519 or RSA). It is a
// Verifier.
type PublicKey struct {
	key crypto.PublicKey
}

// ParsePrivateKey decrypts a cosign private key (PEM "ENCRYPTED SIGSTORE
// PRIVATE KEY" or "ENCRYPTED COSIGN PRIVATE KEY": scrypt and secretbox
// around a PKCS#8 key) with passphrase, which may be empty. A malformed key
// or a wrong passphrase is errs.ErrInput; the passphrase appears in no
// error.
func ParsePrivateKey(data, passphrase []byte) (*PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errs.Inputf("private key: no PEM block")
	}
	if block.Type != pemSigstorePrivateKey && block.Type != pemCosignPrivateKey {
		return nil, errs.Inputf("private key: PEM type %q, want %q (cosign generate-key-pair)", block.Type, pemSigstorePrivateKey)
	}
	der, err := encrypted.Decrypt(block.Bytes, passphrase)
	if err != nil {
		// The library's message says only that decryption failed.
		return nil, errs.Inputf("private key: cannot decrypt (wrong passphrase?): %w", err)
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, errs.Inputf("private key: %w", err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, errs.Inputf("private key: unsupported key type %T", k)
	}
	pub, err := newPublicKey(s.Public())
	if err != nil {
		return nil, err
	}
	return &PrivateKey{key: s, pub: pub}, nil
}

// LoadPrivateKey reads and decrypts a cosign private key file.
func LoadPrivateKey(path string, passphrase []byte) (*PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, errs.Inputf("private key: %w", err)
	}
	k, err := ParsePrivateKey(data, passphrase)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// ParsePublicKey reads a PEM "PUBLIC KEY" (PKIX), as cosign.pub holds.
func ParsePublicKey(data []byte) (*PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errs.Inputf("public key: no PEM block")
	}
	if block.Type != pemPublicKey {
		return nil, errs.Inputf("public key: PEM type %q, want %q", block.Type, pemPublicKey)
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, errs.Inputf("public key: %w", err)
	}
	return newPublicKey(k)
}

// LoadPublicKey reads a cosign public key file.
func LoadPublicKey(path string) (*PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, errs.Inputf("public key: %w", err)
	}
	k, err := ParsePublicKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

func newPublicKey(k crypto.PublicKey) (*PublicKey, error) {
	switch k.(type) {
	case *ecdsa.PublicKey, ed25519.PublicKey, *rsa.PublicKey:
		return &PublicKey{key: k}, nil
	}
	return nil, errs.Inputf("public key: unsupported key type %T", k)
}

// GenerateKeyPair makes a new ECDSA P-256 key pair in cosign's format: the
// private key encrypted with passphrase (PEM "ENCRYPTED COSIGN PRIVATE
// KEY", which every cosign version reads) and the public key (PEM "PUBLIC
// KEY"). It is c/image's generator.
func GenerateKeyPair(passphrase []byte) (privatePEM, publicPEM []byte, err error) {
	if passphrase == nil {
		passphrase = []byte{}
	}
	kp, err := sigstore.GenerateKeyPair(passphrase)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key pair: %w", err)
	}
	return kp.PrivateKey, kp.PublicKey, nil
}

// SignMessage implements Signer.
func (k *PrivateKey) SignMessage(_ context.Context, msg []byte) ([]byte, error) {
	var (
		sig []byte
		err error
	)
	switch key := k.key.(type) {
	case ed25519.PrivateKey:
		sig, err = key.Sign(rand.Reader, msg, crypto.Hash(0))
	case *rsa.PrivateKey:
		h := sha256.Sum256(msg)
		sig, err = rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, h[:])
	default: // ECDSA: ASN.1 signature of the SHA-256 digest
		h := sha256.Sum256(msg)
		sig, err = k.key.Sign(rand.Reader, h[:], crypto.SHA256)
	}
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return sig, nil
}

// Verifier implements Signer.
func (k *PrivateKey) Verifier() Verifier { return k.pub }

// Public is the public half of k.
func (k *PrivateKey) Public() *PublicKey { return k.pub }

// errBadSignature is a signature that does not verify with the key.
var errBadSignature = errors.New("signature does not verify with the key")

// VerifyMessage implements Verifier.
func (k *PublicKey) VerifyMessage(msg, sig []byte) error {
	h := sha256.Sum256(msg)
	ok := false
	switch key := k.key.(type) {
	case *ecdsa.PublicKey:
		ok = ecdsa.VerifyASN1(key, h[:], sig)
	case ed25519.PublicKey:
		ok = ed25519.Verify(key, msg, sig)
	case *rsa.PublicKey:
		ok = rsa.VerifyPKCS1v15(key, crypto.SHA256, h[:], sig) == nil
	}
	if !ok {
		return errBadSignature
	}
	return nil
}

// MarshalPEM returns k as a PEM "PUBLIC KEY", as cosign.pub holds it.
func (k *PublicKey) MarshalPEM() ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(k.key)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPublicKey, Bytes: der}), nil
}
