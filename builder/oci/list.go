package oci

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/agentforge/agentforge/images/errs"
	"github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/manifest"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
)

// LocalList is a manifest list kept in local storage, as agentforge build
// --platform (or podman manifest) makes it: the list's own record holds
// only its manifest; each platform's image is an image of its own.
type LocalList struct {
	ID     string
	Digest digest.Digest
	// Raw is the list's manifest, which hashes to Digest.
	Raw []byte
	// Children are the platform images, in the list's order.
	Children []LocalListChild
}

// LocalListChild is one platform's image of a LocalList.
type LocalListChild struct {
	Platform string
	Digest   digest.Digest
	// Ref is the storage image carrying that manifest.
	Ref types.ImageReference
}

// ReadLocalList reads the manifest list named name from store. It returns
// (nil, nil) when name is a single image, and an error when a platform's
// image is missing from the store or the record does not hash to its
// digest.
func ReadLocalList(store storage.Store, name string) (*LocalList, error) {
	img, err := LocalImage(store, name)
	if err != nil {
		return nil, err
	}
	raw, err := store.ImageBigData(img.ID, storage.ImageDigestBigDataKey)
	if err != nil {
		return nil, fmt.Errorf("manifest of %s: %w", name, err)
	}
	mt := manifest.GuessMIMEType(raw)
	if !manifest.MIMETypeIsMultiImage(mt) {
		return nil, nil
	}
	l := &LocalList{ID: img.ID, Digest: digest.FromBytes(raw), Raw: raw}
	if img.Digest != "" && img.Digest != l.Digest {
		return nil, &errs.IntegrityError{What: "manifest list " + name + " in local storage", Check: "digest", Expected: img.Digest.String(), Actual: l.Digest.String()}
	}
	var idx struct {
		Manifests []imgspecv1.Descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, fmt.Errorf("manifest list %s: %w", name, err)
	}
	for _, desc := range idx.Manifests {
		child := LocalListChild{Digest: desc.Digest, Platform: PlatformOf(desc.Platform).String()}
		id, err := imageWithManifest(store, desc.Digest)
		if err != nil {
			return nil, fmt.Errorf("manifest list %s: %s (%s): %w", name, child.Platform, desc.Digest, err)
		}
		if child.Ref, err = istorage.Transport.NewStoreReference(store, nil, id); err != nil {
			return nil, fmt.Errorf("manifest list %s: %w", name, err)
		}
		l.Children = append(l.Children, child)
	}
	return l, nil
}

// imageWithManifest finds the local image whose manifest is d (checked by
// hashing it, not by the store's index alone).
func imageWithManifest(store storage.Store, d digest.Digest) (string, error) {
	imgs, err := store.ImagesByDigest(d)
	if err != nil {
		return "", err
	}
	for _, img := range imgs {
		raw, err := store.ImageBigData(img.ID, storage.ImageDigestBigDataKey)
		if err == nil && digest.FromBytes(raw) == d && !manifest.MIMETypeIsMultiImage(manifest.GuessMIMEType(raw)) {
			return img.ID, nil
		}
		// An image keeps older manifests under per-digest keys.
		if key, err := manifestKey(d); err == nil {
			if raw, err := store.ImageBigData(img.ID, key); err == nil && digest.FromBytes(raw) == d {
				return img.ID, nil
			}
		}
	}
	return "", errs.NotFoundf("no image in local storage has manifest %s", d)
}

// manifestKey is containers-storage's big-data key for the manifest d.
func manifestKey(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", err
	}
	return storage.ImageDigestBigDataKey + "-" + d.String(), nil
}

// Platforms lists the list's platforms.
func (l *LocalList) Platforms() []string {
	var out []string
	for _, c := range l.Children {
		out = append(out, c.Platform)
	}
	return out
}

// Child returns the platform's image.
func (l *LocalList) Child(platform string) (LocalListChild, error) {
	i := slices.IndexFunc(l.Children, func(c LocalListChild) bool { return c.Platform == platform })
	if i < 0 {
		return LocalListChild{}, errs.Inputf("the list has %v, not %s", l.Platforms(), platform)
	}
	return l.Children[i], nil
}
