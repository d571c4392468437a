package publisher

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/images/progress"
	"github.com/agentforge/agentforge/publisher/attachments"
	"github.com/agentforge/agentforge/publisher/sign"
	"github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sirupsen/logrus"
	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/oci/layout"
	"go.podman.io/image/v5/transports"
	"go.podman.io/image/v5/types"
)

// Verify modes for Options.Verify.
const (
	VerifyFull = oci.Full // download every blob: digest, size and diffID
	VerifyFast = oci.Fast // manifest and config by digest, layers by HEAD (digest and size)
	VerifyNone = oci.None
)

// errNoDestination is Publish or Mirror called with no destination.
var errNoDestination = errs.Inputf("no destination given")

// Options tune Publish and Mirror.
type Options struct {
	// Hosts says how to reach every registry (auth, CA, insecure hosts,
	// retries). Required.
	Hosts *remote.Hosts
	// AllowOverwrite lets a tag that points to another digest be moved.
	AllowOverwrite bool
	// KeepDigest pushes an OCI layout's blobs as they are, keeping its
	// manifest digest; by default uncompressed layers are gzip-compressed
	// once (as for local images), which changes the digest.
	KeepDigest bool
	// Verify is full (default), fast or none.
	Verify string
	// WorkDir holds the staging layouts (reused between runs, keyed by the
	// source image) and temporary files; "" means os.TempDir()/agentforge-publish.
	WorkDir string
	// Sign, when set, signs every destination's image (and the platform
	// images of an index) after verification and before the tags; see
	// Signing.
	Sign *Signing
	// Log receives one line per blob and destination.
	Log logrus.FieldLogger
	// Progress shows each blob as it is compressed, pushed or copied; nil
	// means a line on Log every 5 seconds of a long one.
	Progress progress.Reporter

	// childrenPushed tells Index that PublishList sent the platform images
	// to every destination itself (their attachments need no copy).
	childrenPushed bool
}

// Result is one destination's outcome.
type Result struct {
	Ref    string `json:"ref"`
	Digest string `json:"digest"`
	// Tags are the tags that name Digest on the destination: all those
	// asked for when it succeeded; when it failed (Error), only those
	// this run wrote or found naming it already.
	Tags         []string `json:"tags"`
	Verified     bool     `json:"verified"`
	Verification string   `json:"verification"`
	BytesPushed  int64    `json:"bytesPushed"`
	BlobsPushed  int      `json:"blobsPushed"`
	BlobsSkipped int      `json:"blobsSkipped"`
	Seconds      float64  `json:"seconds"`
	Error        string   `json:"error,omitempty"`
	// Attachments are the cosign signatures and attestations Mirror copied
	// with the image (and with each child of an index).
	Attachments *attachments.Report `json:"attachments,omitempty"`
	err         error
	// signed and children are what signing did (Options.Sign): on the
	// image, and on each platform image of an index, in the index's order.
	signed   sign.Signed
	children []sign.Signed
}

// Report is the outcome of Publish or Mirror.
type Report struct {
	Digest       string   `json:"digest"`
	Destinations []Result `json:"destinations"`
	// Signatures are what signing did (Options.Sign) on each destination,
	// in order; the entry of a destination that was not signed names it
	// and says why.
	Signatures []sign.Signed `json:"signatures,omitempty"`
	// PlatformSignatures are, for Publish of an OCI layout holding an
	// index, the signatures of its platform images, destination by
	// destination, each in the index's order (Index reports them per
	// platform instead).
	PlatformSignatures []sign.Signed `json:"platformSignatures,omitempty"`
}

// TagConflictError is a tag that already names another manifest (not
// moved), or, Lost, one that another publish moved while this one wrote
// it: registries have no compare-and-swap on tags, so a tag is read back
// after it is written, and the publish whose digest is not there says so
// instead of claiming the tag.
type TagConflictError struct {
	Ref, Current, Wanted string
	Lost                 bool
}

