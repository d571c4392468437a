package attachments

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/agentforge/agentforge/builder/oci/remote"
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
// signature of an SBOM that refers to the image is depth 2), and
// maxReferrerNodes how many manifests one copy visits in all.
const (
	maxReferrerDepth = 3
	maxReferrerNodes = 1000
)

// copyReferrers copies the OCI 1.1 referrers of d from src to dst: those
// kept under the tag schema (the sha256-<hex> index) and those the
// source's referrers API lists. Each referrer goes by digest with its
// blobs (an index referrer with its manifests), checked against its digest
// and size and required to name d as its subject.
//
// The tag schema's index is copied as it is (merged with the destination's
// own entries when it has some). A referrer only the API lists goes by
// digest to a destination with the referrers API; if the destination then
// does not list it (or has no API), it is added to the destination's
// tag-schema index instead, with a descriptor made from its own bytes, so
// that clients there still find it. One the source lists but does not
// serve is skipped and reported.
//
// What was (or, when dry, would be) written goes into rep; the returned
// digests are all the source's referrers of d (to follow their own).
func copyReferrers(ctx context.Context, src, dst reference.Named, d digest.Digest, opts Options, dry bool, rep *Report) ([]digest.Digest, error) {
	tag, err := ReferrersTag(d)
	if err != nil {
		return nil, err
	}
	to, a, err := sourceAttachment(ctx, opts, src, dst, tag)
	if err != nil {
		return nil, err
	}
	var inTag []imgspecv1.Descriptor
	var srcIdx *imgspecv1.Index
	if a != nil {
		defer a.Close()
		if srcIdx, err = parseReferrers(a.Raw, a.Ref); err != nil {
			return nil, err
		}
		inTag = srcIdx.Manifests
	}
	apiList, _, err := ListReferrers(ctx, opts, src, d)
	if err != nil {
		return nil, err
	}
	var referrers []digest.Digest
	for _, m := range inTag {
		referrers = append(referrers, m.Digest)
	}
	// What only the API lists, described from the manifests themselves:
	// a registry's listing is not trusted with sizes or types.
	var apiOnly []imgspecv1.Descriptor
	for _, m := range MissingManifests(inTag, apiList) {
		desc, err := describeReferrer(ctx, opts, src, m.Digest, d)
		if errors.Is(err, ErrAbsent) {
			opts.Logger().Warnf("%s lists %s as a referrer of %s but does not serve it: skipped", reference.Domain(src), m.Digest, d)
			rep.Skipped = append(rep.Skipped, Skipped{Digest: m.Digest.String(), Reason: "listed by the source's referrers API, not served"})
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("referrer %s of %s: %w", m.Digest, d, err)
		}
		apiOnly = append(apiOnly, desc)
		referrers = append(referrers, desc.Digest)
	}

	// Referrers only the API lists go by digest where the destination has
	// the API; what it does not list afterwards joins its tag schema.
	var fallback []imgspecv1.Descriptor
	if len(apiOnly) > 0 {
		dstList, dstAPI, err := ListReferrers(ctx, opts, dst, d)
		if err != nil {
			return nil, err
		}
		if !dstAPI {
			fallback = apiOnly
		} else {
			// A referrer the destination lists, or keeps in its tag
			// schema (a registry that took it without its subject, on
			// an earlier run), is there.
			dstTag, err := TagSchemaList(ctx, opts, to)
			if err != nil {
				return nil, err
			}
			var sent []imgspecv1.Descriptor
			for _, m := range apiOnly {
				if containsDigest(dstList, m.Digest) || containsDigest(dstTag, m.Digest) {
					rep.Unchanged++
					continue
				}
				c := Copied{Digest: m.Digest.String(), Referrer: true}
				err := copyManifest(ctx, src, dst, m, d, &c, opts, dry)
				var skip *skipError
				if errors.As(err, &skip) {
					opts.Logger().Warnf("the referrer %s of %s is not copied: %s", m.Digest, d, skip.reason)
					rep.Skipped = append(rep.Skipped, Skipped{Digest: m.Digest.String(), Reason: skip.reason})
					continue
				}
				if err != nil {
					return nil, fmt.Errorf("referrer %s of %s: %w", m.Digest, d, err)
				}
				verb := "copied"
				if dry {
					verb = "would copy"
				}
				opts.Logger().WithField("digest", c.Digest).Infof("%s the referrer of %s to %s (%d blobs, %d bytes)", verb, d, dst, c.Blobs, c.Bytes)
				rep.Copied = append(rep.Copied, c)
				sent = append(sent, m)
			}
			if len(sent) > 0 && !dry {
				// The spec lets a registry take a manifest without
				// processing its subject (no OCI-Subject): check.
				now, _, err := ListReferrers(ctx, opts, dst, d)
				if err != nil {
					return nil, err
				}
				for _, m := range sent {
					if !containsDigest(now, m.Digest) {
						opts.Logger().Warnf("%s took %s but does not list it as a referrer of %s: adding it to the tag schema's index", reference.Domain(dst), m.Digest, d)
						fallback = append(fallback, m)
					}
				}
			}
		}
	}

	// The destination's tag-schema index: the source's, plus the fallback.
	want := append(slices.Clone(inTag), MissingManifests(inTag, fallback)...)
	if len(want) == 0 {
		return referrers, nil
	}
	index, forIndex, err := planReferrersIndex(ctx, opts, to, a, srcIdx, want)
	if err != nil {
		return nil, err
	}
	if index == nil {
		rep.Unchanged++
		return referrers, nil
	}
	var stale []digest.Digest
	for _, m := range forIndex {
		if containsDigest(fallback, m.Digest) && rep.has(m.Digest) {
			continue // sent already, for the API
		}
		c := Copied{}
		err := copyManifest(ctx, src, dst, m, d, &c, opts, dry)
		var skip *skipError
		switch {
		case errors.Is(err, errs.ErrNotFound):
			// The source's index names a manifest it no longer has
			// (nothing prunes the tag schema): the mirror's goes without.
			opts.Logger().Warnf("the referrers index of %s names %s, which %s does not serve: left out", d, m.Digest, reference.Domain(src))
			rep.Skipped = append(rep.Skipped, Skipped{Digest: m.Digest.String(), Reason: "named by the source's tag-schema index, not served"})
			stale = append(stale, m.Digest)
			continue
		case errors.As(err, &skip):
			opts.Logger().Warnf("the referrer %s of %s is not copied: %s; left out of the mirror's index", m.Digest, d, skip.reason)
			rep.Skipped = append(rep.Skipped, Skipped{Digest: m.Digest.String(), Reason: skip.reason})
			stale = append(stale, m.Digest)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("referrer %s of %s: %w", m.Digest, d, err)
		}
		index.Blobs += c.Blobs
		index.Bytes += c.Bytes
	}
	if len(stale) > 0 {
		kept, err := index.without(stale, len(forIndex))
		if err != nil {
			return nil, err
		}
		if !kept {
			return referrers, nil
		}
	}
	if dry {
		opts.Logger().Infof("would copy the referrers index of %s to %s (%d manifests to send)", d, to, len(forIndex))
	} else {
		if err := writeManifest(ctx, opts, to, index.Raw); err != nil {
			return nil, err
		}
		opts.Logger().WithField("digest", index.Digest).Infof("copied the referrers index of %s to %s", d, to)
	}
	rep.Copied = append(rep.Copied, index.Copied)
	return referrers, nil
}

