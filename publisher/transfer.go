package publisher

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/images/progress"
	"github.com/opencontainers/go-digest"
	"github.com/sirupsen/logrus"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/pkg/blobinfocache"
	"go.podman.io/image/v5/transports"
	"go.podman.io/image/v5/types"
	"golang.org/x/sync/errgroup"
)

// transferStats counts what one transfer sent.
type transferStats struct {
	mu      sync.Mutex
	pushed  int
	skipped int
	bytes   int64
}

// transfer copies an image or index byte for byte, DaoCloud style:
// manifests are read, every blob is checked for presence at the
// destination, missing ones are streamed from the source with their sha256
// and size checked on the way, then each manifest is written unchanged by
// digest (children before the index). Nothing is decompressed, recompressed
// or re-encoded.
func (p *run) transfer(ctx context.Context, src, dst types.ImageReference, srcSys, dstSys *types.SystemContext, raw []byte, log logrus.FieldLogger, st *transferStats) error {
	s, err := p.openSource(ctx, src, srcSys)
	if err != nil {
		return fmt.Errorf("open source: %w", err)
	}
	defer s.Close()
	w, err := dst.NewImageDestination(ctx, dstSys)
	if err != nil {
		return fmt.Errorf("open destination: %w", err)
	}
	defer w.Close()
	cache := blobinfocache.DefaultCache(dstSys)

	type item struct {
		raw    []byte
		digest *digest.Digest // nil for the top level
	}
	var manifests []item // children first, the top level last
	var blobs []types.BlobInfo
	seen := map[digest.Digest]bool{}
	addBlobs := func(m []byte) error {
		parsed, err := manifest.FromBlob(m, manifest.GuessMIMEType(m))
		if err != nil {
			return err
		}
		for _, b := range append([]types.BlobInfo{parsed.ConfigInfo()}, layerInfos(parsed)...) {
			if !seen[b.Digest] {
				seen[b.Digest] = true
				blobs = append(blobs, b)
			}
		}
		return nil
	}
	if mt := manifest.GuessMIMEType(raw); manifest.MIMETypeIsMultiImage(mt) {
		list, err := manifest.ListFromBlob(raw, mt)
		if err != nil {
			return err
		}
		for _, child := range list.Instances() {
			var craw []byte
			err := p.hosts.Retry().Do(ctx, log, "manifest "+child.String(), func() error {
				var err error
				craw, err = s.manifest(ctx, child)
				return err
			})
			if err != nil {
				return fmt.Errorf("manifest %s: %w", child, err)
			}
			if got := digest.FromBytes(craw); got != child {
				return &errs.IntegrityError{What: "manifest " + child.String() + " of the source", Check: "digest", Expected: child.String(), Actual: got.String()}
			}
			if err := addBlobs(craw); err != nil {
				return err
			}
			manifests = append(manifests, item{raw: craw, digest: &child})
		}
	} else if err := addBlobs(raw); err != nil {
		return err
	}
	manifests = append(manifests, item{raw: raw})

	// A registry has a manifest only with every blob it names (it checks
	// them when the manifest is put): one that has this manifest by digest
	// needs nothing sent. (Verification, after, reads it back.)
	if p.has(ctx, dst, digest.FromBytes(raw)) {
		st.mu.Lock()
		st.skipped += len(blobs)
		st.mu.Unlock()
		log.WithField("digest", digest.FromBytes(raw).String()).Debug("the destination has the manifest: nothing to send")
		return nil
	}

	mount := p.mounter(src, dst, log)

	// Blobs, four at a time (PutBlob is thread-safe for registries); the
	// first failure cancels the others. Retries follow progress (moving): a blob
	// keeps being retried while the registry keeps taking the others.
	moving := &remote.Progress{}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for _, b := range blobs {
		g.Go(func() error {
			return p.hosts.Retry().DoWith(gctx, moving, log, "blob "+b.Digest.String(), func() error {
				return p.copyBlob(gctx, s, w, b, cache, mount, log, st)
			})
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	// Manifests by digest, children first; then commit.
	for _, m := range manifests {
		err := p.hosts.Retry().DoWith(ctx, moving, log, "manifest", func() error { return w.PutManifest(ctx, m.raw, m.digest) })
		if err != nil {
			return fmt.Errorf("put manifest: %w", err)
		}
	}
	// A registry keeps what it was sent: Commit has nothing to do there,
	// and needs no source image.
	return p.hosts.Retry().DoWith(ctx, moving, log, "commit", func() error { return w.Commit(ctx, nil) })
}

// mounter is how a transfer between repositories of one registry asks
// the destination to mount a blob from the source's repository instead of
// having it sent (a promotion, staging/app to prod/app, sends nothing);
// for other transfers, a mount that never happens. A failed mount is
// logged and the blob goes the usual way.
func (p *run) mounter(src, dst types.ImageReference, log logrus.FieldLogger) func(context.Context, digest.Digest) bool {
	from, to := registryOf(src), registryOf(dst)
	none := func(context.Context, digest.Digest) bool { return false }
	if from == nil || to == nil || reference.Domain(from) != reference.Domain(to) || from.Name() == to.Name() {
		return none
	}
	c, err := p.hosts.Client(to)
	if err != nil {
		return none
	}
	// A registry that refuses one mount refuses them all (every blob is in
	// the source): the others are not asked.
	var refused atomic.Bool
	return func(ctx context.Context, d digest.Digest) bool {
		if refused.Load() {
			return false
		}
		ok, err := c.Mount(ctx, d, from)
		if ok {
			log.WithField("blob", d.String()).Debugf("mounted from %s", from.Name())
			return true
		}
		refused.Store(true)
		log.WithField("blob", d.String()).Debugf("not mounted from %s (%v): blobs are sent", from.Name(), err)
		return false
	}
}

// has reports whether the registry at dst serves the manifest d (a failed
// lookup says no: the push then finds out).
func (p *run) has(ctx context.Context, dst types.ImageReference, d digest.Digest) bool {
	named := dst.DockerReference()
	if named == nil {
		return false
	}
	c, err := p.hosts.Client(reference.TrimNamed(named))
	if err != nil {
		return false
	}
	got, err := c.ManifestDigest(ctx, d.String())
	return err == nil && got == d
}

// copyBlob sends one blob unless the destination has it, checking its
// sha256 and size as it streams.
func (p *run) copyBlob(ctx context.Context, s source, w types.ImageDestination, b types.BlobInfo, cache types.BlobInfoCache, mount func(context.Context, digest.Digest) bool, log logrus.FieldLogger, st *transferStats) (err error) {
	ok := mount(ctx, b.Digest)
	if !ok {
		if ok, _, err = w.TryReusingBlob(ctx, b, cache, false); err != nil {
			return fmt.Errorf("blob %s: %w", b.Digest, err)
		}
		if ok {
			log.WithField("blob", b.Digest.String()).Debug("blob already present")
		}
	}
	if ok {
		st.mu.Lock()
		st.skipped++
		st.mu.Unlock()
		return nil
	}
	rc, err := s.blob(ctx, b, cache)
	if err != nil {
		return fmt.Errorf("read blob %s: %w", b.Digest, err)
	}
	defer rc.Close()
	h := sha256.New()
	to := transports.ImageName(w.Reference())
	if named := w.Reference().DockerReference(); named != nil {
		to = reference.TrimNamed(named).String()
	}
	bar := progress.Start(p.opts.Progress, fmt.Sprintf("push %s to %s", oci.Short(b.Digest.String()), to), b.Size)
	counted := &progress.Counter{R: progress.Reader(io.TeeReader(rc, h), bar)}
	defer func() { bar.Done(err) }()
	if _, err := w.PutBlob(ctx, counted, types.BlobInfo{Digest: b.Digest, Size: b.Size, MediaType: b.MediaType}, cache, false); err != nil {
		// A source that sent other bytes than its digest says is an
		// integrity failure, whatever the registry answered.
		if got := digest.NewDigest(digest.SHA256, h); counted.EOF && got != b.Digest {
			return &errs.IntegrityError{What: "blob " + b.Digest.String() + " of the source", Check: "sha256", Expected: b.Digest.String(), Actual: got.String()}
		}
		return fmt.Errorf("push blob %s: %w", b.Digest, err)
	}
	if !counted.EOF {
		// The destination found the blob already there (it appeared since
		// our check, e.g. an interrupted earlier upload finishing) and did
		// not read the stream: nothing was sent.
		st.mu.Lock()
		st.skipped++
		st.mu.Unlock()
		return nil
	}
	if got := digest.NewDigest(digest.SHA256, h); got != b.Digest || (b.Size >= 0 && counted.N != b.Size) {
		return &errs.IntegrityError{What: "blob " + b.Digest.String() + " of the source", Check: "sha256 and size", Expected: fmt.Sprintf("%s, %d bytes", b.Digest, b.Size), Actual: fmt.Sprintf("%s, %d bytes", got, counted.N)}
	}
	st.mu.Lock()
	st.pushed++
	st.bytes += counted.N
	st.mu.Unlock()
	log.WithFields(logrus.Fields{"blob": b.Digest.String(), "bytes": counted.N}).Info("blob pushed")
	return nil
}

func layerInfos(m manifest.Manifest) []types.BlobInfo {
	var out []types.BlobInfo
	for _, l := range m.LayerInfos() {
		out = append(out, l.BlobInfo)
	}
	return out
}
