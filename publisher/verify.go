package publisher

import (
	"context"
	"fmt"
	"io"

	"github.com/agentforge/agentforge/builder"
	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/pkg/blobinfocache/none"
	"go.podman.io/image/v5/transports"
	"go.podman.io/image/v5/types"
)

// VerifyRemote checks what a registry serves at ref (which should carry a
// digest): "full" downloads every blob and checks digest, size and diffID;
// "fast" checks the manifest and config by digest and each layer's presence
// and size with a HEAD request. A multi-platform index is checked with every
// platform's manifest. Mismatches are *builder.IntegrityError.
func VerifyRemote(ctx context.Context, ref types.ImageReference, want digest.Digest, mode string, reg Registries) error {
	p, err := newRun(Options{Registries: reg, Verify: mode})
	if err != nil {
		return err
	}
	defer p.close()
	host := ""
	if n := ref.DockerReference(); n != nil {
		host = reference.Domain(n)
	}
	raw, err := readManifestWith(ctx, ref, p.sys(host))
	if err != nil {
		return err
	}
	return p.verify(ctx, p.sys(host), ref, want, raw)
}

// verifyIndex checks an index's digest and then every child manifest.
func (p *run) verifyIndex(ctx context.Context, sys *types.SystemContext, ref types.ImageReference, want digest.Digest, raw []byte) error {
	name := transports.ImageName(ref)
	served, err := readManifestWith(ctx, ref, sys)
	if err != nil {
		return err
	}
	if got := digest.FromBytes(served); want != "" && got != want {
		return &builder.IntegrityError{What: "index of " + name, Check: "digest", Expected: want.String(), Actual: got.String()}
	}
	list, err := manifest.ListFromBlob(raw, manifest.GuessMIMEType(raw))
	if err != nil {
		return fmt.Errorf("parse index of %s: %w", name, err)
	}
	repo := reference.TrimNamed(ref.DockerReference())
	for _, child := range list.Instances() {
		cref, err := byDigest(repo, child.String())
		if err != nil {
			return err
		}
		if p.opts.Verify == VerifyFast {
			err = verifyFast(ctx, sys, cref, child)
		} else {
			_, err = builder.Verify(ctx, cref, builder.VerifyOptions{SystemContext: sys, ExpectDigest: child, Log: p.log})
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// verifyFast checks the manifest and config by digest and every layer with
// a HEAD request (present, right size), without downloading layers.
func verifyFast(ctx context.Context, sys *types.SystemContext, ref types.ImageReference, want digest.Digest) error {
	name := transports.ImageName(ref)
	src, err := ref.NewImageSource(ctx, sys)
	if err != nil {
		return fmt.Errorf("open %s: %w", name, err)
	}
	defer src.Close()
	raw, mime, err := src.GetManifest(ctx, nil)
	if err != nil {
		return fmt.Errorf("manifest of %s: %w", name, err)
	}
	if got := digest.FromBytes(raw); got != want {
		return &builder.IntegrityError{What: "manifest of " + name, Check: "digest", Expected: want.String(), Actual: got.String()}
	}
	m, err := manifest.FromBlob(raw, mime)
	if err != nil {
		return fmt.Errorf("parse manifest of %s: %w", name, err)
	}
	cfg := m.ConfigInfo()
	rc, _, err := src.GetBlob(ctx, cfg, none.NoCache)
	if err != nil {
		return fmt.Errorf("config of %s: %w", name, err)
	}
	data, err := io.ReadAll(io.LimitReader(rc, 64<<20))
	rc.Close()
	if err != nil {
		return fmt.Errorf("config of %s: %w", name, err)
	}
	if got := digest.FromBytes(data); got != cfg.Digest {
		return &builder.IntegrityError{What: "config of " + name, Check: "digest", Expected: cfg.Digest.String(), Actual: got.String()}
	}
	dest, err := ref.NewImageDestination(ctx, sys)
	if err != nil {
		return fmt.Errorf("open %s: %w", name, err)
	}
	defer dest.Close()
	for i, l := range m.LayerInfos() {
		ok, info, err := dest.TryReusingBlob(ctx, types.BlobInfo{Digest: l.Digest, Size: -1}, none.NoCache, false)
		if err != nil {
			return fmt.Errorf("layer %d %s of %s: %w", i, l.Digest, name, err)
		}
		if !ok {
			return &builder.IntegrityError{What: fmt.Sprintf("layer %d %s of %s", i, l.Digest, name), Check: "presence", Expected: "the blob", Actual: "missing"}
		}
		if info.Size >= 0 && l.Size >= 0 && info.Size != l.Size {
			return &builder.IntegrityError{What: fmt.Sprintf("layer %d %s of %s", i, l.Digest, name), Check: "size", Expected: fmt.Sprint(l.Size), Actual: fmt.Sprint(info.Size)}
		}
	}
	return nil
}

func readManifestWith(ctx context.Context, ref types.ImageReference, sys *types.SystemContext) ([]byte, error) {
	s, err := ref.NewImageSource(ctx, sys)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", transports.ImageName(ref), err)
	}
	defer s.Close()
	raw, _, err := s.GetManifest(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("manifest of %s: %w", transports.ImageName(ref), err)
	}
	return raw, nil
}