// describeReferrer reads src@r and checks that it is a referrer of
// subject; it returns the descriptor its own bytes give (media type, size,
// artifact type, annotations), as the tag schema wants. ErrAbsent when the
// source does not serve it.
func describeReferrer(ctx context.Context, opts Options, src reference.Named, r, subject digest.Digest) (imgspecv1.Descriptor, error) {
	a, from, err := readDigest(ctx, opts, src, r)
	if err != nil {
		return imgspecv1.Descriptor{}, err
	}
	defer a.Close()
	if err := checkReferrer(a, from, subject); err != nil {
		return imgspecv1.Descriptor{}, err
	}
	m := a.Manifest
	mt := m.MediaType
	if mt == "" {
		mt = imgspecv1.MediaTypeImageManifest
	}
	at := m.ArtifactType
	if at == "" && mt == imgspecv1.MediaTypeImageManifest {
		at = m.Config.MediaType
	}
	return imgspecv1.Descriptor{MediaType: mt, Digest: r, Size: int64(len(a.Raw)), ArtifactType: at, Annotations: m.Annotations}, nil
}

// checkReferrer refuses a manifest that does not name subject as its
// subject (a registry cannot attach another image's referrer to this one)
// or is neither an image manifest nor an index.
func checkReferrer(a *Attachment, from reference.Named, subject digest.Digest) error {
	if a.Manifest.Subject == nil || a.Manifest.Subject.Digest != subject {
		return &errs.IntegrityError{What: "referrer " + from.String(), Check: "subject", Expected: subject.String(), Actual: SubjectOf(a.Manifest)}
	}
	switch a.Manifest.MediaType {
	case imgspecv1.MediaTypeImageManifest, imgspecv1.MediaTypeImageIndex:
	case "":
		if a.Manifest.Config.MediaType == "" {
			return &errs.IntegrityError{What: "referrer " + from.String(), Check: "content: no media type and no config: neither an image manifest nor an index"}
		}
	default:
		return &errs.IntegrityError{What: "referrer " + from.String(), Check: fmt.Sprintf("media type %q: neither an OCI image manifest nor an index", a.Manifest.MediaType)}
	}
	return nil
}

