package publisher

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/agentforge/agentforge/builder/sbom"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/publisher/sign"
	"github.com/opencontainers/go-digest"
	"github.com/sirupsen/logrus"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"
)

// Signing says what Publish, PublishList, Index and Mirror sign, in
// cosign's format (see sign.Sign), on every destination: each digest is
// signed after it is pushed and verified there and before any tag names
// it, so that a pull by tag never finds an unsigned image.
type Signing struct {
	// Signer signs; required.
	Signer sign.Signer
	// SBOM, when not nil, is attached to the published image (or index)
	// as a signed SPDX attestation (sign.Attest).
	SBOM []byte
	// PlatformSBOMs are attached the same way to the platform images of
	// an index, by platform (os/arch[/variant], "linux/arm64").
	PlatformSBOMs map[string][]byte
}

// check refuses, before anything is pushed, what signing would refuse
// after the push.
func (s *Signing) check() error {
	if s == nil {
		return nil
	}
	if s.Signer == nil {
		return errs.Inputf("signing: no signer")
	}
	if s.SBOM != nil && !json.Valid(s.SBOM) {
		return errs.Inputf("signing: the SBOM is not JSON")
	}
	for platform, doc := range s.PlatformSBOMs {
		if !json.Valid(doc) {
			return errs.Inputf("signing: the SBOM of %s is not JSON", platform)
		}
	}
	return nil
}

// sign signs, on dest, every platform image of an index (raw), each with
// its own SBOM, then d itself, with opts.Sign; without it, nothing. What
// it did is recorded in res. Callers run it after verification and before
// the tags.
func (p *run) sign(ctx context.Context, dest Destination, raw []byte, d digest.Digest, res *Result, log logrus.FieldLogger) error {
	s := p.opts.Sign
	if s == nil {
		return nil
	}
	so := sign.Options{Hosts: p.hosts, Log: log}
	one := func(dg digest.Digest, sbom []byte) (sign.Signed, error) {
		ref, err := reference.WithDigest(dest.Repo, dg)
		if err != nil {
			return sign.Signed{}, err
		}
		out, err := sign.SignAll(ctx, []reference.Canonical{ref}, s.Signer, publishedSBOM(sbom, dg, log), so)
		return out[0], err
	}
	if mt := manifest.GuessMIMEType(raw); manifest.MIMETypeIsMultiImage(mt) {
		list, err := manifest.ListFromBlob(raw, mt)
		if err != nil {
			return fmt.Errorf("sign: %w", err)
		}
		for _, child := range list.Instances() {
			inst, err := list.Instance(child)
			if err != nil {
				return fmt.Errorf("sign: %w", err)
			}
			platform := platformString(inst.ReadOnly.Platform)
			signed, err := one(child, s.PlatformSBOMs[platform])
			res.children = append(res.children, signed)
			if err != nil {
				return fmt.Errorf("platform %s (%s): %w", platform, child, err)
			}
		}
	}
	var err error
	res.signed, err = one(d, s.SBOM)
	return err
}

// signatures are what signing did on each destination of rep, in order
// (an empty entry for one that failed before); nil without signing.
func (p *run) signatures(rep *Report) []sign.Signed {
	if p.opts.Sign == nil {
		return nil
	}
	out := make([]sign.Signed, len(rep.Destinations))
	for i, r := range rep.Destinations {
		out[i] = r.signed
	}
	return out
}

// publishedSBOM is the SBOM to attest for the image published as d: see
// sbom.PublishedJSON (agentforge's own SBOMs name the local build's
// manifest digest, which publishing changes).
func publishedSBOM(raw []byte, d digest.Digest, log logrus.FieldLogger) []byte {
	out, err := sbom.PublishedJSON(raw, d)
	if err != nil {
		log.Debugf("SBOM attested as it is: %v", err)
		return raw
	}
	return out
}
