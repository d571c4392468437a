package attachments

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/images/progress"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sirupsen/logrus"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/types"
)

// Media types and annotations of cosign's attachments.
const (
	MediaTypeSimpleSigning = "application/vnd.dev.cosign.simplesigning.v1+json"
	MediaTypeDSSE          = "application/vnd.dsse.envelope.v1+json"
	AnnotationSignature    = "dev.cosignproject.cosign/signature"
	AnnotationPredicate    = "predicateType"
)

// Suffixes of cosign's attachment tags (sha256-<hex>.<suffix>).
const (
	SuffixSignature   = "sig"
	SuffixAttestation = "att"
	SuffixSBOM        = "sbom"
)

// MaxSize bounds what is read into memory of an attachment's manifest,
// config or layer: signatures are a few hundred bytes, an SBOM a few MiB.
// A larger blob is streamed when it is copied (copyBlob), never read.
const MaxSize = 64 << 20

// MaxReferrerBlob bounds the blobs a copy streams from one registry to
// the other (a large file attached with oras): a signature, attestation
// or referrer holding a larger one is skipped, and reported, not copied.
var MaxReferrerBlob int64 = 8 << 30

// Options say how to reach registries and where progress goes.
type Options struct {
	// Hosts is the registry configuration (credentials, CA, insecure
	// hosts, retries). Required.
	Hosts *remote.Hosts
	// Log receives one line per attachment written or copied.
	Log logrus.FieldLogger

	// cache, set by Copier.Prefetch, remembers what was read from the
	// source repository.
	cache *readCache
}

// Logger is where progress goes (a discarding logger when Log is nil).
func (o Options) Logger() logrus.FieldLogger {
	if o.Log == nil {
		return oci.Discard
	}
	return o.Log
}

// Uncached is o reading everything from the registries themselves, not
// from what a Copier prefetched: what was just written is read back.
func (o Options) Uncached() Options {
	o.cache = nil
	return o
}

// Check reports a missing registry configuration as bad input.
func (o Options) Check() error {
	if o.Hosts == nil {
		return errs.Inputf("sign: no registry configuration (Options.Hosts)")
	}
	return nil
}

// Sys is the system context for repo's registry.
func (o Options) Sys(repo reference.Named) *types.SystemContext {
	return o.Hosts.For(reference.Domain(repo))
}

// Retry runs fn under the configured retry policy.
func (o Options) Retry(ctx context.Context, what string, fn func() error) error {
	return o.Hosts.Config().Retry.Do(ctx, o.Logger(), what, fn)
}

// AttachmentTag is cosign's tag for an attachment of the manifest d:
// sha256-<hex>.<suffix>.
func AttachmentTag(d digest.Digest, suffix string) (string, error) {
	if err := d.Validate(); err != nil {
		return "", errs.Inputf("digest %q: %w", d, err)
	}
	if d.Algorithm() != digest.SHA256 {
		return "", errs.Inputf("digest %s: cosign attachments need a sha256 digest", d)
	}
	return d.Algorithm().String() + "-" + d.Encoded() + "." + suffix, nil
}

// TagRef is repo:sha256-<hex>.<suffix>.
func TagRef(repo reference.Named, d digest.Digest, suffix string) (reference.NamedTagged, error) {
	tag, err := AttachmentTag(d, suffix)
	if err != nil {
		return nil, err
	}
	return reference.WithTag(reference.TrimNamed(repo), tag)
}

// ErrAbsent is a manifest the registry does not have (404).
var ErrAbsent = errors.New("not on the registry")

// Attachment is an attachment manifest read from a registry (a cosign
// .sig, .att or .sbom, a referrer, a tag-schema index). Its blobs are read
// with Blob. Close it when done.
type Attachment struct {
	// Ref is where it was read: repo:tag or repo@digest.
	Ref reference.Named
	// Raw is the manifest as the registry served it.
	Raw []byte
	// Manifest is Raw parsed.
	Manifest imgspecv1.Manifest

	o Options
}

// Close releases the attachment. (It holds nothing open today; callers
// close it so that it may.)
func (a *Attachment) Close() {}

// Read reads the manifest at ref (a tag or digest), or returns ErrAbsent,
// through the repository's client (one connection pool and token per
// repository) and the retry policy. A manifest read by digest is checked
// against it: other bytes are an *errs.IntegrityError, whoever asked.
// Under a Copier that prefetched ref's repository, what was read is not
// asked again.
func Read(ctx context.Context, o Options, ref reference.Named) (*Attachment, error) {
	raw, err := o.cache.manifest(ref, func() ([]byte, error) { return readManifest(ctx, o, ref) })
	if err != nil {
		return nil, err
	}
	a := &Attachment{Ref: ref, Raw: raw, o: o}
	if err := json.Unmarshal(a.Raw, &a.Manifest); err != nil {
		return nil, &errs.IntegrityError{What: "attachment " + ref.String(), Check: "content: not an image manifest: " + err.Error()}
	}
	return a, nil
}

