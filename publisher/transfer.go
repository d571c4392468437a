package publisher

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/images/progress"
	"github.com/opencontainers/go-digest"
	"github.com/sirupsen/logrus"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/pkg/blobinfocache"
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

// add counts pushed blobs of bytes in all, and skipped ones.
func (st *transferStats) add(pushed, skipped int, bytes int64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.pushed += pushed
	st.skipped += skipped
	st.bytes += bytes
}

// transfer copies an image or index byte for byte, DaoCloud style, to
// the repository dst: manifests are read, every blob is checked for
// presence at the destination, missing ones are streamed from the source
// with their sha256 and size checked on the way, then each manifest is
// written unchanged by digest (children before the index). Nothing is
// decompressed, recompressed or re-encoded. The destination is written
// through the run's client for its repository, on the connections and
// token its tags and checks use. What does not depend on an earlier
// answer is asked at once (over a far link each round trip counts): the
// destination's manifest with the source's children and the blobs'
// lookups, each blob's source with its upload session.
func (p *run) transfer(ctx context.Context, src types.ImageReference, srcSys *types.SystemContext, dst reference.Named, raw []byte, log logrus.FieldLogger, st *transferStats) error {
	s, err := p.openSource(ctx, src, srcSys)
	if err != nil {
		return fmt.Errorf("open source: %w", err)
	}
	defer s.Close()
	w, err := p.hosts.Client(dst)
	if err != nil {
		return fmt.Errorf("open destination: %w", err)
	}
	// A registry has a manifest only with every blob it names when it is
	// put, but may lose a blob later (deleted through the API, storage
	// cleaned behind its back) and still serve the manifest: each blob is
	// looked up even so, and one it lost is sent again. The manifest's
	// answer only keeps mounts, which are writes, waiting, and the
	// manifests from being put again. (Verification, after, reads it
	// back.)
	top := digest.FromBytes(raw)
	actx, cancel := context.WithCancel(ctx)
	there := ask(func() bool { return p.has(actx, w, top) })
	defer func() {
		cancel() // when an earlier failure returns before the answer
		there.wait()
	}()
	manifests, blobs, err := p.manifestsOf(ctx, s, raw, log)
	if err != nil {
		return err
	}
	mount := p.mounts(src, w, log)
	defer mount.close()

	// Blobs, four at a time; the first failure cancels the others. Retries
	// follow progress (moving): a blob keeps being retried while the
	// registry keeps taking the others.
	job := &blobJob{p: p, s: s, w: w, mount: mount, there: there, log: log}
	moving := &remote.Progress{}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for _, b := range blobs {
		g.Go(func() error {
			return p.hosts.Retry().DoWith(gctx, moving, log, "blob "+b.Digest.String(), func() error {
				return job.copy(gctx, b)
			})
		})
	}
	err = g.Wait()
	// What went is counted, whether the rest did or not.
	st.add(job.stats.pushed, job.stats.skipped, job.stats.bytes)
	if err != nil {
		return err
	}
	if there.wait() {
		log.WithField("digest", top.String()).Debug("the destination has the manifest and every blob it names")
		return nil
	}
	// Manifests by digest, children first.
	for _, m := range manifests {
		d := digest.FromBytes(m)
		err := p.hosts.Retry().DoWith(ctx, moving, log, "manifest "+d.String(), func() error {
			return w.PutManifest(ctx, d.String(), manifest.GuessMIMEType(m), m)
		})
		if err != nil {
			return fmt.Errorf("put manifest %s: %w", d, err)
		}
	}
	return nil
}