func (e *TagConflictError) Error() string {
	if e.Lost {
		return fmt.Sprintf("tag %s was written with %s but names %s when read back: another publish took it meanwhile", e.Ref, e.Wanted, e.Current)
	}
	return fmt.Sprintf("tag %s already points to %s, not %s: not moved", e.Ref, e.Current, e.Wanted)
}

// Final tells retries that trying again cannot help.
func (e *TagConflictError) Final() bool { return true }

// Publish pushes the image at src to every destination at once and then
// verifies each. A local (containers-storage) image is first compressed
// once into a staging OCI layout, so that every destination receives the
// same bytes and serves the same digest. Per destination: blobs (present
// ones skipped), the manifest by digest, verification, the signature
// (Options.Sign), then the tags. A destination that fails does not stop
// the others; the returned error names each failure.
func Publish(ctx context.Context, src types.ImageReference, dests []Destination, opts Options) (*Report, error) {
	if len(dests) == 0 {
		return nil, errNoDestination
	}
	if t := src.Transport().Name(); t != "oci" && t != "containers-storage" {
		return nil, errs.Inputf("publish %s: the source must be a local image or an OCI layout; copy from a registry with mirror", oci.Name(src))
	}
	p, err := newRun(opts)
	if err != nil {
		return nil, err
	}
	defer p.close()
	// The SBOMs must describe what is published: checked against the
	// local manifests before anything is staged or pushed.
	var localRaw []byte
	if opts.Sign != nil {
		if localRaw, err = oci.Manifest(ctx, src, p.srcSys); err != nil {
			return nil, err
		}
		platforms, err := platformDigests(localRaw)
		if err != nil {
			return nil, err
		}
		if err := opts.Sign.checkSBOMs(digest.FromBytes(localRaw), platforms != nil, platforms); err != nil {
			return nil, err
		}
	}
	staged := src
	if src.Transport().Name() != "oci" || !opts.KeepDigest && p.uncompressed(ctx, src) {
		if staged, err = p.stage(ctx, src); err != nil {
			return nil, err
		}
	}
	raw, err := oci.Manifest(ctx, staged, p.srcSys)
	if err != nil {
		return nil, err
	}
	d := digest.FromBytes(raw)
	if opts.Sign != nil {
		// Staging compresses layers: each published digest maps back to
		// the local one the SBOMs name.
		local, err := publishedToLocal(localRaw, raw)
		if err != nil {
			return nil, err
		}
		p.opts.Sign = opts.Sign.withLocal(local)
	}
	// An OCI layout may hold a multi-platform index: transfer keeps it whole.
	rep, err := p.fanOut(d, dests, func(dest Destination) Result {
		return p.push(ctx, staged, raw, d, dest, nil)
	})
	if rep != nil {
		for _, r := range rep.Destinations {
			rep.PlatformSignatures = append(rep.PlatformSignatures, r.children...)
		}
	}
	return rep, err
}

// fanOut runs fn for every destination at once and collects the results
// (and the signatures); the error names every destination that failed.
// Destinations in one repository (--to reg/app:1 --to reg/app:latest, one
// way to give it two tags) go one after the other: at once, each would
// find every blob missing and send it again alongside the other; after
// it, the next finds them there.
func (p *run) fanOut(d digest.Digest, dests []Destination, fn func(Destination) Result) (*Report, error) {
	rep := &Report{Digest: d.String(), Destinations: make([]Result, len(dests))}
	repos := map[string]*sync.Mutex{}
	for _, dest := range dests {
		if repos[dest.Repo.Name()] == nil {
			repos[dest.Repo.Name()] = &sync.Mutex{}
		}
	}
	var wg sync.WaitGroup
	for i, dest := range dests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			repo := repos[dest.Repo.Name()]
			repo.Lock()
			defer repo.Unlock()
			rep.Destinations[i] = fn(dest)
		}()
	}
	wg.Wait()
	rep.Signatures = p.signatures(rep)
	return rep, joinFailures(rep)
}

