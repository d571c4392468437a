package sign

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/images/errs"
	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
)

// encryptKey writes k as cosign does, with PEM type typ.
func encryptKey(t *testing.T, k crypto.PrivateKey, pass, typ string) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := encrypted.Encrypt(der, []byte(pass))
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: enc})
}

func TestKeys_SignVerifyEveryKeyType(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rs, _ := rsa.GenerateKey(rand.Reader, 2048)
	for _, tc := range []struct {
		name string
		key  crypto.PrivateKey
		typ  string
	}{
		{"ecdsa sigstore", ec, pemSigstorePrivateKey},
		{"ecdsa cosign", ec, pemCosignPrivateKey},
		{"ed25519", ed, pemSigstorePrivateKey},
		{"rsa", rs, pemSigstorePrivateKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := ParsePrivateKey(encryptKey(t, tc.key, "pw", tc.typ), []byte("pw"))
			if err != nil {
				t.Fatal(err)
			}
			pubPEM, err := k.Public().MarshalPEM()
			if err != nil {
				t.Fatal(err)
			}
			pub, err := ParsePublicKey(pubPEM)
			if err != nil {
				t.Fatal(err)
			}
			msg := []byte("payload")
			sig, err := k.SignMessage(context.Background(), msg)
			if err != nil {
				t.Fatal(err)
			}
			if err := pub.VerifyMessage(msg, sig); err != nil {
				t.Errorf("own signature: %v", err)
			}
			if err := pub.VerifyMessage([]byte("payload!"), sig); err == nil {
				t.Error("a signature verified for another message")
			}
			sig[len(sig)/2] ^= 1
			if err := pub.VerifyMessage(msg, sig); err == nil {
				t.Error("a damaged signature verified")
			}
		})
	}
}

func TestKeys_Refusals(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	good := encryptKey(t, ec, "right passphrase", pemSigstorePrivateKey)
	der, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	for _, tc := range []struct {
		name string
		run  func() error
		want string
	}{
		{"wrong passphrase", func() error { _, err := ParsePrivateKey(good, []byte("wrong passphrase")); return err }, "wrong passphrase?"},
		{"no PEM", func() error { _, err := ParsePrivateKey([]byte("hello"), nil); return err }, "no PEM block"},
		{"unencrypted key", func() error {
			d, _ := x509.MarshalPKCS8PrivateKey(ec)
			_, err := ParsePrivateKey(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: d}), nil)
			return err
		}, `PEM type "PRIVATE KEY"`},
		{"public key given as private", func() error {
			_, err := ParsePrivateKey(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil)
			return err
		}, `PEM type "PUBLIC KEY"`},
		{"private key given as public", func() error { _, err := ParsePublicKey(good); return err }, "want \"PUBLIC KEY\""},
		{"missing file", func() error { _, err := LoadPublicKey("/nonexistent/cosign.pub"); return err }, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			if !errors.Is(err, errs.ErrInput) {
				t.Fatalf("%v, want bad input (exit 2)", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%q does not say %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "right passphrase") || strings.Contains(err.Error(), "wrong passphrase\"") {
				t.Error("a passphrase reached the error")
			}
		})
	}
}

func TestGenerateKeyPair_EmptyPassphrase(t *testing.T) {
	priv, pub, err := GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParsePrivateKey(priv, []byte{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := k.SignMessage(context.Background(), []byte("m"))
	if err := p.VerifyMessage([]byte("m"), sig); err != nil {
		t.Error(err)
	}
	if !strings.Contains(string(priv), "ENCRYPTED COSIGN PRIVATE KEY") {
		t.Errorf("private key PEM type: %.40s", priv)
	}
}
