package sign

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/agentforge/agentforge/images/errs"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker/reference"
)

// ReferrersTag is the OCI 1.1 referrers tag schema's tag for the manifest
// d (sha256-<hex>): on a registry without the referrers API, clients such
// as cosign's OCI 1.1 mode and oras keep there an index of the manifests
// whose subject is d (signatures, SBOMs, attestations).
func ReferrersTag(d digest.Digest) (string, error) {
	tag, err := AttachmentTag(d, "")
	if err != nil {
		return "", err
	}
	return tag[:len(tag)-1], nil // no "." suffix
}

// maxReferrerDepth bounds how deep referrers of referrers are followed (a
// signature of an SBOM that refers to the image is depth 2).
const maxReferrerDepth = 3

// copyReferrers copies the OCI 1.1 referrers of d from src to dst: those
// kept under the tag schema (the sha256-<hex> index) and those the
// source's referrers API lists. Each referrer goes by digest with its
// blobs, checked against its digest and required to name d as its subject.
// The tag schema's index is copied as it is (merged with the
// destination's own entries when it has some). A referrer only the API
// lists goes by digest to a destination with the referrers API, which then
// lists it; a destination without the API gets it added to its tag-schema
// index instead, so that clients there still find it. The returned entries
// are what was (or, when dry, would be) written; unchanged counts what the
// destination had already; referrers are the digests of all the source's
// referrers of d.
func copyReferrers(ctx context.Context, src, dst reference.Named, d digest.Digest, opts Options, dry bool) (copied []Copied, unchanged int, referrers []digest.Digest, err error) {
	tag, err := ReferrersTag(d)
	if err != nil {
		return nil, 0, nil, err
	}
	to, a, err := sourceAttachment(ctx, opts, src, dst, tag)
	if err != nil {
		return nil, 0, nil, err
	}
	var srcIdx *imgspecv1.Index
	if a != nil {
		defer a.Close()
		if srcIdx, err = parseReferrers(a.raw, a.ref); err != nil {
			return nil, 0, nil, err
		}
	}
	apiList, _, err := listReferrers(ctx, opts, src, d)
	if err != nil {
		return nil, 0, nil, err
	}
	dstList, dstAPI, err := listReferrers(ctx, opts, dst, d)
	if err != nil {
		return nil, 0, nil, err
	}
	var inTag []imgspecv1.Descriptor
	if srcIdx != nil {
		inTag = srcIdx.Manifests
	}
	apiOnly := missingManifests(inTag, apiList)
	for _, m := range append(slices.Clone(inTag), apiOnly...) {
		referrers = append(referrers, m.Digest)
	}

	// The destination's tag-schema index: the source's, plus, where the
	// destination has no referrers API, what only the source's API lists.
	want := slices.Clone(inTag)
	if !dstAPI {
		want = append(want, apiOnly...)
	}
	var index *referrersIndex
	var forIndex, viaAPI []imgspecv1.Descriptor // referrers to send by digest
	if len(want) > 0 {
		index, forIndex, err = planReferrersIndex(ctx, opts, to, a, srcIdx, want)
		if err != nil {
			return nil, 0, nil, err
		}
		if index == nil {
			unchanged++
		}
	}
	if dstAPI {
		for _, m := range apiOnly {
			if slices.ContainsFunc(dstList, func(h imgspecv1.Descriptor) bool { return h.Digest == m.Digest }) {
				unchanged++
				continue
			}
			viaAPI = append(viaAPI, m)
		}
	}
	for _, m := range forIndex {
		c := Copied{}
		if err := copyManifest(ctx, src, dst, m, d, &c, opts, dry); err != nil {
			return copied, unchanged, nil, fmt.Errorf("referrer %s of %s: %w", m.Digest, d, err)
		}
		index.Blobs += c.Blobs
		index.Bytes += c.Bytes
	}
	for _, m := range viaAPI {
		c := Copied{Digest: m.Digest.String(), Referrer: true}
		if err := copyManifest(ctx, src, dst, m, d, &c, opts, dry); err != nil {
			return copied, unchanged, nil, fmt.Errorf("referrer %s of %s: %w", m.Digest, d, err)
		}
		if dry {
			opts.log().WithField("digest", c.Digest).Infof("would copy the referrer of %s to %s (%d blobs, %d bytes)", d, dst, c.Blobs, c.Bytes)
		} else {
			opts.log().WithField("digest", c.Digest).Infof("copied the referrer of %s to %s", d, dst)
		}
		copied = append(copied, c)
	}
	if index != nil {
		if dry {
			opts.log().Infof("would copy the referrers index of %s to %s (%d manifests to send)", d, to, len(forIndex))
		} else if err := writeManifest(ctx, opts, to, index.raw); err != nil {
			return copied, unchanged, nil, err
		} else {
			opts.log().WithField("digest", index.Digest).Infof("copied the referrers index of %s to %s", d, to)
		}
		copied = append(copied, index.Copied)
	}
	return copied, unchanged, referrers, nil
}