// readDigest is Read of the manifest d in repo's repository (checked
// against d), with the reference it read: where an error says what was
// asked for.
func readDigest(ctx context.Context, o Options, repo reference.Named, d digest.Digest) (*Attachment, reference.Canonical, error) {
	at, err := reference.WithDigest(reference.TrimNamed(repo), d)
	if err != nil {
		return nil, nil, fmt.Errorf("%s@%s: %w", repo.Name(), d, err)
	}
	a, err := Read(ctx, o, at)
	return a, at, err
}

func readManifest(ctx context.Context, o Options, ref reference.Named) ([]byte, error) {
	c, err := o.Hosts.Client(ref)
	if err != nil {
		return nil, err
	}
	var raw []byte
	err = o.Retry(ctx, "read "+ref.String(), func() error {
		var err error
		raw, err = c.Manifest(ctx, refString(ref), MaxSize)
		return err
	})
	if err != nil {
		if remote.IsNotFound(err) {
			return nil, ErrAbsent
		}
		return nil, fmt.Errorf("read %s: %w", ref, err)
	}
	if d, ok := ref.(reference.Digested); ok {
		// An algorithm this binary has no hash for cannot be checked
		// (reference accepts any name), and FromBytes would panic on it.
		want, got := d.Digest(), digest.FromBytes(raw)
		if want.Algorithm().Available() {
			got = want.Algorithm().FromBytes(raw)
		}
		if got != want {
			return nil, &errs.IntegrityError{What: "manifest " + ref.String(), Check: "digest", Expected: want.String(), Actual: got.String()}
		}
	}
	return raw, nil
}

// refString is a reference's tag or digest, as the manifests endpoint
// takes it.
func refString(ref reference.Named) string {
	if d, ok := ref.(reference.Digested); ok {
		return d.Digest().String()
	}
	if t, ok := ref.(reference.Tagged); ok {
		return t.Tag()
	}
	return "latest"
}

// Blob reads one blob of the attachment (at most MaxSize bytes), with
// retries, and checks it against desc. A read that keeps failing is a
// runtime error, never an integrity error: only content that arrived and
// does not match is.
func (a *Attachment) Blob(ctx context.Context, desc imgspecv1.Descriptor) ([]byte, error) {
	if desc.Size > MaxSize {
		return nil, fmt.Errorf("%s: blob %s: %d bytes, more than %d", a.Ref, desc.Digest, desc.Size, MaxSize)
	}
	data, err := a.o.cache.blob(a.Ref, desc.Digest, desc.Size, func() ([]byte, error) {
		var data []byte
		err := a.o.Retry(ctx, "read blob "+desc.Digest.String(), func() error {
			rc, err := a.openBlob(ctx, desc)
			if err != nil {
				return err
			}
			defer rc.Close()
			// Never more than the descriptor says (and one byte to tell
			// a longer blob): a registry cannot make us read more.
			data, err = io.ReadAll(io.LimitReader(rc, max(desc.Size, 0)+1))
			return err
		})
		return data, err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: blob %s: %w", a.Ref, desc.Digest, err)
	}
	if got := digest.FromBytes(data); got != desc.Digest {
		return nil, &errs.IntegrityError{What: a.Ref.String() + " blob", Check: "digest", Expected: desc.Digest.String(), Actual: got.String()}
	}
	if int64(len(data)) != desc.Size {
		return nil, &errs.IntegrityError{What: a.Ref.String() + " blob " + desc.Digest.String(), Check: "size", Expected: fmt.Sprint(desc.Size), Actual: fmt.Sprint(len(data))}
	}
	return data, nil
}

// openBlob opens one blob of the attachment's repository for reading.
func (a *Attachment) openBlob(ctx context.Context, desc imgspecv1.Descriptor) (io.ReadCloser, error) {
	c, err := a.o.Hosts.Client(a.Ref)
	if err != nil {
		return nil, err
	}
	return c.OpenBlob(ctx, desc.Digest)
}

// Writer puts blobs and a manifest under one tag (or digest) of one
// repository, through the repository's client (the connections and token
// every other call on it uses). Close it when done.
type Writer struct {
	o   Options
	ref reference.Named
	c   *remote.Client
}

// NewWriter opens ref (a tag or digest) for writing.
func NewWriter(_ context.Context, o Options, ref reference.Named) (*Writer, error) {
	c, err := o.Hosts.Client(ref)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", ref, err)
	}
	return &Writer{o: o, ref: ref, c: c}, nil
}

// Close releases the writer. (It holds nothing open today; callers close
// it so that it may.)
func (w *Writer) Close() {}

