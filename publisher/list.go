package publisher

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/publisher/sign"
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
//
// As with Publish, one destination failing does not stop the others: a
// destination where a platform's image fails gets nothing more (no other
// platform, no index, no tag) and is reported with its error; every
// healthy destination gets all platforms, the index and its tags. The
// report lists every destination in order; the error names each failure.
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
	// Index signs the platform images, once the index and all of them are
	// verified on a destination.
	platformOpts := opts
	platformOpts.Sign = nil
	failed := make([]error, len(dests)) // each destination's first failure
	var published []string              // each platform's published digest
	local := map[digest.Digest]digest.Digest{}
	for _, c := range list.Children {
		var to []Destination
		var at []int
		for i, d := range dests {
			if failed[i] == nil {
				to, at = append(to, Destination{Repo: d.Repo}), append(at, i)
			}
		}
		if len(to) == 0 {
			break
		}
		rep, err := Publish(ctx, c.Ref, to, platformOpts)
		if rep == nil {
			return nil, fmt.Errorf("platform %s: %w", c.Platform, err)
		}
		for j, r := range rep.Destinations {
			if r.err != nil {
				failed[at[j]] = fmt.Errorf("platform %s: %w", c.Platform, r.err)
			}
		}
		local[digest.Digest(rep.Digest)] = c.Digest
		published = append(published, rep.Digest)
	}
	var healthy []Destination
	var at []int
	for i, d := range dests {
		if failed[i] == nil {
			healthy, at = append(healthy, d), append(at, i)
		}
	}
	out := &IndexReport{Report: Report{Destinations: make([]Result, len(dests))}}
	var indexErr error
	if len(healthy) > 0 {
		// The platform images are read from a destination that has them
		// all.
		var refs []types.ImageReference
		for _, d := range published {
			ref, err := byDigest(healthy[0].Repo, d)
			if err != nil {
				return nil, err
			}
			refs = append(refs, ref)
		}
		opts.Sign = opts.Sign.withLocal(local)
		opts.childrenPushed = true
		irep, err := Index(ctx, refs, healthy, opts)
		if irep == nil {
			return nil, err
		}
		indexErr = err
		out.Digest, out.Manifests = irep.Digest, irep.Manifests
		for i := range out.Manifests {
			out.Manifests[i].Signatures = spread(irep.Manifests[i].Signatures, at, len(dests))
		}
		for j, r := range irep.Destinations {
			out.Destinations[at[j]] = r
		}
		out.Signatures = spread(irep.Signatures, at, len(dests))
	}
	var errsOut []error
	for i, err := range failed {
		if err == nil {
			continue
		}
		ref := dests[i].Repo.Name()
		if out.Digest != "" {
			ref += "@" + out.Digest
		}
		out.Destinations[i] = Result{Ref: ref, Digest: out.Digest, Tags: []string{}, Verification: opts.Verify, Error: err.Error(), err: err}
		errsOut = append(errsOut, err)
		if opts.Sign != nil {
			if out.Signatures == nil {
				out.Signatures = make([]sign.Signed, len(dests))
			}
			out.Signatures[i] = sign.Signed{Ref: ref, Error: "not signed: " + err.Error()}
			for k := range out.Manifests {
				out.Manifests[k].Signatures[i] = sign.Signed{Ref: dests[i].Repo.Name() + "@" + out.Manifests[k].Digest, Error: "not signed: " + err.Error()}
			}
		}
	}
	return out, errors.Join(append(errsOut, indexErr)...)
}

// spread places the entries of in (one per destination of at) at their
// destinations' positions among n; nil stays nil.
func spread(in []sign.Signed, at []int, n int) []sign.Signed {
	if in == nil {
		return nil
	}
	out := make([]sign.Signed, n)
	for j, s := range in {
		out[at[j]] = s
	}
	return out
}
