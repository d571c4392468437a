package sign

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/publisher/attachments"
	"github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker/reference"
)

// Predicate types (in-toto statement predicateType URIs).
const (
	PredicateSPDX      = "https://spdx.dev/Document"
	PredicateCycloneDX = "https://cyclonedx.org/bom"
	PredicateCustom    = "https://cosign.sigstore.dev/attestation/v1"
)

// predicateNames are cosign's --type short names for predicate types.
var predicateNames = map[string]string{
	"spdx":      PredicateSPDX,
	"spdxjson":  PredicateSPDX,
	"cyclonedx": PredicateCycloneDX,
	"custom":    PredicateCustom,
}

// PredicateType turns a cosign --type name (spdxjson, spdx, cyclonedx,
// custom) or a URI into the predicate type URI.
func PredicateType(s string) (string, error) {
	if u, ok := predicateNames[s]; ok {
		return u, nil
	}
	if strings.Contains(s, "://") {
		return s, nil
	}
	return "", errs.Inputf("predicate type %q: want spdxjson, cyclonedx, custom or a URI", s)
}

const (
	inTotoStatementType = "https://in-toto.io/Statement/v0.1"
	inTotoPayloadType   = "application/vnd.in-toto+json"
)

// statement is an in-toto statement (v0.1, as cosign v2 writes it).
type statement struct {
	Type          string          `json:"_type"`
	PredicateType string          `json:"predicateType"`
	Subject       []subject       `json:"subject"`
	Predicate     json.RawMessage `json:"predicate"`
}

type subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// envelope is a DSSE envelope.
type envelope struct {
	PayloadType string         `json:"payloadType"`
	Payload     string         `json:"payload"`
	Signatures  []envelopeSign `json:"signatures"`
}

type envelopeSign struct {
	KeyID string `json:"keyid"`
	Sig   string `json:"sig"`
}

// pae is DSSE's pre-authentication encoding, what is signed.
func pae(payloadType string, payload []byte) []byte {
	return fmt.Appendf(nil, "DSSEv1 %d %s %d %s", len(payloadType), payloadType, len(payload), payload)
}

// Attest attaches a signed in-toto attestation of repo@digest to it on its
// registry, as `cosign attest --key` does: a DSSE envelope (signed with s)
// of a statement whose subject is the digest and whose predicate is
// predicate (JSON, e.g. an SPDX 2.3 document), added as a layer of the
// repository's sha256-<hex>.att manifest. predicateType is a URI or a
// cosign --type name ("spdxjson"). The image manifest is read first and
// must hash to the digest.
//
// Attesting again is harmless: when the .att manifest already holds an
// attestation of this digest, predicate type and predicate that verifies
// with s's key, nothing is written. A different predicate (a regenerated
// SBOM) is added next to the old one, as cosign does; verifiers accept
// either.
func Attest(ctx context.Context, ref reference.Canonical, s Signer, predicateType string, predicate []byte, opts Options) (*Result, error) {
	if err := opts.Check(); err != nil {
		return nil, err
	}
	ptype, err := PredicateType(predicateType)
	if err != nil {
		return nil, err
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, predicate); err != nil {
		return nil, errs.Inputf("attest %s: predicate is not JSON: %w", ref, err)
	}
	d := ref.Digest()
	return addLayer(ctx, ref, opts, layerKind{
		suffix: attachments.SuffixAttestation, verb: "attest", mediaType: attachments.MediaTypeDSSE,
		max: maxAttestationLayers, already: "already carries this attestation", done: "attested",
		fields: map[string]any{"predicateType": ptype},
		ours: func(a *attachments.Attachment, l imgspecv1.Descriptor) error {
			st, err := checkAttestationLayer(ctx, a, l, s.Verifier(), d)
			if err == nil && (st.PredicateType != ptype || !sameJSON(st.Predicate, compact.Bytes())) {
				err = errors.New("another attestation")
			}
			return err
		},
		layer: func() ([]byte, map[string]string, error) {
			env, err := signedStatement(ctx, ref, s, ptype, compact.Bytes())
			return env, map[string]string{attachments.AnnotationSignature: "", attachments.AnnotationPredicate: ptype}, err
		},
	})
}

