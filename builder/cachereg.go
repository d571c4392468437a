package builder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/images/progress"
	"github.com/containers/buildah/define"
	"github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sirupsen/logrus"
	"go.podman.io/common/libimage/manifests"
	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
)

// recorderRepo is the cache repository buildah is given (define.BuildOptions
// CacheTo) so that it calls back with every step's image; nothing is ever
// sent there (see stepImages).
const recorderRepo = "agentforge.invalid/recorded-steps"

// stepImages learns from buildah which image each step of a build ended
// with, in the order the steps ran.
//
// buildah pushes every step's image to each CacheTo repository as soon as
// the step is done, whether it ran or came from the local cache
// (imagebuildah StageExecutor.Execute, stage_executor.go:1735, calling
// pushCache at :2203), through libimage's Copier, which lets the caller
// replace the source and destination references
// (define.BuildOptions.CachePushSourceLookupReferenceFunc and
// CachePushDestinationLookupReferenceFunc). stepImages records the source
// (the step's image in the store) and replaces the destination with one
// that accepts every blob as already there, so nothing is read or sent.
// With Jobs 1 the stages run one after the other in order
// (executor.go:940), and with SkipUnusedStages false every stage runs, so
// the record lines up with the Containerfile's steps.
type stepImages struct {
	mu  sync.Mutex
	ids []string
}

// install sets the build options that make buildah report to r.
func (r *stepImages) install(bo *define.BuildOptions) error {
	repo, err := reference.ParseNormalizedNamed(recorderRepo)
	if err != nil {
		return err
	}
	one := 1
	bo.Jobs = &one
	bo.SkipUnusedStages = types.OptionalBoolFalse
	bo.CacheTo = []reference.Named{repo}
	bo.CachePushSourceLookupReferenceFunc = func(types.ImageReference) manifests.LookupReferenceFunc {
		return func(src types.ImageReference) (types.ImageReference, error) {
			_, img, err := istorage.ResolveReference(src)
			if err != nil {
				return nil, fmt.Errorf("layer cache: step image: %w", err)
			}
			r.mu.Lock()
			r.ids = append(r.ids, img.ID)
			r.mu.Unlock()
			return src, nil
		}
	}
	bo.CachePushDestinationLookupReferenceFunc = func(dest types.ImageReference) (types.ImageReference, error) {
		return discardRef{dest}, nil
	}
	return nil
}

func (r *stepImages) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ids)
}

// discardRef is a destination that has every blob already and keeps
// nothing.
type discardRef struct{ types.ImageReference }

func (r discardRef) NewImageDestination(context.Context, *types.SystemContext) (types.ImageDestination, error) {
	return discardDest{r}, nil
}

type discardDest struct{ ref types.ImageReference }

func (d discardDest) Reference() types.ImageReference                         { return d.ref }
func (discardDest) Close() error                                              { return nil }
func (discardDest) SupportedManifestMIMETypes() []string                      { return nil }
func (discardDest) SupportsSignatures(context.Context) error                  { return nil }
func (discardDest) DesiredLayerCompression() types.LayerCompression           { return types.PreserveOriginal }
func (discardDest) AcceptsForeignLayerURLs() bool                             { return true }
func (discardDest) MustMatchRuntimeOS() bool                                  { return false }
func (discardDest) IgnoresEmbeddedDockerReference() bool                      { return true }
func (discardDest) HasThreadSafePutBlob() bool                                { return true }
func (discardDest) PutManifest(context.Context, []byte, *digest.Digest) error { return nil }
func (discardDest) PutSignatures(context.Context, [][]byte, *digest.Digest) error {
	return nil
}
func (discardDest) Commit(context.Context, types.UnparsedImage) error { return nil }
func (discardDest) TryReusingBlob(_ context.Context, info types.BlobInfo, _ types.BlobInfoCache, _ bool) (bool, types.BlobInfo, error) {
	return true, info, nil
}
func (discardDest) PutBlob(_ context.Context, stream io.Reader, info types.BlobInfo, _ types.BlobInfoCache, _ bool) (types.BlobInfo, error) {
	d := digest.Canonical.Digester()
	n, err := io.Copy(d.Hash(), stream)
	if err != nil {
		return types.BlobInfo{}, err
	}
	return types.BlobInfo{Digest: d.Digest(), Size: n}, nil
}

