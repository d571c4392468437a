package sign

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sirupsen/logrus"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/blobinfocache/none"
	"go.podman.io/image/v5/types"
)

// Suffixes of cosign's attachment tags (sha256-<hex>.<suffix>).
const (
	SuffixSignature   = "sig"
	SuffixAttestation = "att"
	SuffixSBOM        = "sbom"
)

// maxAttachment bounds what is read of an attachment's manifest, config or
// layer: signatures are a few hundred bytes, an SBOM a few MiB.
const maxAttachment = 64 << 20

// Options say how to reach registries and where progress goes.
type Options struct {
	// Hosts is the registry configuration (credentials, CA, insecure
	// hosts, retries). Required.
	Hosts *remote.Hosts
	// Log receives one line per attachment written or copied.
	Log logrus.FieldLogger
}

func (o Options) log() logrus.FieldLogger {
	if o.Log == nil {
		return oci.Discard
	}
	return o.Log
}

func (o Options) check() error {
	if o.Hosts == nil {
		return errs.Inputf("sign: no registry configuration (Options.Hosts)")
	}
	return nil
}

func (o Options) sys(repo reference.Named) *types.SystemContext {
	return o.Hosts.For(reference.Domain(repo))
}

// retry runs fn under the configured retry policy.
func (o Options) retry(ctx context.Context, what string, fn func() error) error {
	return o.Hosts.Config().Retry.Do(ctx, o.log(), what, fn)
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

// attachmentRef is repo:sha256-<hex>.<suffix>.
func attachmentRef(repo reference.Named, d digest.Digest, suffix string) (reference.NamedTagged, error) {
	tag, err := AttachmentTag(d, suffix)
	if err != nil {
		return nil, err
	}
	return reference.WithTag(reference.TrimNamed(repo), tag)
}

// errAbsent is a manifest the registry does not have (404).
var errAbsent = errors.New("not on the registry")

// attachment is an attachment manifest read from a registry, with the
// source it was read from (for its blobs).
type attachment struct {
	ref      reference.Named
	raw      []byte
	manifest imgspecv1.Manifest
	src      types.ImageSource
}

func (a *attachment) Close() {
	if a != nil && a.src != nil {
		a.src.Close()
	}
}

// readAttachment reads the manifest at ref (a tag), or returns errAbsent.
func readAttachment(ctx context.Context, o Options, ref reference.Named) (*attachment, error) {
	dref, err := docker.NewReference(ref)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	a := &attachment{ref: ref}
	err = o.retry(ctx, "read "+ref.String(), func() error {
		// c/image loads the manifest when it opens a registry source.
		src, err := dref.NewImageSource(ctx, o.sys(ref))
		if err != nil {
			return err
		}
		raw, _, err := src.GetManifest(ctx, nil)
		if err != nil {
			src.Close()
			return err
		}
		a.src, a.raw = src, raw
		return nil
	})
	if err != nil {
		if remote.IsNotFound(err) {
			return nil, errAbsent
		}
		return nil, fmt.Errorf("read %s: %w", ref, err)
	}
	if len(a.raw) > maxAttachment {
		a.Close()
		return nil, fmt.Errorf("read %s: manifest larger than %d bytes", ref, maxAttachment)
	}
	if err := json.Unmarshal(a.raw, &a.manifest); err != nil {
		a.Close()
		return nil, &errs.IntegrityError{What: "attachment " + ref.String(), Check: "content: not an image manifest: " + err.Error()}
	}
	return a, nil
}

// blob reads one blob of the attachment and checks it against desc.
func (a *attachment) blob(ctx context.Context, desc imgspecv1.Descriptor) ([]byte, error) {
	if desc.Size > maxAttachment {
		return nil, fmt.Errorf("%s: blob %s: %d bytes, more than %d", a.ref, desc.Digest, desc.Size, maxAttachment)
	}
	rc, _, err := a.src.GetBlob(ctx, types.BlobInfo{Digest: desc.Digest, Size: desc.Size}, none.NoCache)
	if err != nil {
		return nil, fmt.Errorf("%s: blob %s: %w", a.ref, desc.Digest, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxAttachment+1))
	if err != nil {
		return nil, fmt.Errorf("%s: blob %s: %w", a.ref, desc.Digest, err)
	}
	if got := digest.FromBytes(data); got != desc.Digest {
		return nil, &errs.IntegrityError{What: a.ref.String() + " blob", Check: "digest", Expected: desc.Digest.String(), Actual: got.String()}
	}
	if int64(len(data)) != desc.Size {
		return nil, &errs.IntegrityError{What: a.ref.String() + " blob " + desc.Digest.String(), Check: "size", Expected: fmt.Sprint(desc.Size), Actual: fmt.Sprint(len(data))}
	}
	return data, nil
}

// writer puts blobs and a manifest under one tag of one repository.
type writer struct {
	o   Options
	ref reference.Named
	dst types.ImageDestination
}

func newWriter(ctx context.Context, o Options, ref reference.Named) (*writer, error) {
	dref, err := docker.NewReference(ref)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	dst, err := dref.NewImageDestination(ctx, o.sys(ref))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", ref, err)
	}
	return &writer{o: o, ref: ref, dst: dst}, nil
}