// referrersIndex is the tag-schema index to write on the destination.
type referrersIndex struct {
	Copied
	raw []byte
}

// planReferrersIndex compares the index the destination should have under
// to (the entries want) with the one it has. It returns nil when nothing
// is missing, else the index to write, with the referrers it lists that
// must be sent first. The source's index bytes are kept when the
// destination has none and want adds nothing to them.
func planReferrersIndex(ctx context.Context, opts Options, to reference.NamedTagged, a *attachment, srcIdx *imgspecv1.Index, want []imgspecv1.Descriptor) (*referrersIndex, []imgspecv1.Descriptor, error) {
	have, err := readAttachment(ctx, opts, to)
	switch {
	case errors.Is(err, errAbsent):
		var raw []byte
		if srcIdx != nil && len(want) == len(srcIdx.Manifests) {
			raw = a.raw
		} else if raw, err = newReferrersIndex(srcIdx, want); err != nil {
			return nil, nil, err
		}
		return &referrersIndex{Copied: Copied{Tag: to.Tag(), Digest: digest.FromBytes(raw).String()}, raw: raw}, want, nil
	case err != nil:
		return nil, nil, err
	}
	defer have.Close()
	cur, err := parseReferrers(have.raw, to)
	if err != nil {
		return nil, nil, err
	}
	missing := missingManifests(cur.Manifests, want)
	if len(missing) == 0 {
		return nil, nil, nil
	}
	// The destination's own referrers stay; the missing ones are added.
	merged := *cur
	merged.Manifests = append(slices.Clone(cur.Manifests), missing...)
	raw, err := json.Marshal(merged)
	if err != nil {
		return nil, nil, err
	}
	return &referrersIndex{Copied: Copied{Tag: to.Tag(), Digest: digest.FromBytes(raw).String(), Merged: true}, raw: raw}, missing, nil
}

// newReferrersIndex is a tag-schema index listing want (the source's
// index with entries added, or a new one).
func newReferrersIndex(srcIdx *imgspecv1.Index, want []imgspecv1.Descriptor) ([]byte, error) {
	idx := imgspecv1.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageIndex}
	if srcIdx != nil {
		idx = *srcIdx
	}
	idx.Manifests = want
	return json.Marshal(idx)
}

// listReferrers asks repo's registry for the referrers of d through the
// OCI 1.1 referrers API; supported is false where it has none.
func listReferrers(ctx context.Context, opts Options, repo reference.Named, d digest.Digest) (list []imgspecv1.Descriptor, supported bool, err error) {
	c, err := opts.Hosts.Client(repo)
	if err != nil {
		return nil, false, err
	}
	err = opts.retry(ctx, "list the referrers of "+d.String(), func() error {
		list, supported, err = c.Referrers(ctx, d)
		return err
	})
	return list, supported, err
}

// writeManifest writes raw under to.
func writeManifest(ctx context.Context, opts Options, to reference.Named, raw []byte) error {
	w, err := newWriter(ctx, opts, to)
	if err != nil {
		return err
	}
	defer w.Close()
	return w.manifest(ctx, raw)
}

// parseReferrers reads a referrers index; anything else under the tag is
// not ours to copy.
func parseReferrers(raw []byte, ref reference.Named) (*imgspecv1.Index, error) {
	var idx imgspecv1.Index
	if err := json.Unmarshal(raw, &idx); err != nil || idx.MediaType != imgspecv1.MediaTypeImageIndex {
		return nil, &errs.IntegrityError{What: ref.String(), Check: "content: not an OCI image index (referrers tag schema)"}
	}
	return &idx, nil
}

// missingManifests are the entries of want that have lacks, by digest.
func missingManifests(have, want []imgspecv1.Descriptor) []imgspecv1.Descriptor {
	var out []imgspecv1.Descriptor
	for _, m := range want {
		if !slices.ContainsFunc(have, func(h imgspecv1.Descriptor) bool { return h.Digest == m.Digest }) {
			out = append(out, m)
		}
	}
	return out
}

