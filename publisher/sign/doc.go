// Package sign signs images that are already on a registry, verifies those
// signatures, and attaches and verifies signed in-toto attestations (an
// SBOM), in the formats cosign reads and writes:
//
//   - a signature of the manifest with digest sha256:H lives under the tag
//     sha256-H.sig of the same repository: an OCI image manifest whose
//     layers are "simple signing" payloads
//     (application/vnd.dev.cosign.simplesigning.v1+json) naming the
//     digest, each carrying its base64 signature in the annotation
//     dev.cosignproject.cosign/signature (`cosign verify --key` accepts
//     them);
//   - an attestation lives under sha256-H.att: layers are DSSE envelopes
//     (application/vnd.dsse.envelope.v1+json) of an in-toto statement
//     whose subject is the digest (`cosign verify-attestation --key`
//     accepts them);
//   - cosign's older SBOM attachments live under sha256-H.sbom; they are
//     copied, not written.
//
// Keys are cosign's: an encrypted private key as `cosign generate-key-pair`
// (or GenerateKeyPair) writes it, and a PEM public key. Signing with a key
// needs nothing but the registry: no transparency log entry is made, so a
// cosign v2 verifier needs --insecure-ignore-tlog=true (a Rekor entry
// cannot be made offline).
//
// Keyless signing (a short-lived Fulcio certificate for an OIDC identity,
// recorded in Rekor) needs those services and is not provided: it would be
// another Signer (whose certificate goes into the signature's annotations)
// and another verifier; the registry formats above stay the same.
//
// Where these live on a registry, and how they travel with a mirrored
// image, is package attachments'. This package builds nothing, pushes no
// image and copies nothing: it adds signatures and attestations to images
// that are there, and checks them.
package sign

import "github.com/agentforge/agentforge/publisher/attachments"

// Options say how to reach registries and where progress goes: Hosts
// (required) and Log. They are the attachments package's.
type Options = attachments.Options