// signedStatement is the DSSE envelope, signed with s, of an in-toto
// statement of ptype about ref's digest.
func signedStatement(ctx context.Context, ref reference.Canonical, s Signer, ptype string, predicate []byte) ([]byte, error) {
	body, err := json.Marshal(statement{
		Type:          inTotoStatementType,
		PredicateType: ptype,
		Subject:       []subject{{Name: reference.TrimNamed(ref).String(), Digest: map[string]string{"sha256": ref.Digest().Encoded()}}},
		Predicate:     predicate,
	})
	if err != nil {
		return nil, err
	}
	sig, err := s.SignMessage(ctx, pae(inTotoPayloadType, body))
	if err != nil {
		return nil, err
	}
	return json.Marshal(envelope{
		PayloadType: inTotoPayloadType,
		Payload:     base64.StdEncoding.EncodeToString(body),
		Signatures:  []envelopeSign{{Sig: base64.StdEncoding.EncodeToString(sig)}},
	})
}

// VerifyAttestation checks that repo@digest carries, in its
// sha256-<hex>.att attachment, at least one attestation of predicateType
// (a URI or cosign --type name) whose envelope verifies with v and whose
// statement's subject is the digest. The newest verified predicate is
// returned in Verification.Predicate. The newest maxAttestationLayers
// attestations (and maxAttestationBytes) are read, one at a time; the
// rest are counted in Verification.NotRead, and said.
//
// What is checked is defined per key: the attestations by v (those whose
// envelope verifies with it). Another key's attestations (an upstream's,
// copied to a mirror that signs with its own key) are not v's to judge:
// they are counted (Verification.OtherKeys) and left alone. (A layer
// whose signature does not verify cannot be told from another key's.) An
// attestation by v of another digest, or that does not parse, is an
// *errs.IntegrityError; none by v of this kind is a *MissingError; one
// that could not be read at all is neither (see Verify).
func VerifyAttestation(ctx context.Context, ref reference.Canonical, v Verifier, predicateType string, opts Options) (*Verification, error) {
	if err := opts.Check(); err != nil {
		return nil, err
	}
	ptype, err := PredicateType(predicateType)
	if err != nil {
		return nil, err
	}
	d := ref.Digest()
	attRef, cur, err := openAttachment(ctx, ref, attachments.SuffixAttestation, "verify attestation of", opts)
	if attRef == nil || cur == nil && !errors.Is(err, attachments.ErrAbsent) {
		return nil, err
	}
	res := &Verification{Ref: ref.String(), Digest: d.String(), Attachment: attRef.String()}
	if errors.Is(err, attachments.ErrAbsent) {
		return res, &MissingError{Ref: ref.String(), Tag: attRef.Tag(), What: "attested"}
	}
	defer cur.Close()
	var problems []string // by this key, and wrong
	var unread unreadable
	otherKinds := 0
	budget := int64(maxAttestationBytes)
	// Newest first (cosign appends), one at a time: at most
	// maxAttestationLayers of them and maxAttestationBytes in all are read,
	// and only the newest verified predicate is kept.
	for i, l := range slices.Backward(cur.Manifest.Layers) {
		if l.MediaType != attachments.MediaTypeDSSE {
			continue
		}
		res.Total++
		if res.Total-res.NotRead > maxAttestationLayers || l.Size > budget {
			res.NotRead++
			continue
		}
		budget -= max(l.Size, 0)
		st, err := checkAttestationLayer(ctx, cur, l, v, d)
		switch {
		case unread.add(err):
		case errors.Is(err, errNotByKey):
			res.OtherKeys++
		case err != nil:
			problems = append(problems, fmt.Sprintf("attestation %d: %v", i+1, err))
		case st.PredicateType != ptype:
			otherKinds++
		default:
			if res.Verified++; res.Predicate == nil {
				res.Predicate = st.Predicate
			}
		}
	}
	if res.NotRead > 0 {
		opts.Logger().Warnf("%s: %d attestations; the newest %d were read (at most %d, %d MiB in all), the other %d not", attRef, res.Total, res.Total-res.NotRead, maxAttestationLayers, maxAttestationBytes>>20, res.NotRead)
	}
	switch {
	case res.Verified > 0:
		return res, nil
	case len(problems) > 0:
		return res, &errs.IntegrityError{What: ref.String(), Check: fmt.Sprintf("attestation: none of %d is a %s attestation of this digest by the key (%s)", res.Total, ptype, strings.Join(problems, "; "))}
	case unread.n > 0:
		return res, unread.err(ref.String(), "attested as "+ptype+" with the key", res.Total)
	}
	// None by this key of this kind: not attested, as far as this key
	// goes (whatever other keys attested, or kinds this key attested, a
	// provenance say).
	var others []string
	if res.OtherKeys > 0 {
		others = append(others, fmt.Sprintf("%d by other keys, not checked", res.OtherKeys))
	}
	switch {
	case otherKinds > 0 && res.OtherKeys == 0:
		others = append(others, "other kinds only")
	case otherKinds > 0:
		others = append(others, fmt.Sprintf("%d of other kinds", otherKinds))
	}
	if res.NotRead > 0 {
		others = append(others, fmt.Sprintf("%d older ones not read: more than %d, or %d MiB", res.NotRead, maxAttestationLayers, maxAttestationBytes>>20))
	}
	what := "attested as " + ptype + " with the key"
	if len(others) > 0 {
		what += " (" + attRef.Tag() + " holds " + strings.Join(others, ", ") + ")"
	}
	return res, &MissingError{Ref: ref.String(), What: what}
}

