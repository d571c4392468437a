package publisher

import (
	"context"
	"fmt"
	"strings"

	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
)

// PublishLocal publishes name from local storage: a manifest list (build
// --platform with several) with PublishList, an image with Publish (the
// report then lists no manifests). A list's platform images are signed
// with their own SBOMs (Signing.PlatformSBOMs): one SBOM for the whole
// list is refused before anything is pushed.
func PublishLocal(ctx context.Context, store storage.Store, name string, dests []Destination, opts Options) (*IndexReport, error) {
	name = strings.TrimPrefix(name, "containers-storage:")
	list, err := oci.ReadLocalList(store, name)
	if err != nil {
		return nil, err
	}
	if list != nil {
		if s := opts.Sign; s != nil && s.SBOM != nil && len(s.PlatformSBOMs) == 0 {
			return nil, errs.Inputf("publish: %s is a manifest list: an SBOM describes one platform's image; attach each platform's to its own digest (agentforge sign, or release)", name)
		}
		return PublishList(ctx, list, dests, opts)
	}
	ref, err := oci.ParseReference(name, store)
	if err != nil {
		return nil, err
	}
	rep, err := Publish(ctx, ref, dests, opts)
	if rep == nil {
		return nil, err
	}
	return &IndexReport{Report: *rep}, err
}

// PublishList publishes a multi-platform image kept in local storage (see
// oci.ReadLocalList): every platform's image goes to every destination as
// Publish sends it (compressed once, the same bytes everywhere, verified,
// untagged), then Index joins them into one OCI index, verified, signed
// (Options.Sign: each platform's image with its own SBOM from
// Signing.PlatformSBOMs, then the index) and only then tagged with each
// destination's tags. Platform images first, the index next, tags last: a
// failure leaves no tag naming a partial or unsigned image.
func PublishList(ctx context.Context, list *oci.LocalList, dests []Destination, opts Options) (*IndexReport, error) {
	if len(dests) == 0 {
		return nil, errNoDestination
	}
	if list == nil || len(list.Children) == 0 {
		return nil, errs.Inputf("publish: the manifest list has no platform images")
	}
	if err := opts.Sign.check(); err != nil {
		return nil, err
	}
	platforms := map[string]digest.Digest{}
	for _, c := range list.Children {
		platforms[c.Platform] = c.Digest
	}
	if err := opts.Sign.checkSBOMs(list.Digest, true, platforms); err != nil {
		return nil, err
	}
	untagged := make([]Destination, len(dests))
	for i, d := range dests {
		untagged[i] = Destination{Repo: d.Repo}
	}
	// Index signs the platform images, once the index and all of them are
	// verified on a destination.
	platformOpts := opts
	platformOpts.Sign = nil
	var refs []types.ImageReference
	local := map[digest.Digest]digest.Digest{}
	for _, c := range list.Children {
		rep, err := Publish(ctx, c.Ref, untagged, platformOpts)
		if err != nil {
			return nil, fmt.Errorf("platform %s: %w", c.Platform, err)
		}
		local[digest.Digest(rep.Digest)] = c.Digest
		ref, err := byDigest(dests[0].Repo, rep.Digest)
		if err != nil {
			return nil, err
		}
		refs = append(refs, ref)
	}
	opts.Sign = opts.Sign.withLocal(local)
	opts.childrenPushed = true
	return Index(ctx, refs, dests, opts)
}
