package builder

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/builder/source"
	"github.com/agentforge/agentforge/images"
	"github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sirupsen/logrus"
	"go.podman.io/common/libimage/manifests"
	"go.podman.io/image/v5/manifest"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/storage"
)

// makeList joins the platform images of a multi-platform build into an OCI
// image index in local storage, named with the definition's tags (the
// names podman's manifest commands and agentforge publish understand).
func makeList(ctx context.Context, def *images.Definition, opts BuildOptions, children []*Result, start time.Time) (*Result, error) {
	first := children[0]
	res := &Result{Name: def.Name, Version: def.Version, Created: first.Created, Revision: first.Revision, Layers: []oci.Layer{}, Sources: []source.Fetched{}}
	// The list's base is the definition's: its pin (a list digest, as a
	// rule), else the one digest every platform started from, if they
	// share it. Each platform's own is in Manifests.
	res.Base = source.Base{Ref: first.Base.Ref, Digest: def.Base.Digest}
	if res.Base.Digest == "" && !slices.ContainsFunc(children, func(c *Result) bool { return c.Base.Digest != first.Base.Digest }) {
		res.Base.Digest = first.Base.Digest
	}
	list := manifests.Create()
	for _, c := range children {
		ref, err := istorage.Transport.NewStoreReference(opts.Store, nil, c.ID)
		if err != nil {
			return nil, fmt.Errorf("manifest list: %s: %w", c.Platform, err)
		}
		if _, err := list.Add(ctx, nil, ref, false); err != nil {
			return nil, fmt.Errorf("manifest list: add %s: %w", c.Platform, err)
		}
		res.Manifests = append(res.Manifests, PlatformImage{Platform: c.Platform, ID: c.ID, Digest: c.Digest, Names: c.Names, Base: c.Base, Layers: c.Layers, Sources: c.Sources, Cache: c.Cache, SBOM: c.SBOM})
	}
	// The list's own ID is random: a tag derived from it names it by its
	// manifest list digest, which the same platform images always give.
	raw, err := list.Serialize(imgspecv1.MediaTypeImageIndex)
	if err != nil {
		return nil, fmt.Errorf("manifest list: %w", err)
	}
	listDigest := digest.FromBytes(raw)
	for _, t := range allTags(def, opts) {
		t = images.ImageTag(t, listDigest.Encoded())
		res.Tags = append(res.Tags, t)
		res.Names = append(res.Names, "localhost/"+def.Name+":"+t)
	}
	res.RollingTags = slices.Clone(def.RollingTags)
	if err := freeNames(opts.Store, res.Names); err != nil {
		return nil, err
	}
	id, err := list.SaveToImage(opts.Store, "", res.Names, imgspecv1.MediaTypeImageIndex)
	if err != nil {
		return nil, fmt.Errorf("manifest list %s: %w", res.Names[0], err)
	}
	img, err := opts.Store.Image(id)
	if err != nil {
		return nil, fmt.Errorf("manifest list %s: %w", res.Names[0], err)
	}
	res.ID, res.Digest = id, img.Digest.String()
	res.Seconds = time.Since(start).Seconds()
	log := opts.Log
	if log == nil {
		log = logrus.New()
	}
	log.WithFields(logrus.Fields{"id": id, "digest": res.Digest, "platforms": len(children)}).Infof("manifest list %s", res.Names[0])
	return res, nil
}

// freeNames takes names off the images that carry them (an earlier build's
// list or image), deleting a list that is left with no name: it holds no
// layers, only the manifest of a list nobody can name any more.
func freeNames(store storage.Store, names []string) error {
	for _, n := range names {
		img, err := store.Image(n)
		if errors.Is(err, storage.ErrImageUnknown) {
			continue
		}
		if err != nil {
			return fmt.Errorf("look up %s: %w", n, err)
		}
		if err := store.RemoveNames(img.ID, []string{n}); err != nil {
			return fmt.Errorf("untag %s: %w", n, err)
		}
		if len(img.Names) == 1 && isList(store, img.ID) {
			if _, err := store.DeleteImage(img.ID, true); err != nil && !errors.Is(err, storage.ErrImageUnknown) {
				return fmt.Errorf("remove the old list %s: %w", n, err)
			}
		}
	}
	return nil
}

// isList reports whether the image id holds a manifest list.
func isList(store storage.Store, id string) bool {
	raw, err := store.ImageBigData(id, storage.ImageDigestBigDataKey)
	return err == nil && manifest.MIMETypeIsMultiImage(manifest.GuessMIMEType(raw))
}