// run holds what one Publish or Mirror call shares.
type run struct {
	opts   Options
	hosts  *remote.Hosts
	srcSys *types.SystemContext // how to read the source
	log    logrus.FieldLogger
	work   string
	tmp    string
}

func newRun(opts Options) (*run, error) {
	log := opts.Log
	if log == nil {
		log = oci.Discard
	}
	switch opts.Verify {
	case "":
		opts.Verify = VerifyFull
	case VerifyFull, VerifyFast, VerifyNone:
	default:
		return nil, errs.Inputf("verification %q: want full, fast or none", opts.Verify)
	}
	if opts.Hosts == nil {
		return nil, errs.Inputf("publish: no registry configuration (Options.Hosts)")
	}
	if err := opts.Sign.check(); err != nil {
		return nil, err
	}
	work := opts.WorkDir
	if work == "" {
		work = filepath.Join(os.TempDir(), "agentforge-publish")
	}
	if err := os.MkdirAll(work, 0o700); err != nil {
		return nil, fmt.Errorf("work dir: %w", err)
	}
	tmp, err := os.MkdirTemp(work, "run-")
	if err != nil {
		return nil, err
	}
	if opts.Progress == nil {
		opts.Progress = &progress.Log{Printf: log.Infof, Every: 5 * time.Second}
	}
	return &run{opts: opts, hosts: opts.Hosts, log: log, work: work, tmp: tmp, srcSys: &types.SystemContext{BigFilesTemporaryDir: tmp}}, nil
}

func (p *run) close() { os.RemoveAll(p.tmp) }

func (p *run) sys(host string) *types.SystemContext {
	sys := p.hosts.For(host)
	// Where blobs were seen, kept between runs in the work dir (c/image's
	// blob-info cache, which a transfer's mounts read too: a blob another
	// repository of the registry has is mounted, not sent again).
	sys.BlobInfoCacheDir = p.work
	return sys
}

// stage compresses a local image once into an OCI layout kept under the
// work dir, keyed by the source image, so that a re-publish reuses it.
func (p *run) stage(ctx context.Context, src types.ImageReference) (types.ImageReference, error) {
	name := transports.ImageName(src)
	// Keyed by the source's name and manifest digest: an OCI layout edited
	// in place under the same tag is staged again.
	raw, err := oci.Manifest(ctx, src, p.srcSys)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(name + "\n" + digest.FromBytes(raw).String()))
	dir := filepath.Join(p.work, "staging", hex.EncodeToString(sum[:16]))
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return nil, err
	}
	ref, err := layout.NewReference(dir, "image")
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, "index.json")); err == nil {
		p.log.Debugf("reusing staged layout %s for %s", dir, name)
		return ref, nil
	}
	p.log.Infof("compressing %s once for all destinations", name)
	start := time.Now()
	// Each run stages into a folder of its own and renames it into place:
	// concurrent publishes of one image never share a half-written layout.
	removeAbandoned(filepath.Dir(dir), abandonedAge, p.log)
	partial, err := os.MkdirTemp(filepath.Dir(dir), filepath.Base(dir)+partialMark)
	if err != nil {
		return nil, err
	}
	defer holdPartial(partial)()
	pref, err := layout.NewReference(partial, "image")
	if err != nil {
		os.RemoveAll(partial)
		return nil, err
	}
	// The same blob-info cache as the pushes: it learns here how each blob is
	// compressed, which is what later lets a push mount it across repositories.
	// Cancelable: an interrupt stops a large layer's compression at once
	// (Jenkins kills an aborted step 5 s after its SIGTERM: ProcessTree's
	// softKillWaitSeconds, core/src/main/java/hudson/util/ProcessTree.java).
	if err := p.copy(ctx, oci.Cancelable(pref), src, &types.SystemContext{BlobInfoCacheDir: p.work}, &types.SystemContext{BigFilesTemporaryDir: p.tmp, BlobInfoCacheDir: p.work}); err != nil {
		os.RemoveAll(partial)
		return nil, fmt.Errorf("stage %s: %w", name, err)
	}
	if err := os.Rename(partial, dir); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, "index.json")); serr == nil {
			// Another run staged the same image first: use that one. The
			// staged bytes are the same.
			os.RemoveAll(partial)
		} else {
			// A left-over folder without a layout (a cleaned temp dir):
			// replace it.
			os.RemoveAll(dir)
			if err := os.Rename(partial, dir); err != nil {
				os.RemoveAll(partial)
				return nil, fmt.Errorf("stage %s: %w", name, err)
			}
		}
	}
	p.log.WithField("seconds", fmt.Sprintf("%.1f", time.Since(start).Seconds())).Infof("staged %s", name)
	return ref, nil
}

