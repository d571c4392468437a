package publisher

import (
	"context"
	"fmt"
	"time"

	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/publisher/attachments"
	"github.com/opencontainers/go-digest"
	"github.com/sirupsen/logrus"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/types"
)

// MirrorOptions tune Mirror.
type MirrorOptions struct {
	Options
	// Platform (os/arch[/variant]) narrows a multi-platform index to one
	// platform's manifest. The mirrored digest is then that manifest's, not
	// the index's.
	Platform string
	// DryRun reports what would be copied and copies nothing.
	DryRun bool
}

// Mirror copies the image at src (a registry reference) to every
// destination byte for byte: the same manifest bytes and so the same
// digest; a multi-platform index is kept whole (every child manifest by
// digest, then the index). Blobs a destination has are not sent again.
// The source's signatures and attestations (and its children's) are copied
// too, and the image signed when opts.Sign says so, before any tag is
// written.
func Mirror(ctx context.Context, src types.ImageReference, dests []Destination, opts MirrorOptions) (*Report, error) {
	if len(dests) == 0 {
		return nil, errNoDestination
	}
	p, err := newRun(opts.Options)
	if err != nil {
		return nil, err
	}
	defer p.close()
	named := src.DockerReference()
	if named == nil {
		return nil, errs.Inputf("mirror %s: the source must be a registry reference (docker://host/repo:tag)", oci.Name(src))
	}
	p.srcSys = p.sys(reference.Domain(named))
	// The source is read once, checked against any digest that named it,
	// before anything is sent anywhere.
	raw, err := p.manifest(ctx, src, p.srcSys)
	if err != nil {
		return nil, err
	}
	d := digest.FromBytes(raw)
	all := manifest.MIMETypeIsMultiImage(manifest.GuessMIMEType(raw))
	if opts.Platform != "" {
		if !all {
			return nil, errs.Inputf("platform %s: %s is a single-platform image", opts.Platform, named)
		}
		child, err := choosePlatform(raw, opts.Platform)
		if err != nil {
			return nil, err
		}
		p.log.Warnf("platform %s: mirroring only %s; the mirror's digest is that manifest's, not the index's %s", opts.Platform, child, d)
		if src, err = byDigest(reference.TrimNamed(named), child.String()); err != nil {
			return nil, err
		}
		if raw, err = p.manifest(ctx, src, p.srcSys); err != nil {
			return nil, err
		}
		d = child
	}
	if opts.Sign != nil {
		// A mirror copies bytes: what it signs is what the source has.
		platforms, err := platformDigests(raw)
		if err != nil {
			return nil, err
		}
		if err := opts.Sign.checkSBOMs(d, platforms != nil, platforms); err != nil {
			return nil, err
		}
	}
	srcRepo := reference.TrimNamed(named)
	digests, err := withChildren(raw, d)
	if err != nil {
		return nil, err
	}
	// What the source has besides the image (signatures, attestations,
	// referrers) is looked up while the blobs are copied, once for all
	// destinations.
	copier := &attachments.Copier{Options: attachments.Options{Hosts: p.hosts, Log: p.log}, DryRun: opts.DryRun}
	copier.Prefetch(ctx, srcRepo, digests)
	// The bound on the referrers copied is checked on the plan, before the
	// image or anything else is sent anywhere (while the destinations'
	// tags are looked up).
	planned := make(chan struct{})
	var planErr error
	go func() {
		defer close(planned)
		planErr = copier.Plan(ctx, srcRepo, digests)
	}()
	plan := func() error {
		<-planned
		return planErr
	}
	rep, err := p.fanOut(d, dests, func(dest Destination) Result {
		if !opts.DryRun {
			// All the attachments are on the destination before a tag is:
			// those under cosign's tags go alongside the image, the
			// referrers once it is in place.
			return p.push(ctx, src, raw, d, dest, &mirrorAttachments{plan: plan, copier: copier, src: srcRepo, digests: digests, dest: dest})
		}
		if err := plan(); err != nil {
			return Result{Ref: dest.Repo.Name() + "@" + d.String(), Digest: d.String(), Tags: []string{}, err: err, Error: err.Error()}
		}
		res := p.plan(ctx, src, raw, d, dest)
		if res.err == nil {
			rep, err := copyAttachments(ctx, copier, (*attachments.Copier).Copy, srcRepo, digests, dest, p.log.WithField("destination", dest.String()))
			res.Attachments = rep
			if err != nil {
				res.err = fmt.Errorf("%s: %w", dest, err)
				res.Error = res.err.Error()
			}
		}
		if res.err != nil {
			// As a failed push's: the dry run wrote no tag (Result.Tags).
			res.Tags = []string{}
		}
		return res
	})
	if err := plan(); err != nil {
		return nil, fmt.Errorf("mirror %s: %w", named, err)
	}
	return rep, err
}

// mirrorAttachments copies the source's attachments of digests to one
// destination for pushWith: CopyTagged alongside the image, CopyReferrers
// once it is there. If the image fails, what CopyTagged wrote stays
// (signatures of a digest the destination lacks, reachable by no tag).
type mirrorAttachments struct {
	plan    func() error // the copy's plan: nothing is sent unless it holds
	copier  *attachments.Copier
	src     reference.Named
	digests []digest.Digest
	dest    Destination

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	tagged *attachments.Report
	err    error
}

func (m *mirrorAttachments) start(ctx context.Context, log logrus.FieldLogger) error {
	if err := m.plan(); err != nil {
		return err
	}
	m.ctx = ctx
	tctx, cancel := context.WithCancel(ctx)
	m.cancel, m.done = cancel, make(chan struct{})
	go func() {
		defer close(m.done)
		m.tagged, m.err = copyAttachments(tctx, m.copier, (*attachments.Copier).CopyTagged, m.src, m.digests, m.dest, log)
	}()
	return nil
}

