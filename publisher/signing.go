package publisher

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/agentforge/agentforge/builder/oci"
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
	// an index, by platform (os/arch[/variant], "linux/arm64"; arm64/v8
	// is arm64, arm is arm/v7). A platform the index lacks is an error.
	PlatformSBOMs map[string][]byte

	// local maps a published digest to the local manifest digest of the
	// image it was published from (PublishList sets it for Index), to
	// rebind agentforge's SBOMs (see publishedSBOM).
	local map[digest.Digest]digest.Digest
}

// localOf is the local manifest digest d was published from (d itself
// when it was published as it was).
func (s *Signing) localOf(d digest.Digest) digest.Digest {
	if l, ok := s.local[d]; ok {
		return l
	}
	return d
}

// withLocal is a copy of s that also maps the published digests in m to
// local ones.
func (s *Signing) withLocal(m map[digest.Digest]digest.Digest) *Signing {
	if s == nil {
		return nil
	}
	out := *s
	out.local = maps.Clone(s.local)
	if out.local == nil {
		out.local = map[digest.Digest]digest.Digest{}
	}
	maps.Copy(out.local, m)
	return &out
}

// platformSBOM is the SBOM given for platform, if any.
func (s *Signing) platformSBOM(platform string) []byte {
	want := oci.NormalizePlatform(platform)
	for k, doc := range s.PlatformSBOMs {
		if oci.NormalizePlatform(k) == want {
			return doc
		}
	}
	return nil
}

// checkSBOMs refuses, before anything is pushed, SBOMs that do not
// describe what is published, where agentforge can tell (its own SBOMs,
// recognised by their content however they are encoded, name the image's
// local manifest digest, sbom.Described): the SBOM must
// describe top, the image published (local digest), and cannot describe a
// single image when top is a multi-platform index; every PlatformSBOMs key
// must be one of platforms (platform -> local digest of its image), whose
// image an agentforge SBOM must describe. Other tools' SBOMs are taken as
// given.
func (s *Signing) checkSBOMs(top digest.Digest, index bool, platforms map[string]digest.Digest) error {
	if s == nil {
		return nil
	}
	d, ok, err := sbom.Described(s.SBOM)
	if err != nil {
		return errs.Inputf("signing: %w", err)
	}
	if ok {
		if index {
			return errs.Inputf("signing: the SBOM describes one image (%s) and %s is a multi-platform index: give each platform's SBOM for its image", d, top)
		}
		if d != top {
			return errs.Inputf("signing: the SBOM describes the image %s, not %s, the one being published", d, top)
		}
	}
	norm := map[string]digest.Digest{}
	var names []string
	for p, d := range platforms {
		norm[oci.NormalizePlatform(p)] = d
		names = append(names, p)
	}
	slices.Sort(names)
	keys := map[string]string{}
	for key := range s.PlatformSBOMs {
		if other, dup := keys[oci.NormalizePlatform(key)]; dup {
			return errs.Inputf("signing: SBOMs are given for both %s and %s, which are one platform", other, key)
		}
		keys[oci.NormalizePlatform(key)] = key
	}
	for key, doc := range s.PlatformSBOMs {
		local, ok := norm[oci.NormalizePlatform(key)]
		if !ok {
			return errs.Inputf("signing: an SBOM is given for %s, which is not among the platforms published (%s)", key, strings.Join(names, ", "))
		}
		d, ours, err := sbom.Described(doc)
		if err != nil {
			return errs.Inputf("signing: the SBOM for %s: %w", key, err)
		}
		if ours && d != local {
			return errs.Inputf("signing: the SBOM for %s describes the image %s, not that platform's %s", key, d, local)
		}
	}
	return nil
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
	one := func(dg digest.Digest, sbomDoc []byte) (sign.Signed, error) {
		ref, err := reference.WithDigest(dest.Repo, dg)
		if err != nil {
			return sign.Signed{}, err
		}
		doc, err := sbom.PublishedJSON(sbomDoc, s.localOf(dg), dg)
		if err != nil {
			return sign.Signed{Ref: ref.String(), Error: err.Error()}, fmt.Errorf("sign %s: %w", ref, err)
		}
		out, err := sign.SignAll(ctx, []reference.Canonical{ref}, s.Signer, doc, so)
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
			platform := oci.PlatformOf(inst.ReadOnly.Platform).String()
			signed, err := one(child, s.platformSBOM(platform))
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
		if out[i].Ref == "" {
			// Not signed: say why, rather than an empty entry.
			out[i] = sign.Signed{Ref: r.Ref, Error: "not signed: " + notSignedWhy(r)}
		}
	}
	return out
}

// platformDigests maps each platform of a multi-platform manifest to its
// image's digest; nil for a single image.
func platformDigests(raw []byte) (map[string]digest.Digest, error) {
	mt := manifest.GuessMIMEType(raw)
	if !manifest.MIMETypeIsMultiImage(mt) {
		return nil, nil
	}
	list, err := manifest.ListFromBlob(raw, mt)
	if err != nil {
		return nil, fmt.Errorf("parse manifest list: %w", err)
	}
	out := map[string]digest.Digest{}
	for _, d := range list.Instances() {
		inst, err := list.Instance(d)
		if err != nil {
			return nil, fmt.Errorf("parse manifest list: %w", err)
		}
		out[oci.PlatformOf(inst.ReadOnly.Platform).String()] = d
	}
	return out, nil
}

// publishedToLocal maps the digests of a published manifest (and of its
// platform images, by platform) to those of the local one it was staged
// from.
func publishedToLocal(localRaw, publishedRaw []byte) (map[digest.Digest]digest.Digest, error) {
	out := map[digest.Digest]digest.Digest{digest.FromBytes(publishedRaw): digest.FromBytes(localRaw)}
	local, err := platformDigests(localRaw)
	if err != nil {
		return nil, err
	}
	published, err := platformDigests(publishedRaw)
	if err != nil {
		return nil, err
	}
	for platform, d := range published {
		if l, ok := local[platform]; ok {
			out[d] = l
		}
	}
	return out, nil
}

// notSignedWhy says why a destination's image (or a platform image of it)
// carries no signature from this run.
func notSignedWhy(r Result) string {
	if r.Error == "" {
		return "not attempted"
	}
	return r.Error
}
