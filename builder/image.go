package builder

import (
	"context"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"

	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/oci/layout"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
)

// Layer is one layer of an image as its manifest and config describe it.
type Layer struct {
	Digest    string `json:"digest"`
	DiffID    string `json:"diffID"`
	Size      int64  `json:"size"`
	MediaType string `json:"mediaType"`
}

// ParseReference turns a user's image reference into an image reference:
//
//	oci:DIR[:tag]                 an OCI layout
//	docker://host/repo[:tag|@dig] a registry
//	containers-storage:NAME       local storage (the prefix is optional)
//	NAME[:tag] or an image ID     local storage; short names are looked up
//	                              as given and under localhost/
//
// A local image that does not exist is an *InputError.
func ParseReference(s string, store storage.Store) (types.ImageReference, error) {
	switch {
	case strings.HasPrefix(s, "oci:"):
		ref, err := layout.ParseReference(strings.TrimPrefix(s, "oci:"))
		if err != nil {
			return nil, inputErrorf("reference %q: %v", s, err)
		}
		return ref, nil
	case strings.HasPrefix(s, "docker://"):
		ref, err := docker.ParseReference(strings.TrimPrefix(s, "docker:"))
		if err != nil {
			return nil, inputErrorf("reference %q: %v", s, err)
		}
		return ref, nil
	}
	name := strings.TrimPrefix(s, "containers-storage:")
	if store == nil {
		return nil, inputErrorf("reference %q: local storage is not open", s)
	}
	img, err := lookupLocal(store, name)
	if err != nil {
		return nil, err
	}
	ref, err := istorage.Transport.NewStoreReference(store, nil, img.ID)
	if err != nil {
		return nil, fmt.Errorf("reference %q: %w", s, err)
	}
	return ref, nil
}

// lookupLocal finds an image in store by ID, ID prefix or name, trying short
// names under localhost/ (where agentforge tags what it builds) and with
// :latest when no tag is given.
func lookupLocal(store storage.Store, name string) (*storage.Image, error) {
	candidates := []string{name} // an ID, an ID prefix, or a name as stored
	if named, err := reference.ParseNormalizedNamed(name); err == nil {
		// What agentforge builds is stored under localhost/; what is pulled
		// under its full name (docker.io/library/…).
		full := reference.TagNameOnly(named).String()
		if first, _, found := strings.Cut(name, "/"); !found || !strings.ContainsAny(first, ".:") && first != "localhost" {
			candidates = append(candidates, "localhost/"+strings.TrimPrefix(full, "docker.io/library/"))
		}
		candidates = append(candidates, full)
	}
	for _, c := range candidates {
		if img, err := store.Image(c); err == nil {
			return img, nil
		}
	}
	return nil, inputErrorf("image %q not found in local storage %s", name, store.GraphRoot())
}

// LocalImage finds an image in local storage by ID, ID prefix or name
// (short names also under localhost/ and with :latest). A missing image is
// an *InputError.
func LocalImage(store storage.Store, name string) (*storage.Image, error) {
	return lookupLocal(store, name)
}

// layersOf reads the layer list of the image at ref.
func layersOf(ctx context.Context, sys *types.SystemContext, ref types.ImageReference) (digest.Digest, []Layer, error) {
	r, err := readImage(ctx, sys, ref)
	if err != nil {
		return "", nil, err
	}
	defer r.src.Close()
	return r.digest, r.layers, nil
}