// TagSchemaList is what the tag-schema index at tag lists (nothing when
// there is none).
func TagSchemaList(ctx context.Context, opts Options, tag reference.NamedTagged) ([]imgspecv1.Descriptor, error) {
	a, err := Read(ctx, opts, tag)
	if errors.Is(err, ErrAbsent) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer a.Close()
	idx, err := parseReferrers(a.Raw, tag)
	if err != nil {
		return nil, err
	}
	return idx.Manifests, nil
}

func containsDigest(list []imgspecv1.Descriptor, d digest.Digest) bool {
	return slices.ContainsFunc(list, func(m imgspecv1.Descriptor) bool { return m.Digest == d })
}

// referrersIndex is the tag-schema index to write on the destination.
type referrersIndex struct {
	Copied
	Raw []byte
}

// without drops the entries for gone from the index; false when that
// leaves nothing of what was to be added (toAdd entries): nothing to write.
func (x *referrersIndex) without(gone []digest.Digest, toAdd int) (bool, error) {
	if len(gone) >= toAdd {
		return false, nil
	}
	var idx imgspecv1.Index
	if err := json.Unmarshal(x.Raw, &idx); err != nil {
		return false, err
	}
	idx.Manifests = slices.DeleteFunc(idx.Manifests, func(m imgspecv1.Descriptor) bool { return slices.Contains(gone, m.Digest) })
	raw, err := json.Marshal(idx)
	if err != nil {
		return false, err
	}
	x.Raw, x.Digest = raw, digest.FromBytes(raw).String()
	return true, nil
}

