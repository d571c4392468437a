package attachments

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/agentforge/agentforge/images/errs"
	"github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker/reference"
	"golang.org/x/sync/errgroup"
)

// Copied is one attachment copied by a Copier.
type Copied struct {
	// Tag is the attachment's tag, sha256-<hex>.sig (.att, .sbom), or the
	// referrers tag schema's sha256-<hex>; empty for a referrer copied by
	// digest alone (Referrer).
	Tag string `json:"tag,omitempty"`
	// Digest is the attachment manifest's digest, the same on both sides.
	Digest string `json:"digest"`
	// Referrer is true for a manifest the source's OCI 1.1 referrers API
	// listed, copied by digest to a destination that has that API (which
	// then lists it in turn).
	Referrer bool `json:"referrer,omitempty"`
	// Blobs and Bytes count the blobs sent (the destination lacked them).
	// A merge's dry run counts the configs it would write but not their
	// bytes, which are known only once they are made.
	Blobs int   `json:"blobs"`
	Bytes int64 `json:"bytes"`
	// Merged is true when the destination had other signatures (or
	// attestations) under the tag: they are kept and the source's missing
	// ones added after them.
	Merged bool `json:"merged,omitempty"`
}

// Report says what a Copier did.
type Report struct {
	Copied []Copied `json:"copied"`
	// Unchanged counts the attachments the destination already had, byte
	// for byte.
	Unchanged int `json:"unchanged"`
	// Skipped are referrers the source listed but could not be copied
	// (it does not serve them).
	Skipped []Skipped `json:"skipped,omitempty"`
}

// Skipped is a referrer not copied, and why.
type Skipped struct {
	Digest string `json:"digest"`
	Reason string `json:"reason"`
}

// skipped reports whether rep skipped d.
func (rep *Report) skipped(d digest.Digest) bool {
	for _, s := range rep.Skipped {
		if s.Digest == d.String() {
			return true
		}
	}
	return false
}

// has reports whether rep copied the referrer d by digest.
func (rep *Report) has(d digest.Digest) bool {
	for _, c := range rep.Copied {
		if c.Referrer && c.Digest == d.String() {
			return true
		}
	}
	return false
}

// Copier copies the attachments of an image between registries: cosign's
// sha256-<hex>.sig, .att and .sbom, and the OCI 1.1 referrers (the tag
// schema's sha256-<hex> index with every referrer it lists, and what the
// source's referrers API lists), byte for byte.
type Copier struct {
	Options
	// DryRun writes nothing: the report says what would be copied (and
	// which blobs sent). A destination repository that does not exist yet
	// cannot say whether its registry has the referrers API (registries
	// answer 404 for both): it is planned as one without (a tag-schema
	// index), where the real run, which copies the image first, may send
	// referrers by digest alone; the blobs sent are the same.
	DryRun bool
}

// Copy copies the attachments of the manifest d from the repository src
// to dst: the blobs the destination lacks first, then the manifest under
// the same tag, so that its digest is the same on both sides. An
// attachment the source lacks is skipped; one the destination already has
// with the same bytes is counted as unchanged (a second run copies
// nothing). One the destination has with other layers is merged: its own
// layers are kept and the source's missing ones added (reported as
// Merged), so a mirror never loses a signature it had. Blobs are checked
// against their digests as they are read; referrers must name d (or a
// referrer of d) as their subject.
func (c *Copier) Copy(ctx context.Context, src, dst reference.Named, d digest.Digest) (*Report, error) {
	return c.copy(ctx, src, dst, d, partAll)
}

// CopyTagged is the part of Copy that names d by tag alone: d's cosign
// signatures, attestations and SBOM (sha256-<hex>.sig, .att, .sbom).
// Nothing in them needs d on the destination, so a mirror sends them while
// it sends the image. CopyReferrers is the rest of Copy.
func (c *Copier) CopyTagged(ctx context.Context, src, dst reference.Named, d digest.Digest) (*Report, error) {
	return c.copy(ctx, src, dst, d, partTagged)
}

// CopyReferrers is Copy but for CopyTagged's part: d's OCI 1.1 referrers
// and, as deep as Copy goes, their own attachments and referrers. It
// belongs after the image: whether the destination has the referrers API
// is known once the repository exists.
func (c *Copier) CopyReferrers(ctx context.Context, src, dst reference.Named, d digest.Digest) (*Report, error) {
	return c.copy(ctx, src, dst, d, partReferrers)
}

