package sign

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/agentforge/agentforge/images/errs"
	"github.com/opencontainers/go-digest"
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

// copyReferrers copies the referrers index of d (the tag schema) from src
// to dst: every referrer manifest by digest with its blobs first, then the
// index under the tag. A destination index with other entries keeps them
// (the source's missing ones are added). nil when the source has none.
func copyReferrers(ctx context.Context, src, dst reference.Named, d digest.Digest, opts Options, dry bool) (*Copied, error) {
	tag, err := ReferrersTag(d)
	if err != nil {
		return nil, err
	}
	to, a, err := sourceAttachment(ctx, opts, src, dst, tag)
	if a == nil {
		return nil, err
	}
	defer a.Close()
	idx, err := parseReferrers(a.raw, a.ref)
	if err != nil {
		return nil, err
	}
	c := &Copied{Tag: tag, Digest: digest.FromBytes(a.raw).String()}
	want := a.raw
	have, err := readAttachment(ctx, opts, to)
	switch {
	case errors.Is(err, errAbsent):
	case err != nil:
		return nil, err
	default:
		defer have.Close()
		cur, err := parseReferrers(have.raw, to)
		if err != nil {
			return nil, err
		}
		missing := missingManifests(cur.Manifests, idx.Manifests)
		if len(missing) == 0 {
			return &Copied{}, nil
		}
		// The destination's own referrers stay; the source's are added.
		c.Merged = true
		merged := *cur
		merged.Manifests = append(slices.Clone(cur.Manifests), missing...)
		if want, err = json.Marshal(merged); err != nil {
			return nil, err
		}
		c.Digest = digest.FromBytes(want).String()
		idx.Manifests = missing
	}
	for _, m := range idx.Manifests {
		if err := copyManifest(ctx, src, dst, m, c, opts, dry); err != nil {
			return nil, fmt.Errorf("referrer %s of %s: %w", m.Digest, d, err)
		}
	}
	if dry {
		opts.log().Infof("would copy the referrers of %s to %s (%d manifests)", d, to, len(idx.Manifests))
		return c, nil
	}
	w, err := newWriter(ctx, opts, to)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	if err := w.manifest(ctx, want); err != nil {
		return nil, err
	}
	opts.log().WithField("digest", c.Digest).Infof("copied the referrers of %s to %s", d, to)
	return c, nil
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

// copyManifest copies one image manifest by digest, its config and layers
// first, each checked against its digest on the way.
func copyManifest(ctx context.Context, src, dst reference.Named, desc imgspecv1.Descriptor, c *Copied, opts Options, dry bool) error {
	from, err := reference.WithDigest(reference.TrimNamed(src), desc.Digest)
	if err != nil {
		return err
	}
	to, err := reference.WithDigest(reference.TrimNamed(dst), desc.Digest)
	if err != nil {
		return err
	}
	a, err := readAttachment(ctx, opts, from)
	if err != nil {
		return err
	}
	defer a.Close()
	raw := a.raw
	if got := digest.FromBytes(raw); got != desc.Digest {
		return &errs.IntegrityError{What: "manifest " + from.String(), Check: "digest", Expected: desc.Digest.String(), Actual: got.String()}
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
