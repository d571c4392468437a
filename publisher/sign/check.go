package sign

import (
	"context"

	"go.podman.io/image/v5/docker/reference"
)

// SBOMPolicy says what CheckImage does about an image's SPDX attestation.
type SBOMPolicy int

const (
	// SBOMIfPresent verifies the attestation when there is one.
	SBOMIfPresent SBOMPolicy = iota
	// SBOMRequired demands one that verifies.
	SBOMRequired
	// SBOMIgnored does not look.
	SBOMIgnored
)

// Check is what CheckImage found on one image.
type Check struct {
	Signature *Verification `json:"signature"`
	SBOM      *Verification `json:"sbom,omitempty"`
	// SBOMAbsent is true when no SBOM attestation by the key was there
	// (and none was required).
	SBOMAbsent bool `json:"sbomAbsent,omitempty"`
	// SBOMByOtherKeys counts, then, the attestations by other keys (an
	// upstream's, on a mirror that signs with its own key): not this
	// key's, not judged.
	SBOMByOtherKeys int `json:"sbomByOtherKeys,omitempty"`
	// SBOMNotRead counts, then, the older attestations past what one
	// check reads (see VerifyAttestation).
	SBOMNotRead int `json:"sbomNotRead,omitempty"`
}

// CheckImage is what an admission policy checks before a pod pulls
// repo@digest: a signature by v (Verify) and, as policy says, a signed
// SPDX attestation by v (VerifyAttestation). What is checked is v's: its
// signature and its attestations; other keys' attestations (an upstream's
// SBOM on a mirror signing with its own key) neither pass nor fail it. A
// failure is an integrity error (or, when the registry could not serve
// what is there, a runtime one); the check made so far is returned with
// it.
func CheckImage(ctx context.Context, ref reference.Canonical, v Verifier, policy SBOMPolicy, opts Options) (*Check, error) {
	res := &Check{}
	var err error
	if res.Signature, err = Verify(ctx, ref, v, opts); err != nil {
		return res, err
	}
	if policy == SBOMIgnored {
		return res, nil
	}
	res.SBOM, err = VerifyAttestation(ctx, ref, v, PredicateSPDX, opts)
	if err != nil && policy == SBOMIfPresent && IsMissing(err) {
		if res.SBOM != nil {
			res.SBOMByOtherKeys, res.SBOMNotRead = res.SBOM.OtherKeys, res.SBOM.NotRead
		}
		res.SBOM, res.SBOMAbsent = nil, true
		return res, nil
	}
	return res, err
}