// uncompressed reports whether the image at src (a single image, not an
// index) has a layer stored without compression.
func (p *run) uncompressed(ctx context.Context, src types.ImageReference) bool {
	raw, err := oci.Manifest(ctx, src, p.srcSys)
	if err != nil {
		return false // Publish reads it again and reports the error
	}
	mt := manifest.GuessMIMEType(raw)
	if manifest.MIMETypeIsMultiImage(mt) {
		return false
	}
	m, err := manifest.FromBlob(raw, mt)
	if err != nil {
		return false
	}
	for _, l := range m.LayerInfos() {
		if l.MediaType == imgspecv1.MediaTypeImageLayer || l.MediaType == manifest.DockerV2SchemaLayerMediaTypeUncompressed {
			return true
		}
	}
	return false
}

// copy runs one copy.Image.
// It is used for staging, where layers are compressed.
func (p *run) copy(ctx context.Context, dest, src types.ImageReference, srcSys, destSys *types.SystemContext) error {
	_, err := oci.Copy(ctx, dest, src, &copy.Options{SourceCtx: srcSys, DestinationCtx: destSys}, p.opts.Progress, "compress")
	return err
}

// push sends the image at src to one destination (see pushWith).
func (p *run) push(ctx context.Context, src types.ImageReference, raw []byte, d digest.Digest, dest Destination, before beforeTags) Result {
	return p.pushWith(ctx, raw, d, dest, func(target types.ImageReference, sys *types.SystemContext, log logrus.FieldLogger, st *transferStats) error {
		return p.transfer(ctx, src, p.srcSys, dest.Repo, raw, log, st)
	}, before)
}

// sender puts an image or index (manifest by digest, and everything it
// names) at target.
type sender func(target types.ImageReference, sys *types.SystemContext, log logrus.FieldLogger, st *transferStats) error

// beforeTags puts what else must be on a destination before a tag names
// the image there (a mirror's copied signatures). pushWith calls start once
// the destination's tags are checked, so that what may go alongside the
// image does (an error from start stops the push before anything is
// sent); finish once the image is in place and verified, which
// completes it and records it in res; and stop before it returns, which
// ends what start began (when finish did not run, the send or the check
// failed).
type beforeTags interface {
	start(ctx context.Context, log logrus.FieldLogger) error
	finish(res *Result, log logrus.FieldLogger) error
	stop()
}

