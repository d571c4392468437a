package sign

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"

	"github.com/opencontainers/go-digest"
)

// hashVerifier accepts a signature that is the SHA-256 of the message: a
// stand-in key the fuzzer can satisfy, so that it reaches the statement
// behind the signature check.
type hashVerifier struct{}

func (hashVerifier) VerifyMessage(msg, sig []byte) error {
	sum := sha256.Sum256(msg)
	if !bytes.Equal(sum[:], sig) {
		return errBadSignature
	}
	return nil
}

// envelopeFor is a DSSE envelope of body that hashVerifier accepts.
func envelopeFor(payloadType string, body []byte) []byte {
	sum := sha256.Sum256(pae(payloadType, body))
	raw, _ := json.Marshal(envelope{PayloadType: payloadType, Payload: base64.StdEncoding.EncodeToString(body),
		Signatures: []envelopeSign{{Sig: base64.StdEncoding.EncodeToString(sum[:])}}})
	return raw
}

// A DSSE envelope as a registry serves it (an .att layer): openEnvelope
// returns an error or a statement that names the digest asked about and
// whose envelope verified, and never panics, whatever the bytes.
func FuzzDSSEEnvelope(f *testing.F) {
	want := digest.FromString("the image")
	good, _ := json.Marshal(statement{Type: inTotoStatementType, PredicateType: PredicateSPDX,
		Subject: []subject{{Name: "r", Digest: map[string]string{"sha256": want.Encoded()}}}, Predicate: json.RawMessage(`{"spdxVersion":"SPDX-2.3"}`)})
	f.Add(envelopeFor(inTotoPayloadType, good))
	f.Add(envelopeFor(inTotoPayloadType, []byte(`{"subject":[{"digest":null}]}`)))
	f.Add(envelopeFor(inTotoPayloadType, []byte(`{"subject":[{"digest":{"sha256":""}}],"predicate":`)))
	f.Add(envelopeFor(inTotoPayloadType, []byte(`[]`)))
	f.Add(envelopeFor("text/plain", good))
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"!!!","signatures":[{"sig":"%%%"}]}`))
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"","signatures":null}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := openEnvelope(data, hashVerifier{}, want)
		if err != nil {
			if st != nil {
				t.Fatal("a statement with an error")
			}
			return
		}
		found := false
		for _, s := range st.Subject {
			found = found || s.Digest["sha256"] == want.Encoded()
		}
		if !found {
			t.Fatalf("accepted a statement whose subjects %+v do not name %s", st.Subject, want)
		}
		if _, err := openEnvelope(data, rejectAll{}, want); !errors.Is(err, errBadSignature) {
			t.Fatalf("accepted without a signature that verifies: %v", err)
		}
	})
}

type rejectAll struct{}

func (rejectAll) VerifyMessage(msg, sig []byte) error { return errBadSignature }