// part is what of d's own attachments a copy takes (its referrers' are
// always copied whole).
type part int

const (
	partAll part = iota
	partTagged
	partReferrers
)

func (c *Copier) copy(ctx context.Context, src, dst reference.Named, d digest.Digest, only part) (*Report, error) {
	o := c.Options
	if o.cache.holds(dst) {
		o.cache = nil // what is read from the destination is never stale
	}
	// The bound on what one copy writes is checked on the plan, before
	// anything is written.
	if err := c.Plan(ctx, src, []digest.Digest{d}); err != nil {
		return &Report{Copied: []Copied{}}, err
	}
	if err := o.Check(); err != nil {
		return nil, err
	}
	rep := &Report{Copied: []Copied{}}
	err := copyAttachmentsOf(ctx, src, dst, d, o, c.DryRun, rep, map[digest.Digest]bool{}, 0, only)
	return rep, err
}

// Add adds what o reports to r.
func (r *Report) Add(o *Report) {
	if o == nil {
		return
	}
	r.Copied = append(r.Copied, o.Copied...)
	r.Unchanged += o.Unchanged
	r.Skipped = append(r.Skipped, o.Skipped...)
}

// Plan counts, from the source's listings alone (its tag-schema indexes
// and its referrers API, read through what Prefetch fetched), the
// manifests a copy of digests from src would write or follow: digests
// themselves and their referrers, and theirs, as deep as Copy goes. More
// than maxReferrerNodes in all is an *errs.IntegrityError, before anything
// is written. Copy plans what it copies; a mirror plans every digest of
// the image before it sends the image itself.
func (c *Copier) Plan(ctx context.Context, src reference.Named, digests []digest.Digest) error {
	o := c.Options
	if err := o.Check(); err != nil {
		return err
	}
	seen := map[digest.Digest]bool{}
	count := func(d digest.Digest) error {
		if seen[d] {
			return nil
		}
		seen[d] = true
		if len(seen) > maxReferrerNodes {
			return &errs.IntegrityError{What: src.String() + " referrers", Check: fmt.Sprintf("more than %d manifests with signatures, attestations or referrers in all (counted before anything was copied)", maxReferrerNodes)}
		}
		return nil
	}
	level := digests
	for _, d := range level {
		if err := count(d); err != nil {
			return err
		}
	}
	followed := map[digest.Digest]bool{}
	for depth := 0; depth <= maxReferrerDepth && len(level) > 0; depth++ {
		var next []digest.Digest
		for _, d := range level {
			if followed[d] || d.Validate() != nil || d.Algorithm() != digest.SHA256 {
				continue
			}
			followed[d] = true
			listed, err := listedReferrers(ctx, o, src, d)
			if err != nil {
				return err
			}
			for _, r := range listed {
				if err := count(r); err != nil {
					return err
				}
				next = append(next, r)
			}
		}
		level = next
	}
	return nil
}

// listedReferrers are the digests src lists as referrers of d: in the tag
// schema's index and through the referrers API.
func listedReferrers(ctx context.Context, o Options, src reference.Named, d digest.Digest) ([]digest.Digest, error) {
	tag, err := ReferrersTag(d)
	if err != nil {
		return nil, err
	}
	tagged, err := reference.WithTag(reference.TrimNamed(src), tag)
	if err != nil {
		return nil, err
	}
	inTag, err := TagSchemaList(ctx, o, tagged)
	if err != nil {
		return nil, err
	}
	api, _, err := ListReferrers(ctx, o, src, d)
	if err != nil {
		return nil, err
	}
	var out []digest.Digest
	for _, m := range append(inTag, api...) {
		out = append(out, m.Digest)
	}
	return out, nil
}

// Prefetch starts reading, in the background, what Copy will read from
// src for each of digests: cosign's attachments, the tag schema's index,
// the referrers API's listing, every referrer and their blobs, three
// levels deep. A mirror calls it while the image's blobs are copied, so
// that the lookups do not wait for them; every Copy from src afterwards
// reads from what was fetched (each thing is asked of the source once,
// whatever the number of destinations). Failures are not reported here:
// Copy meets them again and reports them.
func (c *Copier) Prefetch(ctx context.Context, src reference.Named, digests []digest.Digest) {
	c.prefetch(ctx, src, digests)
}

