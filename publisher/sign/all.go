package sign

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/agentforge/agentforge/images/errs"
	"go.podman.io/image/v5/docker/reference"
)

// Signed is what SignAll did on one image.
type Signed struct {
	Ref       string  `json:"ref"`
	Signature *Result `json:"signature,omitempty"`
	// SBOM is the SPDX attestation attached, when one was given.
	SBOM  *Result `json:"sbom,omitempty"`
	Error string  `json:"error,omitempty"`
	err   error
}

// What says what was done to the ref: "signed", "signed, SBOM attested",
// or "NOT signed: why".
func (s Signed) What() string {
	switch {
	case s.Error != "":
		return "NOT signed: " + s.Error
	case s.SBOM != nil:
		return "signed, SBOM attested"
	}
	return "signed"
}

// String is a summary line: "signed REF", "signed, SBOM attested REF" or
// "NOT signed REF: why".
func (s Signed) String() string {
	if s.Error != "" {
		return fmt.Sprintf("NOT signed %s: %s", s.Ref, s.Error)
	}
	return s.What() + " " + s.Ref
}

// SignAll signs every ref with s (Sign) and, when sbom is not nil,
// attaches it as a signed SPDX attestation (Attest, predicate type
// https://spdx.dev/Document: `cosign verify-attestation --type spdxjson`).
// Each repository gets its own signature, naming itself. A ref that fails
// does not stop the others; the error names every failure.
func SignAll(ctx context.Context, refs []reference.Canonical, s Signer, sbom []byte, opts Options) ([]Signed, error) {
	out := make([]Signed, len(refs))
	var failed []error
	for i, ref := range refs {
		o := &out[i]
		o.Ref = ref.String()
		o.Signature, o.err = Sign(ctx, ref, s, opts)
		if o.err == nil && sbom != nil {
			o.SBOM, o.err = Attest(ctx, ref, s, PredicateSPDX, sbom, opts)
		}
		if o.err != nil {
			o.Error = o.err.Error()
			failed = append(failed, o.err)
		}
	}
	if len(failed) > 1 {
		// Every failure stays visible to errors.Is: an integrity failure
		// on one registry is exit 3 even when another just timed out.
		return out, fmt.Errorf("signing failed for %d images: %w", len(failed), errors.Join(failed...))
	}
	if len(failed) == 1 {
		return out, failed[0]
	}
	return out, nil
}

// ParseRef parses host/repo@sha256:… (docker:// optional), the form
// publish results and Jenkins templates carry. A tag next to the digest
// (host/repo:tag@sha256:…) is dropped: the digest is what names the image,
// and what is checked.
func ParseRef(s string) (reference.Canonical, error) {
	named, err := reference.ParseNormalizedNamed(strings.TrimPrefix(s, "docker://"))
	if err != nil {
		return nil, errs.Inputf("reference %q: %w", s, err)
	}
	c, ok := named.(reference.Canonical)
	if !ok {
		return nil, errs.Inputf("reference %q: not pinned by digest (host/repo@sha256:…)", s)
	}
	return reference.WithDigest(reference.TrimNamed(c), c.Digest())
}
