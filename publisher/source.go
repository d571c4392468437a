package publisher

import (
	"context"
	"fmt"
	"io"

	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/blobinfocache/none"
	"go.podman.io/image/v5/types"
)

// source is where a transfer reads an image: its manifests by digest and
// its blobs. The caller checks what it reads against the digests.
type source interface {
	manifest(ctx context.Context, d digest.Digest) ([]byte, error)
	// blob opens b's bytes from offset on.
	blob(ctx context.Context, b types.BlobInfo, offset int64) (io.ReadCloser, error)
	Close() error
}

// registryOf is ref's repository when ref is a registry reference
// (docker://), nil for local ones (an OCI layout, containers-storage,
// which have a DockerReference too).
func registryOf(ref types.ImageReference) reference.Named {
	if ref.Transport().Name() != "docker" {
		return nil
	}
	return ref.DockerReference()
}

// openSource opens ref for a transfer. A registry's image is read through
// the run's client for its repository, whose connections and token serve
// every read of the run (a c/image source would ping the registry and
// read the manifest again for each); a local one through c/image.
func (p *run) openSource(ctx context.Context, ref types.ImageReference, sys *types.SystemContext) (source, error) {
	if named := registryOf(ref); named != nil {
		c, err := p.hosts.Client(named)
		if err != nil {
			return nil, err
		}
		return registrySource{c}, nil
	}
	s, err := ref.NewImageSource(ctx, sys)
	if err != nil {
		return nil, err
	}
	return imageSource{s}, nil
}

// manifest reads ref's top-level manifest, checked against a digest that
// names it (see oci.Manifest): a registry's through the run's client,
// retried while the registry's answers are temporary (429, 503…).
func (p *run) manifest(ctx context.Context, ref types.ImageReference, sys *types.SystemContext) ([]byte, error) {
	named := registryOf(ref)
	if named == nil {
		return oci.Manifest(ctx, ref, sys)
	}
	c, err := p.hosts.Client(named)
	if err != nil {
		return nil, err
	}
	var raw []byte
	err = p.hosts.Retry().Do(ctx, p.log, "read manifest of "+named.String(), func() error {
		raw, err = oci.RegistryManifest(ctx, c, named)
		return err
	})
	return raw, err
}

type registrySource struct{ c *remote.Client }

func (r registrySource) manifest(ctx context.Context, d digest.Digest) ([]byte, error) {
	return r.c.Manifest(ctx, d.String(), remote.MaxManifest)
}

func (r registrySource) blob(ctx context.Context, b types.BlobInfo, offset int64) (io.ReadCloser, error) {
	return r.c.OpenBlobFrom(ctx, b.Digest, offset)
}

func (registrySource) Close() error { return nil }

type imageSource struct{ s types.ImageSource }

func (i imageSource) manifest(ctx context.Context, d digest.Digest) ([]byte, error) {
	raw, _, err := i.s.GetManifest(ctx, &d)
	return raw, err
}

// blob reads a local blob from its start, and skips to offset.
func (i imageSource) blob(ctx context.Context, b types.BlobInfo, offset int64) (io.ReadCloser, error) {
	rc, _, err := i.s.GetBlob(ctx, b, none.NoCache)
	if err != nil || offset == 0 {
		return rc, err
	}
	if _, err := io.CopyN(io.Discard, rc, offset); err != nil {
		rc.Close()
		return nil, fmt.Errorf("skip to byte %d of blob %s: %w", offset, b.Digest, err)
	}
	return rc, nil
}

func (i imageSource) Close() error { return i.s.Close() }