// Snapshot is Prefetch that returns once everything is read: Copy from
// src then copies what src had at this moment, not what is added there
// later (by a run that signs src while it copies from it).
func (c *Copier) Snapshot(ctx context.Context, src reference.Named, digests []digest.Digest) {
	c.prefetch(ctx, src, digests).Wait()
}

func (c *Copier) prefetch(ctx context.Context, src reference.Named, digests []digest.Digest) *sync.WaitGroup {
	c.Options.cache = newReadCache(src)
	o := c.Options
	var nodes sync.Map
	var walk func(d digest.Digest, depth int)
	read := func(ref reference.Named) *Attachment {
		a, err := Read(ctx, o, ref)
		if err != nil {
			return nil
		}
		for _, l := range append(a.Manifest.Layers, a.Manifest.Config) {
			if l.Size > 0 && l.Size <= maxCachedBlob {
				a.Blob(ctx, l)
			}
		}
		return a
	}
	walk = func(d digest.Digest, depth int) {
		if _, seen := nodes.LoadOrStore(d, true); seen || depth > maxReferrerDepth || d.Validate() != nil || d.Algorithm() != digest.SHA256 {
			return
		}
		var wg sync.WaitGroup
		for _, suffix := range []string{SuffixSignature, SuffixAttestation, SuffixSBOM, ""} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ref, err := TagRef(src, d, suffix)
				if suffix == "" {
					var tag string
					if tag, err = ReferrersTag(d); err == nil {
						ref, err = reference.WithTag(reference.TrimNamed(src), tag)
					}
				}
				if err != nil {
					return
				}
				if a := read(ref); a != nil && suffix == "" {
					if idx, err := parseReferrers(a.Raw, a.Ref); err == nil {
						walkAll(idx.Manifests, src, depth, read, walk)
					}
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if list, _, err := ListReferrers(ctx, o, src, d); err == nil {
				walkAll(list, src, depth, read, walk)
			}
		}()
		wg.Wait()
	}
	var all sync.WaitGroup
	for _, d := range digests {
		all.Add(1)
		go func() {
			defer all.Done()
			walk(d, 0)
		}()
	}
	return &all
}

// walkAll reads each referrer listed and walks its own referrers.
func walkAll(list []imgspecv1.Descriptor, src reference.Named, depth int, read func(reference.Named) *Attachment, walk func(digest.Digest, int)) {
	for i, m := range list {
		if i >= MaxReferrerCandidates {
			return
		}
		if at, err := reference.WithDigest(reference.TrimNamed(src), m.Digest); err == nil && read(at) != nil {
			walk(m.Digest, depth+1)
		}
	}
}

// copyAttachmentsOf copies the attachments and referrers of d into rep
// (only part of them, as only says), then those of each referrer (a
// signature of an SBOM that refers to the image), maxReferrerDepth deep;
// seen stops cycles and bounds the walk.
func copyAttachmentsOf(ctx context.Context, src, dst reference.Named, d digest.Digest, opts Options, dry bool, rep *Report, seen map[digest.Digest]bool, depth int, only part) error {
	if seen[d] || depth > maxReferrerDepth {
		return nil
	}
	if err := d.Validate(); err != nil {
		return &errs.IntegrityError{What: src.String() + " referrer " + fmt.Sprintf("%q", d), Check: "digest: " + err.Error()}
	}
	if d.Algorithm() != digest.SHA256 {
		// Attachment tags and the tag schema exist for sha256 only.
		opts.Logger().Debugf("%s: not a sha256 digest: its own referrers are not looked up", d)
		return nil
	}
	if len(seen) >= maxReferrerNodes {
		return &errs.IntegrityError{What: src.String() + " referrers", Check: fmt.Sprintf("more than %d manifests with signatures, attestations or referrers in all", maxReferrerNodes)}
	}
	seen[d] = true
	if only != partReferrers {
		if err := copyTagged(ctx, src, dst, d, opts, dry, rep); err != nil {
			return err
		}
	}
	if only == partTagged {
		return nil
	}
	// OCI 1.1 referrers: the tag schema's index (sha256-<hex>, as cosign's
	// OCI 1.1 mode and oras write it on registries without the referrers
	// API) and the referrers API's list.
	referrers, err := copyReferrers(ctx, src, dst, d, opts, dry, rep)
	if err != nil {
		return err
	}
	for _, r := range referrers {
		if rep.skipped(r) {
			continue // not on the destination: neither are its own
		}
		if err := copyAttachmentsOf(ctx, src, dst, r, opts, dry, rep, seen, depth+1, partAll); err != nil {
			return err
		}
	}
	return nil
}

