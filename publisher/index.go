package publisher

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/publisher/attachments"
	"github.com/agentforge/agentforge/publisher/sign"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sirupsen/logrus"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/types"
)

// IndexEntry is one platform's image in an index Index made.
type IndexEntry struct {
	Platform string `json:"platform"`
	Digest   string `json:"digest"`
	Source   string `json:"source"`
	// Signatures are what signing (Options.Sign) did on this platform's
	// image on each destination, in order.
	Signatures []sign.Signed `json:"signatures,omitempty"`
}

// IndexReport is the outcome of Index.
type IndexReport struct {
	Report
	Manifests []IndexEntry `json:"manifests,omitempty"`
}

// Index joins single-platform images, each named by digest in a registry
// (the fan-out case: every architecture built and published on its own
// agent), into one OCI image index, and publishes it to every destination:
// a platform image a destination lacks is first copied there byte for byte
// from where it exists, then the index goes by digest, is verified with
// every platform's image, signed (Options.Sign: each platform's image, then
// the index), and only then tagged. The index is the same bytes
// everywhere (platforms in a fixed order), so every destination serves the
// same digest.
func Index(ctx context.Context, sources []types.ImageReference, dests []Destination, opts Options) (*IndexReport, error) {
	if len(sources) == 0 {
		return nil, errs.Inputf("index: no platform image given")
	}
	if len(dests) == 0 {
		return nil, errNoDestination
	}
	p, err := newRun(opts)
	if err != nil {
		return nil, err
	}
	defer p.close()
	type child struct {
		ref  types.ImageReference
		sys  *types.SystemContext
		raw  []byte
		desc imgspecv1.Descriptor
	}
	var children []child
	seen := map[string]string{}
	for _, src := range sources {
		named := src.DockerReference()
		d, ok := named.(reference.Digested)
		if named == nil || !ok {
			return nil, errs.Inputf("index: %s: give each platform image as a registry reference by digest (docker://host/repo@sha256:…)", oci.Name(src))
		}
		sys := p.sys(reference.Domain(named))
		raw, err := p.manifest(ctx, src, sys) // checked against the digest
		if err != nil {
			return nil, err
		}
		mt := manifest.GuessMIMEType(raw)
		if manifest.MIMETypeIsMultiImage(mt) {
			return nil, errs.Inputf("index: %s is already an index: give single-platform images", oci.Name(src))
		}
		platform, err := p.platformOf(ctx, src, sys, raw, mt)
		if err != nil {
			return nil, err
		}
		// linux/arm64 and linux/arm64/v8 are one platform: a client
		// would pick either, so two images for it are refused.
		key := oci.PlatformOf(platform).Normalize().String()
		if other, dup := seen[key]; dup {
			return nil, errs.Inputf("index: %s and %s are both %s (platforms are compared normalized: %s)", other, oci.Name(src), oci.PlatformOf(platform), key)
		}
		seen[key] = oci.Name(src)
		children = append(children, child{ref: src, sys: sys, raw: raw,
			desc: imgspecv1.Descriptor{MediaType: mt, Digest: d.Digest(), Size: int64(len(raw)), Platform: platform}})
	}
	slices.SortFunc(children, func(a, b child) int {
		return strings.Compare(oci.PlatformOf(a.desc.Platform).String(), oci.PlatformOf(b.desc.Platform).String())
	})
	idx := imgspecv1.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageIndex}
	rep := &IndexReport{}
	for _, c := range children {
		idx.Manifests = append(idx.Manifests, c.desc)
		rep.Manifests = append(rep.Manifests, IndexEntry{Platform: oci.PlatformOf(c.desc.Platform).String(), Digest: c.desc.Digest.String(), Source: oci.Name(c.ref)})
	}
	raw, err := json.Marshal(idx)
	if err != nil {
		return nil, err
	}
	d := digest.FromBytes(raw)
	if s := p.opts.Sign; s != nil && !p.opts.childrenPushed { // PublishList checked before pushing them
		platforms := map[string]digest.Digest{}
		for _, c := range children {
			platforms[oci.PlatformOf(c.desc.Platform).String()] = s.localOf(c.desc.Digest)
		}
		if err := s.checkSBOMs(d, true, platforms); err != nil {
			return nil, err
		}
	}
	// The platform images' signatures and attestations, as their sources
	// have them now: this run signs them where they are (a source may
	// also be a destination) while it copies them to the other
	// destinations, and copies only what was there before it.
	copiers := map[string]*attachments.Copier{}
	if !p.opts.childrenPushed {
		digests := map[string][]digest.Digest{}
		for _, c := range children {
			if src := c.ref.DockerReference(); src != nil {
				digests[src.Name()] = append(digests[src.Name()], c.desc.Digest)
			}
		}
		for _, c := range children {
			src := c.ref.DockerReference()
			if src == nil || copiers[src.Name()] != nil {
				continue
			}
			copier := &attachments.Copier{Options: attachments.Options{Hosts: p.hosts, Log: p.log}}
			copier.Snapshot(ctx, reference.TrimNamed(src), digests[src.Name()])
			copiers[src.Name()] = copier
		}
	}
	p.log.WithField("digest", d.String()).Infof("index of %d platforms", len(children))
	pub, err := p.fanOut(d, dests, func(dest Destination) Result {
		return p.pushWith(ctx, raw, d, dest, func(target types.ImageReference, sys *types.SystemContext, log logrus.FieldLogger, st *transferStats) error {
			// Children first, each from where it is, unless already there.
			for _, c := range children {
				if err := p.transfer(ctx, c.ref, c.sys, dest.Repo, c.raw, log, st); err != nil {
					return fmt.Errorf("platform %s (%s): %w", oci.PlatformOf(c.desc.Platform).String(), c.desc.Digest, err)
				}
				// Its signatures and attestations (an SBOM) go with it,
				// so the child verifies on every destination.
				// (Not when PublishList sent the children everywhere
				// itself: nothing is there to copy but what this run is
				// signing on the first destination meanwhile.)
				if src := c.ref.DockerReference(); src != nil && src.Name() != dest.Repo.Name() && copiers[src.Name()] != nil {
					copier := *copiers[src.Name()]
					copier.Log = log
					rep, err := copier.Copy(ctx, src, dest.Repo, c.desc.Digest)
					if err != nil {
						return fmt.Errorf("platform %s (%s): attachments: %w", oci.PlatformOf(c.desc.Platform).String(), c.desc.Digest, err)
					}
					log.WithField("digest", c.desc.Digest.String()).Infof("attachments of %s: %d copied, %d already there", oci.PlatformOf(c.desc.Platform).String(), len(rep.Copied), rep.Unchanged)
				}
			}
			return p.hosts.Retry().Do(ctx, log, "index", func() error { return p.putManifest(ctx, dest, d.String(), raw) })
		}, nil)
	})
	if pub != nil {
		rep.Report = *pub
		if p.opts.Sign != nil {
			// The platform images are signed in the index's order, which
			// is rep.Manifests'.
			for i := range rep.Manifests {
				rep.Manifests[i].Signatures = make([]sign.Signed, len(pub.Destinations))
				for j, r := range pub.Destinations {
					if i < len(r.children) && r.children[i].Ref != "" {
						rep.Manifests[i].Signatures[j] = r.children[i]
						continue
					}
					// Not signed there: the destination failed first.
					rep.Manifests[i].Signatures[j] = sign.Signed{Ref: dests[j].Repo.Name() + "@" + rep.Manifests[i].Digest, Error: "not signed: " + notSignedWhy(r)}
				}
			}
		}
	}
	return rep, err
}