// copyManifest copies one referrer (an OCI image manifest whose subject
// is subject) by digest, its config and layers first, each checked against
// its digest on the way.
func copyManifest(ctx context.Context, src, dst reference.Named, desc imgspecv1.Descriptor, subject digest.Digest, c *Copied, opts Options, dry bool) error {
	from, err := reference.WithDigest(reference.TrimNamed(src), desc.Digest)
	if err != nil {
		return err
	}
	to, err := reference.WithDigest(reference.TrimNamed(dst), desc.Digest)
	if err != nil {
		return err
	}
	a, err := readAttachment(ctx, opts, from)
	if errors.Is(err, errAbsent) {
		return errs.NotFoundf("%s: listed as a referrer but not on the registry", from)
	}
	if err != nil {
		return err
	}
	defer a.Close()
	raw := a.raw
	if got := digest.FromBytes(raw); got != desc.Digest {
		return &errs.IntegrityError{What: "manifest " + from.String(), Check: "digest", Expected: desc.Digest.String(), Actual: got.String()}
	}
	// A registry cannot attach another image's referrer to this one.
	if a.manifest.Subject == nil || a.manifest.Subject.Digest != subject {
		return &errs.IntegrityError{What: "referrer " + from.String(), Check: "subject", Expected: subject.String(), Actual: subjectOf(a.manifest)}
	}
	if a.manifest.MediaType != imgspecv1.MediaTypeImageManifest {
		return fmt.Errorf("%s: media type %q: only OCI image manifests are copied as referrers", from, a.manifest.MediaType)
	}
	w, err := newWriter(ctx, opts, to)
	if err != nil {
		return err
	}
	defer w.Close()
	for _, b := range append([]imgspecv1.Descriptor{a.manifest.Config}, a.manifest.Layers...) {
		if b.Digest == "" {
			continue
		}
		ok, err := w.has(ctx, b.Digest)
		if err != nil {
			return err
		}
		if ok {
			continue
		}
		c.Blobs++
		c.Bytes += b.Size
		if dry {
			continue
		}
		data, err := a.blob(ctx, b)
		if err != nil {
			return err
		}
		if _, _, err := w.put(ctx, b.MediaType, data); err != nil {
			return err
		}
	}
	if dry {
		return nil
	}
	return w.manifest(ctx, raw)
}

func subjectOf(m imgspecv1.Manifest) string {
	if m.Subject == nil {
		return "none"
	}
	return m.Subject.Digest.String()
}

// ArtifactTypeSignature is the artifact type of the signature manifests
// cosign writes as OCI 1.1 referrers (sign --registry-referrers-mode=oci-1-1).
const ArtifactTypeSignature = "application/vnd.dev.cosign.artifact.sig.v1+json"

// referrerAttachments reads the referrers of ref (from the referrers API
// and the tag schema's index) whose artifact type is artifactType: each
// manifest read by digest (checked against it) and required to name ref
// as its subject; a listed referrer that is not there, or is another
// image's, is an error. The caller closes them.
func referrerAttachments(ctx context.Context, ref reference.Canonical, artifactType string, opts Options) ([]*attachment, error) {
	d := ref.Digest()
	list, _, err := listReferrers(ctx, opts, ref, d)
	if err != nil {
		return nil, err
	}
	tag, err := ReferrersTag(d)
	if err != nil {
		return nil, err
	}
	tagged, err := reference.WithTag(reference.TrimNamed(ref), tag)
	if err != nil {
		return nil, err
	}
	idx, err := readAttachment(ctx, opts, tagged)
	switch {
	case errors.Is(err, errAbsent):
	case err != nil:
		return nil, err
	default:
		parsed, err := parseReferrers(idx.raw, idx.ref)
		idx.Close()
		if err != nil {
			return nil, err
		}
		list = append(list, missingManifests(list, parsed.Manifests)...)
	}
	var out []*attachment
	closeAll := func() {
		for _, a := range out {
			a.Close()
		}
	}
	for _, m := range list {
		if m.ArtifactType != "" && m.ArtifactType != artifactType {
			continue
		}
		at, err := reference.WithDigest(reference.TrimNamed(ref), m.Digest)
		if err != nil {
			closeAll()
			return nil, err
		}
		a, err := readAttachment(ctx, opts, at)
		if errors.Is(err, errAbsent) {
			closeAll()
			return nil, errs.NotFoundf("%s: listed as a referrer but not on the registry", at)
		}
		if err != nil {
			closeAll()
			return nil, err
		}
		if a.manifest.ArtifactType != artifactType && a.manifest.Config.MediaType != artifactType {
			a.Close()
			continue
		}
		if a.manifest.Subject == nil || a.manifest.Subject.Digest != d {
			a.Close()
			closeAll()
			return nil, &errs.IntegrityError{What: "referrer " + at.String(), Check: "subject", Expected: d.String(), Actual: subjectOf(a.manifest)}
		}
		out = append(out, a)
	}
	return out, nil
}