// copyTagged copies d's attachments under the cosign tags into rep.
func copyTagged(ctx context.Context, src, dst reference.Named, d digest.Digest, opts Options, dry bool, rep *Report) error {
	for _, suffix := range []string{SuffixSignature, SuffixAttestation, SuffixSBOM} {
		c, err := copyAttachment(ctx, src, dst, d, suffix, opts, dry)
		var skip *skipError
		if errors.As(err, &skip) {
			opts.Logger().Warnf("%s: not copied: %s", skip.what, skip.reason)
			rep.Skipped = append(rep.Skipped, Skipped{Digest: skip.digest.String(), Reason: skip.reason})
			continue
		}
		if err != nil {
			return err
		}
		switch {
		case c == nil:
		case c.Digest == "":
			rep.Unchanged++
		default:
			rep.Copied = append(rep.Copied, *c)
		}
	}
	return nil
}

// copyAttachment copies one attachment (or, when dry, says what it would
// send); nil when the source has none, a zero Copied when the destination
// has it already.
func copyAttachment(ctx context.Context, src, dst reference.Named, d digest.Digest, suffix string, opts Options, dry bool) (*Copied, error) {
	tag, err := AttachmentTag(d, suffix)
	if err != nil {
		return nil, err
	}
	to, a, err := sourceAttachment(ctx, opts, src, dst, tag)
	if a == nil {
		return nil, err
	}
	defer a.Close()
	from := a.Ref
	c := &Copied{Tag: to.Tag(), Digest: digest.FromBytes(a.Raw).String()}
	have, err := Read(ctx, opts, to)
	switch {
	case errors.Is(err, ErrAbsent):
	case err != nil:
		return nil, err
	default:
		defer have.Close()
		missing := missingLayers(have.Manifest.Layers, a.Manifest.Layers)
		if bytes.Equal(have.Raw, a.Raw) || len(missing) == 0 {
			return &Copied{}, nil
		}
		// The destination has signatures of its own (a mirror signing
		// with its key, say): a mirror run must never drop them.
		return mergeAttachment(ctx, a, have, to, missing, c, opts, dry)
	}
	if err := tooLarge(a, from); err != nil {
		return nil, err
	}
	w, err := NewWriter(ctx, opts, to)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	// The blobs go at once (a signature's payload and config, an SBOM's
	// layers); each upload asks the registry first and sends only what
	// it lacks.
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	seen := map[digest.Digest]bool{}
	for _, desc := range append(a.Manifest.Layers, a.Manifest.Config) {
		// Several signatures over one payload name one blob: it goes once.
		if seen[desc.Digest] {
			continue
		}
		seen[desc.Digest] = true
		g.Go(func() error {
			var sent bool
			var err error
			if dry {
				if sent, err = w.Has(gctx, desc.Digest); err == nil {
					sent = !sent
				}
			} else {
				sent, err = copyBlob(gctx, a, w, desc)
			}
			if err != nil {
				return fmt.Errorf("%s: blob %s: %w", to, desc.Digest, err)
			}
			if sent {
				mu.Lock()
				c.Blobs++
				c.Bytes += desc.Size
				mu.Unlock()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if dry {
		opts.Logger().WithField("digest", c.Digest).Infof("would copy %s to %s (%d blobs, %d bytes)", from, to, c.Blobs, c.Bytes)
		return c, nil
	}
	if err := w.PutManifest(ctx, a.Raw); err != nil {
		return nil, err
	}
	opts.Logger().WithField("digest", c.Digest).Infof("copied %s to %s", from, to)
	return c, nil
}

// missingLayers are the layers of want that have lacks: a layer is its
// blob and its annotations (two signatures of one digest share the payload
// blob and differ in the signature annotation).
func missingLayers(have, want []imgspecv1.Descriptor) []imgspecv1.Descriptor {
	key := func(l imgspecv1.Descriptor) string {
		return l.Digest.String() + "\x00" + l.Annotations[AnnotationSignature] + "\x00" + l.Annotations[AnnotationPredicate]
	}
	seen := map[string]bool{}
	for _, l := range have {
		seen[key(l)] = true
	}
	var out []imgspecv1.Descriptor
	for _, l := range want {
		if !seen[key(l)] {
			out = append(out, l)
		}
	}
	return out
}

// mergeAttachment adds the source's missing layers after the destination's
// own, keeping everything the destination had.
func mergeAttachment(ctx context.Context, a, have *Attachment, to reference.NamedTagged, missing []imgspecv1.Descriptor, c *Copied, opts Options, dry bool) (*Copied, error) {
	c.Merged = true
	if !dry {
		if err := tooLarge(a, a.Ref); err != nil {
			return nil, err
		}
	}
	w, err := NewWriter(ctx, opts, to)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	if dry {
		// What the merge would send: each layer blob the destination
		// lacks, once, and the new config each append writes (its bytes
		// are known only once it is made).
		lacks := map[digest.Digest]bool{}
		for _, l := range missing {
			has, err := w.Has(ctx, l.Digest)
			if err != nil {
				return nil, fmt.Errorf("%s: blob %s: %w", to, l.Digest, err)
			}
			if !has && !lacks[l.Digest] {
				lacks[l.Digest] = true
				c.Blobs++
				c.Bytes += l.Size
			}
			c.Blobs++
		}
		opts.Logger().Infof("would add %d layers of %s to %s, keeping its own", len(missing), a.Ref, to)
		return c, nil
	}
	cur := have
	for _, l := range missing {
		sent, err := copyBlob(ctx, a, w, l)
		if err != nil {
			return nil, err
		}
		_, cfg, err := appendLayer(ctx, w, cur, l)
		if err != nil {
			return nil, fmt.Errorf("merge into %s: %w", to, err)
		}
		if sent {
			c.Blobs++
			c.Bytes += l.Size
		}
		if cfg != nil {
			c.Blobs++
			c.Bytes += cfg.Size
		}
		next, err := Read(ctx, opts.Uncached(), to)
		if err != nil {
			return nil, fmt.Errorf("merge into %s: %w", to, err)
		}
		if len(missingLayers(next.Manifest.Layers, []imgspecv1.Descriptor{l})) > 0 {
			return nil, fmt.Errorf("merge into %s: the registry does not serve the layer %s it accepted", to, l.Digest)
		}
		if cur != have {
			cur.Close()
		}
		cur = next
	}
	c.Digest = digest.FromBytes(cur.Raw).String()
	if cur != have {
		cur.Close()
	}
	opts.Logger().WithField("digest", c.Digest).Infof("added %d layers of %s to %s, keeping its own", len(missing), a.Ref, to)
	return c, nil
}

// sourceAttachment reads src:tag, to be copied to dst:tag (returned). The
// attachment is nil, with a nil error, when the source has none.
func sourceAttachment(ctx context.Context, opts Options, src, dst reference.Named, tag string) (reference.NamedTagged, *Attachment, error) {
	from, err := reference.WithTag(reference.TrimNamed(src), tag)
	if err != nil {
		return nil, nil, err
	}
	to, err := reference.WithTag(reference.TrimNamed(dst), tag)
	if err != nil {
		return nil, nil, err
	}
	a, err := Read(ctx, opts, from)
	if errors.Is(err, ErrAbsent) {
		return to, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	return to, a, nil
}

// skipError is an attachment or referrer that is not copied, for a reason
// that does not fail the image's copy (it is reported in Report.Skipped).
type skipError struct {
	what   string
	digest digest.Digest
	reason string
}

func (e *skipError) Error() string { return e.what + ": " + e.reason }

// tooLarge refuses, as a skipError, an attachment or referrer holding a
// blob larger than MaxReferrerBlob, before any of it is copied.
func tooLarge(a *Attachment, from reference.Named) error {
	for _, b := range append([]imgspecv1.Descriptor{a.Manifest.Config}, a.Manifest.Layers...) {
		if b.Size > MaxReferrerBlob {
			return &skipError{what: from.String(), digest: digest.FromBytes(a.Raw),
				reason: fmt.Sprintf("blob %s is %d bytes, more than the %d a copy streams (MaxReferrerBlob)", b.Digest, b.Size, MaxReferrerBlob)}
		}
	}
	return nil
}