// manifestsOf reads what raw names from s: for an index, its children
// (at once, each checked against its digest), and returns the manifests
// to write, children first and raw last, and every blob they name, once.
func (p *run) manifestsOf(ctx context.Context, s source, raw []byte, log logrus.FieldLogger) ([][]byte, []types.BlobInfo, error) {
	all := [][]byte{raw}
	if mt := manifest.GuessMIMEType(raw); manifest.MIMETypeIsMultiImage(mt) {
		list, err := manifest.ListFromBlob(raw, mt)
		if err != nil {
			return nil, nil, err
		}
		// Each manifest once, however often the index names it.
		children := distinct(list.Instances())
		all = make([][]byte, len(children)+1)
		all[len(children)] = raw
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(4)
		for i, child := range children {
			g.Go(func() error {
				var craw []byte
				err := p.hosts.Retry().Do(gctx, log, "manifest "+child.String(), func() error {
					var err error
					craw, err = s.manifest(gctx, child)
					return err
				})
				if err != nil {
					return fmt.Errorf("manifest %s: %w", child, err)
				}
				if got := digest.FromBytes(craw); got != child {
					return &errs.IntegrityError{What: "manifest " + child.String() + " of the source", Check: "digest", Expected: child.String(), Actual: got.String()}
				}
				all[i] = craw
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return nil, nil, err
		}
	}
	var blobs []types.BlobInfo
	seen := map[digest.Digest]bool{}
	for i, m := range all {
		mt := manifest.GuessMIMEType(m)
		if i == len(all)-1 && manifest.MIMETypeIsMultiImage(mt) {
			break // the index itself names no blob
		}
		parsed, err := manifest.FromBlob(m, mt)
		if err != nil {
			return nil, nil, err
		}
		for _, b := range append([]types.BlobInfo{parsed.ConfigInfo()}, layerInfos(parsed)...) {
			if !seen[b.Digest] {
				seen[b.Digest] = true
				blobs = append(blobs, b)
			}
		}
	}
	return all, blobs, nil
}

// distinct is ds without repeats, in the order of first appearance: an
// index may name one manifest several times (two platforms served by one
// image, or a hostile source's way to make a copy read and hold one
// manifest thousands of times).
func distinct(ds []digest.Digest) []digest.Digest {
	seen := make(map[digest.Digest]bool, len(ds))
	out := make([]digest.Digest, 0, len(ds))
	for _, d := range ds {
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

// answer is a yes or no asked in the background.
type answer struct {
	done chan struct{}
	yes  bool
}

func ask(question func() bool) *answer {
	a := &answer{done: make(chan struct{})}
	go func() {
		defer close(a.done)
		a.yes = question()
	}()
	return a
}

// wait is the answer, once it came.
func (a *answer) wait() bool {
	<-a.done
	return a.yes
}

// mounts is how a transfer asks the destination registry to mount a blob
// from another of its repositories instead of having it sent: from the
// source's repository when that is on the same registry (a promotion,
// staging/app to prod/app, sends nothing), else from those where the
// blob-info cache of the work dir saw it (an earlier publish to another
// repository). A failed mount is logged and the blob goes the usual way.
type mounts struct {
	c     *remote.Client
	from  reference.Named // the source's repository on this registry, or nil
	cache types.BlobInfoCache
	log   logrus.FieldLogger
	// refused: the registry refused to mount from the source once; it
	// refuses them all (every blob is in the source), so the others are
	// not asked.
	refused atomic.Bool
}

// mounts is the mounts of a transfer from src to c's repository.
func (p *run) mounts(src types.ImageReference, c *remote.Client, log logrus.FieldLogger) *mounts {
	m := &mounts{c: c, cache: blobinfocache.DefaultCache(&types.SystemContext{BlobInfoCacheDir: p.work}), log: log}
	if from, to := registryOf(src), c.Repository(); from != nil && reference.Domain(from) == reference.Domain(to) && from.Name() != to.Name() {
		m.from = reference.TrimNamed(from)
	}
	// One connection to the cache's database for the transfer, as
	// c/image's copy keeps one (without it, every lookup opens it).
	if db, ok := m.cache.(openCloser); ok {
		db.Open()
	}
	return m
}

// openCloser is a blob-info cache that keeps its database open between
// Open and Close (c/image's SQLite one).
type openCloser interface {
	Open()
	Close()
}

func (m *mounts) close() {
	if db, ok := m.cache.(openCloser); ok {
		db.Close()
	}
}

// fromSource mounts d from the source's repository.
func (m *mounts) fromSource(ctx context.Context, d digest.Digest) bool {
	if m.from == nil || m.refused.Load() {
		return false
	}
	ok, err := m.c.Mount(ctx, d, m.from)
	if !ok {
		m.refused.Store(true)
		m.log.WithField("blob", d.String()).Debugf("not mounted from %s (%v): blobs are sent", m.from.Name(), err)
		return false
	}
	m.log.WithField("blob", d.String()).Debugf("mounted from %s", m.from.Name())
	return true
}

// maxCandidates bounds the repositories a blob is asked to be mounted from.
const maxCandidates = 3

// fromElsewhere mounts d from a repository of the registry where the
// cache saw it (one that no longer has it just answers no).
func (m *mounts) fromElsewhere(ctx context.Context, d digest.Digest) bool {
	to := m.c.Repository()
	tried := 0
	for _, cand := range m.cache.CandidateLocations(docker.Transport, scopeOf(to), d, false) {
		repo, err := reference.ParseNormalizedNamed(cand.Location.Opaque)
		if err != nil || repo.Name() == to.Name() || (m.from != nil && repo.Name() == m.from.Name()) || reference.Domain(repo) != reference.Domain(to) {
			continue
		}
		if tried++; tried > maxCandidates {
			return false
		}
		if ok, _ := m.c.Mount(ctx, d, reference.TrimNamed(repo)); ok {
			m.log.WithField("blob", d.String()).Debugf("mounted from %s", repo.Name())
			return true
		}
	}
	return false
}

// record notes that the destination has d, for the next runs' mounts (as
// c/image notes it: by registry, and repository).
func (m *mounts) record(d digest.Digest) {
	to := m.c.Repository()
	m.cache.RecordKnownLocation(docker.Transport, scopeOf(to), d, types.BICLocationReference{Opaque: to.Name()})
}

func scopeOf(repo reference.Named) types.BICTransportScope {
	return types.BICTransportScope{Opaque: reference.Domain(repo)}
}

// has reports whether the registry serves the manifest d in c's
// repository (a failed lookup says no: the push then finds out).
func (p *run) has(ctx context.Context, c *remote.Client, d digest.Digest) bool {
	got, err := c.ManifestDigest(ctx, d.String())
	return err == nil && got == d
}

// blobJob copies the blobs of one transfer.
type blobJob struct {
	p     *run
	s     source
	w     *remote.Client
	mount *mounts
	there *answer // the destination has the manifest: no mount from the source
	log   logrus.FieldLogger
	stats transferStats
}

// copy sends one blob unless the destination has it, checking its
// sha256 and size as it streams.
func (j *blobJob) copy(ctx context.Context, b types.BlobInfo) (err error) {
	// A mount is a write: it waits for the manifest's answer.
	ok := j.mount.from != nil && !j.there.wait() && j.mount.fromSource(ctx, b.Digest)
	if !ok {
		ok, err = j.w.HasBlob(ctx, b.Digest)
		if s := remote.StatusCode(err); s == http.StatusUnauthorized || s == http.StatusForbidden {
			// A token that may push but not look (a push-only robot
			// account): the blob is sent, as containerd does, unless
			// the destination serves the manifest, whose word is then
			// all there is.
			if ok = j.there.wait(); !ok {
				j.log.WithField("blob", b.Digest.String()).Debugf("cannot tell whether the destination has it (%v): sending it", err)
			}
			err = nil
		}
		if err != nil {
			return fmt.Errorf("blob %s: %w", b.Digest, err)
		}
		if ok {
			j.log.WithField("blob", b.Digest.String()).Debug("blob already present")
		}
	}
	if !ok && j.there.wait() {
		j.log.WithField("blob", b.Digest.String()).Warn("the destination serves the manifest but lost this blob: sending it again")
	}
	if !ok {
		ok = j.mount.fromElsewhere(ctx, b.Digest)
	}
	if ok {
		j.mount.record(b.Digest)
		j.stats.add(0, 1, 0)
		return nil
	}
	// The source is opened while the destination opens the upload.
	first := openAsync(func() (io.ReadCloser, error) { return j.s.blob(ctx, b, 0) })
	h := sha256.New()
	bar := progress.Start(j.p.opts.Progress, fmt.Sprintf("push %s to %s", oci.Short(b.Digest.String()), j.w.Repository().Name()), b.Size)
	src := &blobReader{rc: first, h: h, bar: bar, open: func(ctx context.Context, offset int64) (io.ReadCloser, error) { return j.s.blob(ctx, b, offset) }}
	defer src.Close()
	defer func() { bar.Done(err) }()
	err = j.w.PutBlob(ctx, b.Digest, b.Size, src)
	if oerr := first.openErr(); oerr != nil && err != nil {
		return fmt.Errorf("read blob %s: %w", b.Digest, oerr)
	}
	// A source that sent other bytes than its digest says, or more than
	// its size (PutBlob stops one byte past it), is an integrity failure,
	// whatever the registry answered.
	got := digest.NewDigest(digest.SHA256, h)
	if (src.eof && (got != b.Digest || (b.Size >= 0 && src.n != b.Size))) || (b.Size >= 0 && src.n > b.Size) {
		return &errs.IntegrityError{What: "blob " + b.Digest.String() + " of the source", Check: "sha256 and size", Expected: fmt.Sprintf("%s, %d bytes", b.Digest, b.Size), Actual: fmt.Sprintf("%s, %d bytes", got, src.n)}
	}
	if err != nil {
		return fmt.Errorf("push blob %s: %w", b.Digest, err)
	}
	j.mount.record(b.Digest)
	j.stats.add(1, 0, src.n)
	j.log.WithFields(logrus.Fields{"blob": b.Digest.String(), "bytes": src.n}).Info("blob pushed")
	return nil
}

// openingReader is a blob's body being opened in the background: a Read
// waits for it.
type openingReader struct {
	done chan struct{}
	rc   io.ReadCloser
	err  error
}

func openAsync(open func() (io.ReadCloser, error)) *openingReader {
	r := &openingReader{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.rc, r.err = open()
	}()
	return r
}

func (r *openingReader) Read(p []byte) (int, error) {
	if err := r.openErr(); err != nil {
		return 0, err
	}
	return r.rc.Read(p)
}

// openErr is why the body could not be opened (nil once it is).
func (r *openingReader) openErr() error {
	<-r.done
	return r.err
}

func (r *openingReader) Close() error {
	if r.openErr() != nil {
		return nil
	}
	return r.rc.Close()
}

func layerInfos(m manifest.Manifest) []types.BlobInfo {
	var out []types.BlobInfo
	for _, l := range m.LayerInfos() {
		out = append(out, l.BlobInfo)
	}
	return out
}