// pushWith sends one image or index to one destination with send, then
// verifies it, signs it and writes the tags: tag check, send (and
// before.start), verify, before.finish, sign (Options.Sign), tags. before
// may be nil.
func (p *run) pushWith(ctx context.Context, raw []byte, d digest.Digest, dest Destination, send sender, before beforeTags) Result {
	start := time.Now()
	res := Result{Ref: dest.Repo.Name() + "@" + d.String(), Digest: d.String(), Tags: dest.Tags, Verification: p.opts.Verify}
	log := p.log.WithField("destination", dest.String())
	sys := p.sys(dest.Host())
	named := []string{} // the tags known to name d here, for a failure's report
	fail := func(err error) Result {
		res.Tags = named
		res.err = fmt.Errorf("%s: %w", dest.String(), err)
		res.Error = res.err.Error()
		res.Seconds = time.Since(start).Seconds()
		log.Error(err)
		return res
	}
	// A tag that names another manifest is not moved: check before
	// sending anything, so that a refusal changes nothing.
	var already []string // tags that name d before this run
	for _, tag := range dest.Tags {
		same, err := p.lookUpTag(ctx, sys, dest, tag, d, log)
		if err != nil {
			return fail(err)
		}
		if same {
			already = append(already, tag)
			named = append(named, tag)
		}
	}
	target, err := byDigest(dest.Repo, d.String())
	if err != nil {
		return fail(err)
	}
	if before != nil {
		err := before.start(ctx, log)
		defer before.stop()
		if err != nil {
			return fail(err)
		}
	}
	st := &transferStats{}
	// Retries happen per blob and per manifest inside transfer: one flaky
	// upload costs one upload, not the whole push's budget.
	err = send(target, sys, log, st)
	res.BlobsPushed, res.BlobsSkipped, res.BytesPushed = st.pushed, st.skipped, st.bytes
	if err != nil {
		return fail(fmt.Errorf("push: %w", err))
	}
	// Verified before any tag names it: an image that fails a check is
	// reachable only by its digest. A read the registry answers as
	// temporary (a 503 from its load balancer) is tried again, as the
	// push's requests are; a mismatch is final.
	if p.opts.Verify != VerifyNone {
		err := p.hosts.Retry().Do(ctx, log, "verify", func() error { return p.verify(ctx, sys, target, d) })
		if err != nil {
			return fail(afterPush(err))
		}
		res.Verified = true
	}
	if before != nil {
		if err := before.finish(&res, log); err != nil {
			return fail(err)
		}
	}
	// Signed before any tag names it, and only once checked: a pull by tag
	// (an admission policy, a pod starting) never finds an unsigned image.
	// An image whose signing fails stays reachable only by its digest.
	if err := p.sign(ctx, dest, raw, d, &res, log); err != nil {
		if len(already) > 0 {
			// Not written by this run, but naming what it failed to sign.
			err = fmt.Errorf("%w (the tags %s already named this digest before this run and still do, unsigned)", err, strings.Join(already, ", "))
		}
		return fail(afterPush(err))
	}
	// Tags last: the manifest and all its blobs are in place (and checked,
	// and signed).
	// Each tag is looked up again right before it is written, so that a
	// concurrent publish that moved it meanwhile is reported as a conflict
	// instead of being silently overwritten. (Registries offer no
	// compare-and-swap on tags: a window of one round trip remains.)
	for _, tag := range dest.Tags {
		same, err := p.lookUpTag(ctx, sys, dest, tag, d, log)
		if err != nil {
			return fail(err)
		}
		if same {
			// Already there: nothing is sent (a rerun with nothing new
			// writes nothing).
			log.WithField("digest", d.String()).Debugf("tag %s:%s already names it", dest.Repo.Name(), tag)
			if !slices.Contains(named, tag) {
				named = append(named, tag)
			}
			continue
		}
		err = p.hosts.Retry().Do(ctx, log, "tag "+tag, func() error { return p.putManifest(ctx, dest, tag, raw) })
		if err != nil {
			return fail(fmt.Errorf("tag %s: %w", tag, err))
		}
		if err := p.readBackTag(ctx, dest, tag, d, log); err != nil {
			return fail(err)
		}
		named = append(named, tag)
		log.WithField("digest", d.String()).Infof("tagged %s:%s", dest.Repo.Name(), tag)
	}
	res.Seconds = time.Since(start).Seconds()
	log.WithFields(logrus.Fields{"digest": d.String(), "pushed": res.BlobsPushed, "skipped": res.BlobsSkipped, "seconds": fmt.Sprintf("%.1f", res.Seconds)}).Info("published")
	return res
}

