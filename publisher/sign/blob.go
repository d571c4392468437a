package sign

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"

	"github.com/agentforge/agentforge/images/errs"
)

// SignBlob signs data (a file such as a release's SHA256SUMS) as `cosign
// sign-blob --key` does and returns what its --output-signature writes:
// the base64 of the key's signature of data (ECDSA and RSA over its
// SHA-256). `cosign verify-blob --key PUB --signature FILE
// --insecure-ignore-tlog=true` accepts it; no transparency-log entry is
// made.
func SignBlob(ctx context.Context, s Signer, data []byte) ([]byte, error) {
	sig, err := s.SignMessage(ctx, data)
	if err != nil {
		return nil, fmt.Errorf("sign blob: %w", err)
	}
	return []byte(base64.StdEncoding.EncodeToString(sig)), nil
}

// VerifyBlob checks a signature over data as SignBlob (or cosign
// sign-blob) writes it: base64, surrounding white space allowed. A
// signature that is not base64, or does not verify with v, is an
// *errs.IntegrityError.
func VerifyBlob(v Verifier, data, b64sig []byte) error {
	sig, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(b64sig)))
	if err != nil || len(sig) == 0 {
		return &errs.IntegrityError{What: "blob signature", Check: "not a base64 signature (as cosign sign-blob --output-signature writes)"}
	}
	if err := v.VerifyMessage(data, sig); err != nil {
		return &errs.IntegrityError{What: "blob signature", Check: err.Error()}
	}
	return nil
}