// checkAttestationLayer checks one DSSE layer: its blob, the envelope's
// signature with v, and that the statement's subject names want
// (openEnvelope).
func checkAttestationLayer(ctx context.Context, a *attachments.Attachment, l imgspecv1.Descriptor, v Verifier, want digest.Digest) (*statement, error) {
	data, err := readBlob(ctx, a, l)
	if err != nil {
		return nil, err
	}
	return openEnvelope(data, v, want)
}

// maxAttestationLayers and maxAttestationBytes bound what one
// VerifyAttestation reads of an .att manifest, newest first (as
// maxSignatureLayers bounds Verify): an SBOM is a few MiB.
const (
	maxAttestationLayers = 64
	maxAttestationBytes  = 256 << 20
)

// errNotByKey is an envelope that no signature by the key verifies (and
// so, what it says aside, not this key's attestation).
var errNotByKey = errors.New("not by this key")

// maxEnvelopeSignatures bounds the signatures of one DSSE envelope tried
// against the key.
const maxEnvelopeSignatures = 8

// openEnvelope checks a DSSE envelope as a registry served it: its payload
// type, a signature that verifies with v over the payload, and a
// statement whose subject names want. Whatever the bytes, it returns an
// error or the statement, and never panics; an envelope no signature by v
// verifies is errNotByKey.
func openEnvelope(data []byte, v Verifier, want digest.Digest) (*statement, error) {
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("%w: envelope: %v", errNotByKey, err)
	}
	if env.PayloadType != inTotoPayloadType {
		return nil, fmt.Errorf("%w: envelope payload type %q, want %q", errNotByKey, env.PayloadType, inTotoPayloadType)
	}
	body, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return nil, fmt.Errorf("%w: envelope payload: %v", errNotByKey, err)
	}
	verified := false
	for i, s := range env.Signatures {
		if i == maxEnvelopeSignatures {
			break // cosign writes one; a registry cannot make us try thousands
		}
		sig, err := base64.StdEncoding.DecodeString(s.Sig)
		if err == nil && v.VerifyMessage(pae(env.PayloadType, body), sig) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, fmt.Errorf("%w: %w", errNotByKey, errBadSignature)
	}
	var st statement
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, fmt.Errorf("statement: %w", err)
	}
	for _, s := range st.Subject {
		if s.Digest[want.Algorithm().String()] == want.Encoded() {
			return &st, nil
		}
	}
	var got []string
	for _, s := range st.Subject {
		got = append(got, "sha256:"+s.Digest["sha256"])
	}
	return nil, fmt.Errorf("subject is %s, not %s", strings.Join(got, ", "), want)
}

// sameJSON reports whether a and b hold the same JSON value: the statement
// is encoded with json.Marshal, which escapes <, > and & (a package URL's
// query), so the bytes read back differ from the predicate given.
func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}