// pushImage pushes the image id from store to dest, layers as stored, and
// returns the manifest digest the registry now serves under dest. It is an
// *errs.IntegrityError when that is not the digest of the image in the
// store.
func pushImage(ctx context.Context, store storage.Store, id string, dest reference.Named, hosts *remote.Hosts, log logrus.FieldLogger, rep progress.Reporter) (digest.Digest, error) {
	src, err := istorage.Transport.NewStoreReference(store, nil, id)
	if err != nil {
		return "", err
	}
	local, _, err := oci.Layers(ctx, nil, src)
	if err != nil {
		return "", err
	}
	dref, err := docker.NewReference(dest)
	if err != nil {
		return "", err
	}
	var raw []byte
	err = hosts.Config().Retry.Do(ctx, log, "push "+dest.String(), func() error {
		var err error
		raw, err = oci.Copy(ctx, dref, src, &copy.Options{
			SourceCtx:      &types.SystemContext{},
			DestinationCtx: hosts.For(reference.Domain(dest)),
			// Not a byte of the manifest may change: no compression, and
			// no substitution of a compressed copy of a layer that the
			// registry has already (the base image's, pulled from it).
			PreserveDigests: true,
		}, rep, "cache push")
		return err
	})
	if err != nil {
		return "", fmt.Errorf("push %s: %w", dest, hosts.Secrets().Error(err))
	}
	d, err := manifest.Digest(raw)
	if err != nil {
		return "", fmt.Errorf("push %s: %w", dest, err)
	}
	if d.String() != local {
		return d, &errs.IntegrityError{What: "cache entry " + dest.String(), Check: "manifest digest (the registry's against the local image's)", Expected: local, Actual: d.String()}
	}
	return d, nil
}

// errNoEntry is a cache repository without an entry for a key.
var errNoEntry = errors.New("no entry")

// entryManifest reads the manifest tagged key in repo and checks that it is
// what agentforge pushes: an OCI image manifest whose layers are
// uncompressed (anything else would not give the digest a build without
// the cache gives). A missing tag is errNoEntry.
func entryManifest(ctx context.Context, repo reference.Named, key string, hosts *remote.Hosts, log logrus.FieldLogger) ([]byte, error) {
	tagged, err := reference.WithTag(repo, key)
	if err != nil {
		return nil, err
	}
	dref, err := docker.NewReference(tagged)
	if err != nil {
		return nil, err
	}
	var raw []byte
	var mime string
	err = hosts.Config().Retry.Do(ctx, log, "read "+tagged.String(), func() error {
		src, err := dref.NewImageSource(ctx, hosts.For(reference.Domain(repo)))
		if err != nil {
			return err
		}
		defer src.Close()
		raw, mime, err = src.GetManifest(ctx, nil)
		return err
	})
	switch {
	case remote.IsNotFound(err):
		return nil, errNoEntry
	case err != nil:
		return nil, hosts.Secrets().Error(err)
	}
	if mime != imgspecv1.MediaTypeImageManifest {
		return nil, fmt.Errorf("a %s, not an OCI image manifest", mime)
	}
	m, err := manifest.OCI1FromManifest(raw)
	if err != nil {
		return nil, err
	}
	for _, l := range m.Layers {
		if l.MediaType != imgspecv1.MediaTypeImageLayer {
			return nil, fmt.Errorf("layer %s is %s, not an uncompressed layer as agentforge pushes them", l.Digest, l.MediaType)
		}
	}
	return raw, nil
}

// pullImage pulls ref (repo@digest) into store and returns the image's ID.
// c/image checks the manifest against the digest, every blob against the
// manifest, and every layer against the configuration's diff IDs.
func pullImage(ctx context.Context, store storage.Store, ref reference.Canonical, raw []byte, hosts *remote.Hosts, log logrus.FieldLogger, rep progress.Reporter) (string, error) {
	m, err := manifest.OCI1FromManifest(raw)
	if err != nil {
		return "", err
	}
	id := m.Config.Digest.Encoded()
	dest, err := istorage.Transport.NewStoreReference(store, nil, id)
	if err != nil {
		return "", err
	}
	src, err := docker.NewReference(ref)
	if err != nil {
		return "", err
	}
	err = hosts.Config().Retry.Do(ctx, log, "pull "+ref.String(), func() error {
		_, err := oci.Copy(ctx, dest, src, &copy.Options{
			SourceCtx:      hosts.For(reference.Domain(ref)),
			DestinationCtx: &types.SystemContext{BigFilesTemporaryDir: hosts.ForPull().BigFilesTemporaryDir},
		}, rep, "cache pull")
		return err
	})
	if err != nil {
		return "", fmt.Errorf("pull %s: %w", ref, hosts.Secrets().Error(err))
	}
	return id, nil
}