// Has reports whether the repository already has the blob.
func (w *Writer) Has(ctx context.Context, d digest.Digest) (bool, error) {
	var ok bool
	err := w.o.Retry(ctx, "look up blob "+d.String(), func() error {
		var err error
		ok, err = w.c.HasBlob(ctx, d)
		return err
	})
	return ok, err
}

// Put uploads data as a blob unless the repository has it, and returns
// its descriptor and whether it was sent.
func (w *Writer) Put(ctx context.Context, mediaType string, data []byte) (imgspecv1.Descriptor, bool, error) {
	desc := imgspecv1.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}
	if ok, err := w.Has(ctx, desc.Digest); err != nil || ok {
		return desc, false, err
	}
	err := w.o.Retry(ctx, "upload blob "+desc.Digest.String(), func() error {
		return w.c.PutBlob(ctx, desc.Digest, desc.Size, bytes.NewReader(data))
	})
	if err != nil {
		return desc, false, fmt.Errorf("%s: upload blob %s: %w", w.ref, desc.Digest, err)
	}
	// Read back: a registry that acknowledged the upload must have it.
	if ok, err := w.Has(ctx, desc.Digest); err != nil || !ok {
		return desc, false, fmt.Errorf("%s: the registry accepted blob %s but does not serve it: %w", w.ref, desc.Digest, notServed(err))
	}
	return desc, true, nil
}

// copyBlob copies the blob desc of a to w unless w's repository has it,
// and says whether it was sent. A small blob goes
// through memory (and the read cache); a larger one streams from one
// registry to the other, its sha256 and size checked as it goes, so that
// no size limit but MaxReferrerBlob applies.
func copyBlob(ctx context.Context, a *Attachment, w *Writer, desc imgspecv1.Descriptor) (bool, error) {
	// Asked first, so that a blob the destination has is not read from
	// the source at all (which may no longer serve it).
	if ok, err := w.Has(ctx, desc.Digest); err != nil || ok {
		return false, err
	}
	if desc.Size <= maxCachedBlob {
		data, err := a.Blob(ctx, desc)
		if err != nil {
			return false, err
		}
		_, sent, err := w.Put(ctx, desc.MediaType, data)
		return sent, err
	}
	sent := false
	err := w.o.Retry(ctx, "copy blob "+desc.Digest.String(), func() error {
		rc, err := a.openBlob(ctx, desc)
		if err != nil {
			return err
		}
		defer rc.Close()
		h := sha256.New()
		r := &progress.Counter{R: io.TeeReader(io.LimitReader(rc, desc.Size+1), h)}
		perr := w.c.PutBlob(ctx, desc.Digest, desc.Size, r)
		sent = r.N > 0
		// What the source sent is judged first: other bytes than its
		// digest says are an integrity failure, whatever the destination
		// answered.
		if r.EOF || r.N > desc.Size {
			if got := digest.NewDigest(digest.SHA256, h); got != desc.Digest || r.N != desc.Size {
				return &errs.IntegrityError{What: a.Ref.String() + " blob " + desc.Digest.String(), Check: "sha256 and size", Expected: fmt.Sprintf("%s, %d bytes", desc.Digest, desc.Size), Actual: fmt.Sprintf("%s, %d bytes", got, r.N)}
			}
		}
		return perr
	})
	if err != nil {
		return false, fmt.Errorf("%s: copy blob %s: %w", w.ref, desc.Digest, err)
	}
	if !sent {
		return false, nil
	}
	if ok, err := w.Has(ctx, desc.Digest); err != nil || !ok {
		return false, fmt.Errorf("%s: the registry accepted blob %s but does not serve it: %w", w.ref, desc.Digest, notServed(err))
	}
	return true, nil
}

// PutManifest writes raw under the writer's tag (or digest), then reads
// back what the registry serves there, which must be raw (a registry that
// acknowledges a manifest it does not keep would otherwise let a tag be
// written over a signature that is not there).
func (w *Writer) PutManifest(ctx context.Context, raw []byte) error {
	err := w.o.Retry(ctx, "write "+w.ref.String(), func() error {
		return w.c.PutManifest(ctx, refString(w.ref), manifest.GuessMIMEType(raw), raw)
	})
	if err != nil {
		return fmt.Errorf("write %s: %w", w.ref, err)
	}
	return ReadBack(ctx, w.o, w.ref, digest.FromBytes(raw))
}