// planReferrersIndex compares the index the destination should have under
// to (the entries want) with the one it has. It returns nil when nothing
// is missing, else the index to write, with the referrers it lists that
// must be sent first. The source's index bytes are kept when the
// destination has none and want adds nothing to them.
func planReferrersIndex(ctx context.Context, opts Options, to reference.NamedTagged, a *Attachment, srcIdx *imgspecv1.Index, want []imgspecv1.Descriptor) (*referrersIndex, []imgspecv1.Descriptor, error) {
	have, err := Read(ctx, opts, to)
	switch {
	case errors.Is(err, ErrAbsent):
		var raw []byte
		if srcIdx != nil && len(want) == len(srcIdx.Manifests) {
			raw = a.Raw
		} else if raw, err = newReferrersIndex(srcIdx, want); err != nil {
			return nil, nil, err
		}
		return &referrersIndex{Copied: Copied{Tag: to.Tag(), Digest: digest.FromBytes(raw).String()}, Raw: raw}, want, nil
	case err != nil:
		return nil, nil, err
	}
	defer have.Close()
	cur, err := parseReferrers(have.Raw, to)
	if err != nil {
		return nil, nil, err
	}
	missing := MissingManifests(cur.Manifests, want)
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
	return &referrersIndex{Copied: Copied{Tag: to.Tag(), Digest: digest.FromBytes(raw).String(), Merged: true}, Raw: raw}, missing, nil
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

// ListReferrers asks repo's registry for the referrers of d through the
// OCI 1.1 referrers API; supported is false where it has none.
func ListReferrers(ctx context.Context, opts Options, repo reference.Named, d digest.Digest) (list []imgspecv1.Descriptor, supported bool, err error) {
	l, err := opts.cache.referrerList(repo, d, func() (listing, error) {
		var l listing
		c, err := opts.Hosts.Client(repo)
		if err != nil {
			return l, err
		}
		err = opts.Retry(ctx, "list the referrers of "+d.String(), func() error {
			var err error
			l.list, l.supported, err = c.Referrers(ctx, d)
			return err
		})
		return l, err
	})
	return l.list, l.supported, err
}

// writeManifest writes raw under to.
func writeManifest(ctx context.Context, opts Options, to reference.Named, raw []byte) error {
	w, err := NewWriter(ctx, opts, to)
	if err != nil {
		return err
	}
	defer w.Close()
	return w.PutManifest(ctx, raw)
}

// parseReferrers reads a tag-schema index: an OCI image index (with its
// media type) whose every entry is a digest and a size
// (remote.ParseReferrersIndex); anything else under the tag is not ours to
// copy, and is an integrity failure.
func parseReferrers(raw []byte, ref reference.Named) (*imgspecv1.Index, error) {
	var head struct {
		MediaType string `json:"mediaType"`
	}
	if err := json.Unmarshal(raw, &head); err != nil || head.MediaType != imgspecv1.MediaTypeImageIndex {
		return nil, &errs.IntegrityError{What: ref.String(), Check: "content: not an OCI image index (referrers tag schema)"}
	}
	idx, err := remote.ParseReferrersIndex(raw)
	if err != nil {
		return nil, &errs.IntegrityError{What: ref.String(), Check: "content (referrers tag schema): " + err.Error()}
	}
	return idx, nil
}

// MissingManifests are the entries of want that have lacks, by digest.
func MissingManifests(have, want []imgspecv1.Descriptor) []imgspecv1.Descriptor {
	var out []imgspecv1.Descriptor
	for _, m := range want {
		if !slices.ContainsFunc(have, func(h imgspecv1.Descriptor) bool { return h.Digest == m.Digest }) {
			out = append(out, m)
		}
	}
	return out
}

// maxIndexReferrerManifests bounds the manifests an index referrer may
// list.
const maxIndexReferrerManifests = 64

// copyManifest copies one referrer by digest (an OCI image manifest, or
// an index whose manifests go first), its config and layers first, each
// checked against its digest on the way; the referrer must hash to desc's
// digest, be desc's size and name subject as its subject.
func copyManifest(ctx context.Context, src, dst reference.Named, desc imgspecv1.Descriptor, subject digest.Digest, c *Copied, opts Options, dry bool) error {
	return sendManifest(ctx, src, dst, desc, c, opts, dry, func(a *Attachment, from reference.Named) error {
		return checkReferrer(a, from, subject)
	})
}

// sendManifest copies src@desc to dst by digest when check accepts it:
// an index's manifests first (image manifests only), an image manifest's
// config and layers first.
func sendManifest(ctx context.Context, src, dst reference.Named, desc imgspecv1.Descriptor, c *Copied, opts Options, dry bool, check func(*Attachment, reference.Named) error) error {
	a, from, err := readDigest(ctx, opts, src, desc.Digest)
	if errors.Is(err, ErrAbsent) {
		return errs.NotFoundf("%s: listed but not on the registry", from)
	}
	if err != nil {
		return err
	}
	defer a.Close()
	to, err := reference.WithDigest(reference.TrimNamed(dst), desc.Digest)
	if err != nil {
		return err
	}
	raw := a.Raw
	if int64(len(raw)) != desc.Size {
		return &errs.IntegrityError{What: "manifest " + from.String(), Check: "size", Expected: fmt.Sprint(desc.Size), Actual: fmt.Sprint(len(raw))}
	}
	if err := check(a, from); err != nil {
		return err
	}
	if err := tooLarge(a, from); err != nil {
		return err
	}
	if a.Manifest.MediaType == imgspecv1.MediaTypeImageIndex {
		var idx imgspecv1.Index
		if err := json.Unmarshal(raw, &idx); err != nil {
			return &errs.IntegrityError{What: from.String(), Check: "content: not an OCI image index: " + err.Error()}
		}
		if len(idx.Manifests) > maxIndexReferrerManifests {
			return &errs.IntegrityError{What: from.String(), Check: fmt.Sprintf("an index referrer with %d manifests, more than %d", len(idx.Manifests), maxIndexReferrerManifests)}
		}
		for _, m := range idx.Manifests {
			err := sendManifest(ctx, src, dst, m, c, opts, dry, func(a *Attachment, from reference.Named) error {
				if a.Manifest.MediaType != imgspecv1.MediaTypeImageManifest {
					return &errs.IntegrityError{What: from.String(), Check: fmt.Sprintf("media type %q in an index referrer: want an image manifest", a.Manifest.MediaType)}
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
	}
	w, err := NewWriter(ctx, opts, to)
	if err != nil {
		return err
	}
	defer w.Close()
	for _, b := range append([]imgspecv1.Descriptor{a.Manifest.Config}, a.Manifest.Layers...) {
		if b.Digest == "" {
			continue
		}
		ok, err := w.Has(ctx, b.Digest)
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
		if _, err := copyBlob(ctx, a, w, b); err != nil {
			return err
		}
	}
	if dry {
		return nil
	}
	return w.PutManifest(ctx, raw)
}

// SubjectOf is the digest m names as its subject, or "none".
func SubjectOf(m imgspecv1.Manifest) string {
	if m.Subject == nil {
		return "none"
	}
	return m.Subject.Digest.String()
}

// MaxReferrerCandidates bounds how many referrers of one artifact type
// EachReferrer reads.
const MaxReferrerCandidates = 256

// EachReferrer calls fn with each referrer of ref (from the referrers API
// and the tag schema's index) whose artifact type is artifactType, at most
// MaxReferrerCandidates of them: each manifest read by digest, checked
// against it, and required to name ref as its subject (another image's is
// an integrity error); a listed referrer the registry does not serve is
// skipped. Each is closed when fn returns; fn returning false stops.
func EachReferrer(ctx context.Context, ref reference.Canonical, artifactType string, opts Options, fn func(*Attachment) bool) error {
	d := ref.Digest()
	list, _, err := ListReferrers(ctx, opts, ref, d)
	if err != nil {
		return err
	}
	tag, err := ReferrersTag(d)
	if err != nil {
		return err
	}
	tagged, err := reference.WithTag(reference.TrimNamed(ref), tag)
	if err != nil {
		return err
	}
	inTag, err := TagSchemaList(ctx, opts, tagged)
	if err != nil {
		return err
	}
	list = append(list, MissingManifests(list, inTag)...)
	seen := 0
	for _, m := range list {
		if m.ArtifactType != "" && m.ArtifactType != artifactType {
			continue
		}
		if seen++; seen > MaxReferrerCandidates {
			opts.Logger().Warnf("%s: more than %d referrers of type %s: the rest are not read", ref, MaxReferrerCandidates, artifactType)
			return nil
		}
		a, at, err := readDigest(ctx, opts, ref, m.Digest)
		if errors.Is(err, ErrAbsent) {
			opts.Logger().Warnf("%s is listed as a referrer but not on the registry: skipped", at)
			continue
		}
		if err != nil {
			return err
		}
		if a.Manifest.ArtifactType != artifactType && a.Manifest.Config.MediaType != artifactType {
			a.Close()
			continue
		}
		if a.Manifest.Subject == nil || a.Manifest.Subject.Digest != d {
			a.Close()
			return &errs.IntegrityError{What: "referrer " + at.String(), Check: "subject", Expected: d.String(), Actual: SubjectOf(a.Manifest)}
		}
		more := fn(a)
		a.Close()
		if !more {
			return nil
		}
	}
	return nil
}