// platformOf reads an image's platform from its config.
func (p *run) platformOf(ctx context.Context, ref types.ImageReference, sys *types.SystemContext, raw []byte, mt string) (*imgspecv1.Platform, error) {
	m, err := manifest.FromBlob(raw, mt)
	if err != nil {
		return nil, fmt.Errorf("parse manifest of %s: %w", oci.Name(ref), err)
	}
	src, err := p.openSource(ctx, ref, sys)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", oci.Name(ref), err)
	}
	defer src.Close()
	info := m.ConfigInfo()
	rc, err := src.blob(ctx, info, 0)
	if err != nil {
		return nil, fmt.Errorf("config of %s: %w", oci.Name(ref), err)
	}
	cfgRaw, err := io.ReadAll(io.LimitReader(rc, 64<<20))
	rc.Close()
	if err != nil {
		return nil, fmt.Errorf("config of %s: %w", oci.Name(ref), err)
	}
	if got := digest.FromBytes(cfgRaw); got != info.Digest {
		return nil, &errs.IntegrityError{What: "config of " + oci.Name(ref), Check: "digest", Expected: info.Digest.String(), Actual: got.String()}
	}
	var cfg imgspecv1.Image
	if err := json.Unmarshal(cfgRaw, &cfg); err != nil {
		return nil, fmt.Errorf("config of %s: %w", oci.Name(ref), err)
	}
	if cfg.OS == "" || cfg.Architecture == "" {
		return nil, errs.Inputf("index: %s names no os/architecture in its config", oci.Name(ref))
	}
	return &imgspecv1.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}, nil
}