// lookUpTag refuses a tag that already points to another digest (unless
// it rolls, or overwriting is allowed), and says whether it names want:
// whether it serves want's very bytes, not only a HEAD saying so.
func (p *run) lookUpTag(ctx context.Context, sys *types.SystemContext, dest Destination, tag string, want digest.Digest, log logrus.FieldLogger) (bool, error) {
	c, err := p.hosts.Client(dest.Repo)
	if err != nil {
		return false, err
	}
	var cur digest.Digest
	err = p.hosts.Retry().Do(ctx, log, "look up tag "+tag, func() error {
		var err error
		cur, err = c.ServedDigest(ctx, tag, want.Algorithm())
		if err != nil && remote.IsNotFound(err) {
			cur, err = "", nil
		}
		return err
	})
	if err != nil {
		return false, fmt.Errorf("look up tag %s: %w", tag, err)
	}
	if cur != "" && cur != want {
		switch {
		case dest.rolls(tag):
			log.WithFields(logrus.Fields{"from": cur.String(), "to": want.String()}).Infof("moving the rolling tag %s:%s from %s to %s", dest.Repo.Name(), tag, cur, want)
		case p.opts.AllowOverwrite:
			log.Warnf("moving tag %s:%s from %s to %s (overwrite allowed)", dest.Repo.Name(), tag, cur, want)
		default:
			return false, &TagConflictError{Ref: dest.Repo.Name() + ":" + tag, Current: cur.String(), Wanted: want.String()}
		}
	}
	return cur == want, nil
}

// readBackTag checks that tag serves d after it was written (the manifest
// read and hashed, as a pull gets it): a concurrent publish of another
// image to the same tag makes one of the two find the other's digest
// there, and that one reports the lost tag.
func (p *run) readBackTag(ctx context.Context, dest Destination, tag string, d digest.Digest, log logrus.FieldLogger) error {
	c, err := p.hosts.Client(dest.Repo)
	if err != nil {
		return err
	}
	var got digest.Digest
	err = p.hosts.Retry().Do(ctx, log, "read back tag "+tag, func() error {
		var err error
		got, err = c.ServedDigest(ctx, tag, d.Algorithm())
		return err
	})
	if err != nil {
		return fmt.Errorf("read back tag %s: %w", tag, err)
	}
	if got != d {
		return &TagConflictError{Ref: dest.Repo.Name() + ":" + tag, Current: got.String(), Wanted: d.String(), Lost: true}
	}
	return nil
}

// putManifest writes the manifest bytes, unchanged, under ref (a tag, or
// their digest) in dest's repository, through the run's client for it
// (whose connections and token already served the tag's look-up).
func (p *run) putManifest(ctx context.Context, dest Destination, ref string, raw []byte) error {
	c, err := p.hosts.Client(dest.Repo)
	if err != nil {
		return err
	}
	return c.PutManifest(ctx, ref, manifest.GuessMIMEType(raw), raw)
}

// joinFailures returns an error naming every failed destination; integrity
// failures keep their type so that the CLI exits 3.
func joinFailures(rep *Report) error {
	var errs []error
	for _, r := range rep.Destinations {
		if r.err != nil {
			errs = append(errs, r.err)
		}
	}
	return errors.Join(errs...)
}

// afterPush is an error from reading back what was just pushed: a
// registry that took a manifest and then has none under its digest is
// failing (exit 1), it is not a reference naming nothing (exit 2).
func afterPush(err error) error {
	if err != nil && errors.Is(err, errs.ErrNotFound) && !errors.Is(err, errs.ErrIntegrity) {
		return fmt.Errorf("the registry took the push but does not serve it: %s", err.Error())
	}
	return err
}

// verify checks what the registry serves under the digest: an image, or
// an index and every platform's image.
func (p *run) verify(ctx context.Context, sys *types.SystemContext, ref types.ImageReference, want digest.Digest) error {
	_, err := oci.Verify(ctx, ref, oci.VerifyOptions{SystemContext: sys, ExpectDigest: want, Mode: p.opts.Verify, Log: p.log, Progress: p.opts.Progress})
	return err
}