func (m *mirrorAttachments) finish(res *Result, log logrus.FieldLogger) error {
	<-m.done
	res.Attachments = m.tagged
	if m.err != nil {
		return m.err
	}
	rest, err := copyAttachments(m.ctx, m.copier, (*attachments.Copier).CopyReferrers, m.src, m.digests, m.dest, log)
	res.Attachments.Add(rest)
	return err
}

func (m *mirrorAttachments) stop() {
	if m.cancel != nil {
		m.cancel()
		<-m.done
	}
}

// withChildren is d and, for an index, each of its manifests, once.
func withChildren(raw []byte, d digest.Digest) ([]digest.Digest, error) {
	digests := []digest.Digest{d}
	if mt := manifest.GuessMIMEType(raw); manifest.MIMETypeIsMultiImage(mt) {
		list, err := manifest.ListFromBlob(raw, mt)
		if err != nil {
			return nil, err
		}
		digests = distinct(append(digests, list.Instances()...))
	}
	return digests, nil
}

// copyFunc is one of a Copier's copies: Copy, CopyTagged or CopyReferrers.
type copyFunc func(*attachments.Copier, context.Context, reference.Named, reference.Named, digest.Digest) (*attachments.Report, error)

// copyAttachments copies with copyOf, on a copy of copier that logs to
// log, the attachments of each of digests (the image and an index's
// children) to dest, byte for byte, so that they verify there with the
// same key. What dest already has is not sent again; a dry run reports
// what would be copied.
func copyAttachments(ctx context.Context, copier *attachments.Copier, copyOf copyFunc, srcRepo reference.Named, digests []digest.Digest, dest Destination, log logrus.FieldLogger) (*attachments.Report, error) {
	c := *copier
	c.Log = log
	all := &attachments.Report{Copied: []attachments.Copied{}}
	for _, dg := range digests {
		rep, err := copyOf(&c, ctx, srcRepo, dest.Repo, dg)
		all.Add(rep)
		if err != nil {
			return all, fmt.Errorf("attachments of %s: %w", dg, err)
		}
	}
	return all, nil
}

// choosePlatform finds the child manifest of an index for os/arch[/variant].
func choosePlatform(raw []byte, platform string) (digest.Digest, error) {
	list, err := manifest.ListFromBlob(raw, manifest.GuessMIMEType(raw))
	if err != nil {
		return "", err
	}
	p, err := oci.ParsePlatform(platform)
	if err != nil {
		return "", err
	}
	d, err := list.ChooseInstance(&types.SystemContext{OSChoice: p.OS, ArchitectureChoice: p.Arch, VariantChoice: p.Variant})
	if err != nil {
		return "", errs.Inputf("platform %s: %w", platform, err)
	}
	return d, nil
}

// plan reports which blobs a destination lacks, without copying.
func (p *run) plan(ctx context.Context, src types.ImageReference, raw []byte, d digest.Digest, dest Destination) Result {
	start := time.Now()
	res := Result{Ref: dest.Repo.Name() + "@" + d.String(), Digest: d.String(), Tags: dest.Tags, Verification: "dry-run"}
	blobs, err := p.blobsOf(ctx, src, raw)
	if err != nil {
		res.err = fmt.Errorf("%s: %w", dest, err)
		res.Error = res.err.Error()
		return res
	}
	w, err := p.hosts.Client(dest.Repo)
	seen := map[digest.Digest]bool{} // a blob two platform images share goes once
	for i := 0; err == nil && i < len(blobs); i++ {
		b := blobs[i]
		if seen[b.Digest] {
			continue
		}
		seen[b.Digest] = true
		var ok bool
		switch ok, err = w.HasBlob(ctx, b.Digest); {
		case err != nil:
		case ok:
			res.BlobsSkipped++
		default:
			res.BlobsPushed++
			res.BytesPushed += b.Size
			p.log.WithField("destination", dest.String()).Infof("would copy blob %s (%d bytes)", b.Digest, b.Size)
		}
	}
	if err != nil {
		res.err = fmt.Errorf("%s: %w", dest, err)
		res.Error = res.err.Error()
	}
	res.Seconds = time.Since(start).Seconds()
	return res
}

// blobsOf lists every blob (configs and layers) an image or index names.
func (p *run) blobsOf(ctx context.Context, src types.ImageReference, raw []byte) ([]types.BlobInfo, error) {
	mt := manifest.GuessMIMEType(raw)
	if !manifest.MIMETypeIsMultiImage(mt) {
		m, err := manifest.FromBlob(raw, mt)
		if err != nil {
			return nil, err
		}
		out := []types.BlobInfo{m.ConfigInfo()}
		for _, l := range m.LayerInfos() {
			out = append(out, l.BlobInfo)
		}
		return out, nil
	}
	list, err := manifest.ListFromBlob(raw, mt)
	if err != nil {
		return nil, err
	}
	var out []types.BlobInfo
	for _, child := range distinct(list.Instances()) {
		cref, err := byDigest(reference.TrimNamed(src.DockerReference()), child.String())
		if err != nil {
			return nil, err
		}
		craw, err := p.manifest(ctx, cref, p.srcSys)
		if err != nil {
			return nil, err
		}
		blobs, err := p.blobsOf(ctx, cref, craw)
		if err != nil {
			return nil, err
		}
		out = append(out, blobs...)
	}
	return out, nil
}