func (w *writer) Close() { w.dst.Close() }

// has reports whether the repository already has the blob.
func (w *writer) has(ctx context.Context, d digest.Digest) (bool, error) {
	var ok bool
	err := w.o.retry(ctx, "look up blob "+d.String(), func() error {
		var err error
		ok, _, err = w.dst.TryReusingBlob(ctx, types.BlobInfo{Digest: d, Size: -1}, none.NoCache, false)
		return err
	})
	return ok, err
}

// put uploads data as a blob unless the repository has it, and returns
// its descriptor.
func (w *writer) put(ctx context.Context, mediaType string, data []byte) (imgspecv1.Descriptor, bool, error) {
	desc := imgspecv1.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}
	ok, err := w.has(ctx, desc.Digest)
	if err != nil {
		return desc, false, fmt.Errorf("%s: blob %s: %w", w.ref, desc.Digest, err)
	}
	if ok {
		return desc, false, nil
	}
	err = w.o.retry(ctx, "upload blob "+desc.Digest.String(), func() error {
		_, err := w.dst.PutBlob(ctx, bytes.NewReader(data), types.BlobInfo{Digest: desc.Digest, Size: desc.Size, MediaType: mediaType}, none.NoCache, false)
		return err
	})
	if err != nil {
		return desc, false, fmt.Errorf("%s: upload blob %s: %w", w.ref, desc.Digest, err)
	}
	return desc, true, nil
}

// manifest writes raw under the writer's tag.
func (w *writer) manifest(ctx context.Context, raw []byte) error {
	err := w.o.retry(ctx, "write "+w.ref.String(), func() error {
		if err := w.dst.PutManifest(ctx, raw, nil); err != nil {
			return err
		}
		return w.dst.Commit(ctx, nil)
	})
	if err != nil {
		return fmt.Errorf("write %s: %w", w.ref, err)
	}
	return nil
}

// imageManifest reads the manifest of repo@d, checking that the registry
// serves exactly d (another manifest is an *errs.IntegrityError).
func imageManifest(ctx context.Context, o Options, ref reference.Canonical) ([]byte, error) {
	dref, err := docker.NewReference(ref)
	if err != nil {
		return nil, errs.Inputf("%s: %w", ref, err)
	}
	var raw []byte
	err = o.retry(ctx, "read "+ref.String(), func() error {
		var err error
		raw, err = oci.Manifest(ctx, dref, o.sys(ref))
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

// openAttachment is how Sign, Verify, Attest and VerifyAttestation start:
// check opts, read the image manifest at ref (it must hash to ref's
// digest: a registry serving other bytes is never signed or trusted), then
// read the attachment with suffix. cur is nil, with errAbsent, when the
// registry has none; verb names the operation in errors.
func openAttachment(ctx context.Context, ref reference.Canonical, suffix, verb string, opts Options) (reference.NamedTagged, *attachment, error) {
	if err := opts.check(); err != nil {
		return nil, nil, err
	}
	attRef, err := attachmentRef(ref, ref.Digest(), suffix)
	if err != nil {
		return nil, nil, err
	}
	if _, err := imageManifest(ctx, opts, ref); err != nil {
		return attRef, nil, fmt.Errorf("%s %s: %w", verb, ref, err)
	}
	cur, err := readAttachment(ctx, opts, attRef)
	if err != nil && !errors.Is(err, errAbsent) {
		return attRef, nil, fmt.Errorf("%s %s: %w", verb, ref, err)
	}
	return attRef, cur, err
}