// ReadBack checks that the registry serves the manifest want at ref (a
// tag or digest), as it just acknowledged, asking the registry itself
// (nothing cached): the manifest read and hashed, as a pull gets it, not a
// HEAD's Docker-Content-Digest (which a cache in front of the registry
// can answer from a stale entry). A registry that serves nothing there, or other bytes
// (a concurrent writer of the same tag), is a runtime error naming both.
func ReadBack(ctx context.Context, o Options, ref reference.Named, want digest.Digest) error {
	c, err := o.Hosts.Client(ref)
	if err != nil {
		return err
	}
	var got digest.Digest
	err = o.Retry(ctx, "read back "+ref.String(), func() error {
		var err error
		got, err = c.ServedDigest(ctx, refString(ref), want.Algorithm())
		return err
	})
	if err != nil {
		return fmt.Errorf("the registry accepted %s (%s) but does not serve it: %w", ref, want, notServed(err))
	}
	if got != want {
		return &ReplacedError{Ref: ref.String(), Wrote: want, Serves: got}
	}
	return nil
}

// ReplacedError is a tag that, read back right after it was written,
// names another manifest: a concurrent writer's (which may hold what was
// written and more: cosign appends), or a registry keeping the old one.
// Whoever wrote it checks whether what it needed is there.
type ReplacedError struct {
	Ref           string
	Wrote, Serves digest.Digest
}

func (e *ReplacedError) Error() string {
	return fmt.Sprintf("the registry accepted %s as %s but serves %s there", e.Ref, e.Wrote, e.Serves)
}

// notServed is err, or a plain "not there" when the registry answered
// without an error.
func notServed(err error) error {
	if err == nil {
		return errors.New("it is not there")
	}
	return err
}

// ImageManifest reads the manifest of repo@d, checking that the registry
// serves exactly d (another manifest is an *errs.IntegrityError).
func ImageManifest(ctx context.Context, o Options, ref reference.Canonical) ([]byte, error) {
	dref, err := docker.NewReference(ref)
	if err != nil {
		return nil, errs.Inputf("%s: %w", ref, err)
	}
	var raw []byte
	err = o.Retry(ctx, "read "+ref.String(), func() error {
		var err error
		raw, err = oci.Manifest(ctx, dref, o.Sys(ref))
		return err
	})
	if err != nil {
		if remote.IsNotFound(err) {
			return nil, errs.NotFoundf("%s: no such manifest on the registry: %w", ref, err)
		}
		return nil, err
	}
	return raw, nil
}

// Append writes the attachment manifest at tag: cur's layers (if any)
// plus a new one holding data, its config listing every layer as a diff ID
// (the layers are uncompressed), blobs first. It returns the layer count.
// A tag another writer replaced right after (a concurrent append) is not
// an error here: the caller reads the tag back and checks its layer.
func Append(ctx context.Context, opts Options, tag reference.Named, cur *Attachment, mediaType string, data []byte, annotations map[string]string) (int, error) {
	w, err := NewWriter(ctx, opts, tag)
	if err != nil {
		return 0, err
	}
	defer w.Close()
	layer, _, err := w.Put(ctx, mediaType, data)
	if err != nil {
		return 0, err
	}
	layer.Annotations = annotations
	n, _, err := appendLayer(ctx, w, cur, layer)
	return n, err
}

// appendLayer writes, through w, cur's layers (if any) plus layer (its
// blob already in w's repository), the config listing every layer as a
// diff ID; it returns the layer count and the config it sent (none when
// the registry had it).
func appendLayer(ctx context.Context, w *Writer, cur *Attachment, layer imgspecv1.Descriptor) (int, *imgspecv1.Descriptor, error) {
	m := imgspecv1.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: imgspecv1.MediaTypeImageManifest,
		Config:    imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageConfig},
	}
	if cur != nil {
		m.Layers = append(m.Layers, cur.Manifest.Layers...)
		m.Annotations = cur.Manifest.Annotations
		if cur.Manifest.MediaType != "" {
			m.MediaType = cur.Manifest.MediaType
		}
		if cur.Manifest.Config.MediaType != "" {
			m.Config.MediaType = cur.Manifest.Config.MediaType
		}
	}
	m.Layers = append(m.Layers, layer)
	cfg := imgspecv1.Image{RootFS: imgspecv1.RootFS{Type: "layers"}}
	for _, l := range m.Layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.Digest)
	}
	cfgRaw, err := json.Marshal(cfg)
	if err != nil {
		return 0, nil, err
	}
	cfgDesc, cfgSent, err := w.Put(ctx, m.Config.MediaType, cfgRaw)
	if err != nil {
		return 0, nil, err
	}
	m.Config.Digest, m.Config.Size = cfgDesc.Digest, cfgDesc.Size
	raw, err := json.Marshal(m)
	if err != nil {
		return 0, nil, err
	}
	// Replaced right away (another signer appending too): the caller
	// reads the tag back and looks for its layer there.
	var replaced *ReplacedError
	if err := w.PutManifest(ctx, raw); err != nil && !errors.As(err, &replaced) {
		return 0, nil, err
	}
	if !cfgSent {
		return len(m.Layers), nil, nil
	}
	return len(m.Layers), &cfgDesc, nil
}
