package signtest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/agentforge/agentforge/publisher/sign"
)

// KeyPair writes a fresh cosign key pair (cosign.key, cosign.pub) under a
// temporary folder and returns the loaded private key and the two paths.
func KeyPair(t testing.TB, passphrase string) (*sign.PrivateKey, string, string) {
	t.Helper()
	priv, pub, err := sign.GenerateKeyPair([]byte(passphrase))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	privPath, pubPath := filepath.Join(dir, "cosign.key"), filepath.Join(dir, "cosign.pub")
	if err := os.WriteFile(privPath, priv, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pubPath, pub, 0o644); err != nil {
		t.Fatal(err)
	}
	k, err := sign.LoadPrivateKey(privPath, []byte(passphrase))
	if err != nil {
		t.Fatal(err)
	}
	return k, privPath, pubPath
}

// SBOM is a minimal SPDX 2.3 document, to attest in tests.
const SBOM = `{"spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT", "name": "test", "packages": []}`
