package sign_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/publisher/sign"
	"github.com/agentforge/agentforge/publisher/sign/signtest"
)

const sums = "3d3fdbe91d4660c873e14b092c213fe81c1da6362daa236eb25d0171eb108744  agentforge-linux-amd64\n" +
	"732c9135564fc71337e0e05fb4da4d11e6c28c1834bce3e405e575afef2a52f5  agentforge-linux-arm64\n"

// A blob signature (make dist's SHA256SUMS.sig) verifies with the key that
// made it, and nothing else does: another file, another key, a flipped
// signature byte, text that is not base64.
func TestVerifyBlob(t *testing.T) {
	key, _, _ := signtest.KeyPair(t, "")
	other, _, _ := signtest.KeyPair(t, "")
	sig, err := sign.SignBlob(context.Background(), key, []byte(sums))
	if err != nil {
		t.Fatal(err)
	}
	flipped := []byte(string(sig))
	if flipped[10] == 'A' {
		flipped[10] = 'B'
	} else {
		flipped[10] = 'A'
	}
	for _, tc := range []struct {
		name string
		v    sign.Verifier
		data string
		sig  []byte
		ok   bool
	}{
		{"signed file", key.Verifier(), sums, sig, true},
		{"trailing newline in the signature file", key.Verifier(), sums, append(append([]byte{}, sig...), '\n'), true},
		{"changed file", key.Verifier(), strings.Replace(sums, "3d3f", "3d3e", 1), sig, false},
		{"other key", other.Verifier(), sums, sig, false},
		{"flipped signature", key.Verifier(), sums, flipped, false},
		{"not base64", key.Verifier(), sums, []byte("not a signature!"), false},
		{"empty", key.Verifier(), sums, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := sign.VerifyBlob(tc.v, []byte(tc.data), tc.sig)
			if tc.ok != (err == nil) {
				t.Fatalf("VerifyBlob: %v, want ok=%t", err, tc.ok)
			}
			if err != nil && !errors.Is(err, errs.ErrIntegrity) {
				t.Errorf("%v is not an integrity error (exit 3)", err)
			}
		})
	}
}

// The real cosign v2.6.2 accepts what SignBlob writes (verify-blob --key,
// no transparency log) and refuses it for a changed file; agentforge
// accepts what cosign sign-blob writes.
func TestSignBlob_Cosign(t *testing.T) {
	signtest.Cosign(t) // fails, not skips, without bin/cosign
	key, privPath, pubPath := signtest.KeyPair(t, "pw")
	dir := t.TempDir()
	file, sigFile := filepath.Join(dir, "SHA256SUMS"), filepath.Join(dir, "SHA256SUMS.sig")
	if err := os.WriteFile(file, []byte(sums), 0o644); err != nil {
		t.Fatal(err)
	}
	sig, err := sign.SignBlob(context.Background(), key, []byte(sums))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sigFile, sig, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out := signtest.Run(t, signtest.Env{}, "verify-blob", "--key", pubPath, "--signature", sigFile, "--insecure-ignore-tlog=true", file); code != 0 {
		t.Fatalf("cosign verify-blob refused agentforge's signature: exit %d\n%s", code, out)
	}
	changed := filepath.Join(dir, "SHA256SUMS.changed")
	os.WriteFile(changed, []byte(strings.Replace(sums, "3d3f", "3d3e", 1)), 0o644)
	if code, out := signtest.Run(t, signtest.Env{}, "verify-blob", "--key", pubPath, "--signature", sigFile, "--insecure-ignore-tlog=true", changed); code == 0 {
		t.Fatalf("cosign verify-blob accepted the signature for a changed file\n%s", out)
	}
	// And the other way round: cosign's own sign-blob output.
	cosignSig := filepath.Join(dir, "cosign.sig")
	if code, out := signtest.Run(t, signtest.Env{Passphrase: "pw"}, "sign-blob", "--key", privPath, "--tlog-upload=false", "--output-signature", cosignSig, "--yes", file); code != 0 {
		t.Fatalf("cosign sign-blob: exit %d\n%s", code, out)
	}
	data, err := os.ReadFile(cosignSig)
	if err != nil {
		t.Fatal(err)
	}
	if err := sign.VerifyBlob(key.Verifier(), []byte(sums), data); err != nil {
		t.Fatalf("agentforge refuses cosign sign-blob's signature: %v", err)
	}
}
