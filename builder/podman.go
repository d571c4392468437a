package builder

import (
	"context"
	"fmt"
	"strings"

	"github.com/agentforge/agentforge/builder/oci"

	"github.com/agentforge/agentforge/images"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/containers/podman/v5/pkg/bindings"
	podmanimages "github.com/containers/podman/v5/pkg/bindings/images"
	"github.com/containers/podman/v5/pkg/domain/entities/types"
	"github.com/opencontainers/go-digest"
)

// BuildPodman builds def through a podman service (the podman v5 bindings)
// instead of in-process, for hosts where a podman service owns the image
// storage, e.g. "unix:///run/podman/podman.sock". Sources are fetched and
// checked here exactly as for Build; only the build runs in the service.
//
// The image lands in the service's storage, built by the service's buildah.
// Podman services ignore SourceDateEpoch, so the timestamp is pinned with
// Timestamp instead (created dates and file times in new layers); digests are
// reproducible for one service version, not across versions or with Build.
// opts.Store, opts.Hosts and opts.NoCache's layer cache are the
// service's concern; base images are pulled by the service.
func BuildPodman(ctx context.Context, serviceURL string, def *images.Definition, opts BuildOptions) (*Result, error) {
	if opts.Cache.enabled() {
		return nil, errs.Inputf("the podman service backend has no registry layer cache: build in-process to use one")
	}
	conn, err := bindings.NewConnection(ctx, serviceURL)
	if err != nil {
		return nil, fmt.Errorf("podman service %s: %w", serviceURL, err)
	}
	plats, err := targetPlatforms(def, opts.Platforms)
	if err != nil {
		return nil, err
	}
	if len(plats) != 1 || !native(plats[0]) {
		return nil, errs.Inputf("the podman service backend builds this machine's platform only")
	}
	p, err := prepare(ctx, def, opts, plats[0], "")
	if err != nil {
		return nil, err
	}
	defer p.close()
	if def.Base.Image != "scratch" {
		p.log.Infof("base image %s (pulled by the podman service)", def.Base.Ref())
		if _, err := podmanimages.Pull(conn, def.Base.Ref(), new(podmanimages.PullOptions).WithQuiet(true).WithPolicy("missing")); err != nil {
			return nil, fmt.Errorf("pull base image %s: %w", def.Base.Ref(), err)
		}
		base, err := podmanimages.GetImage(conn, def.Base.Ref(), nil)
		if err != nil {
			return nil, fmt.Errorf("base image %s: %w", def.Base.Ref(), err)
		}
		var all []digest.Digest
		for _, rd := range base.RepoDigests {
			if _, d, ok := strings.Cut(rd, "@"); ok {
				all = append(all, digest.Digest(d))
			}
		}
		if err := p.setBase(base.Digest, all); err != nil {
			return nil, err
		}
	}
	bo := p.buildOptions()
	// The service applies the limits in its own process, whose nproc hard
	// limit podman sets to 32768: ask for no more.
	bo.CommonBuildOpts.Ulimit = capUlimits(bo.CommonBuildOpts.Ulimit, "nproc", 32768)
	bo.Timestamp = &p.epoch
	bo.NoCache = opts.NoCache
	rep, err := podmanimages.Build(conn, []string{p.containerfile}, types.BuildOptions{BuildOptions: bo})
	if err != nil {
		return nil, fmt.Errorf("build %s through %s: %w", def.Name, serviceURL, err)
	}
	img, err := podmanimages.GetImage(conn, rep.ID, nil)
	if err != nil {
		return nil, fmt.Errorf("built image %s: %w", rep.ID, err)
	}
	var layers []oci.Layer
	if img.RootFS != nil {
		for _, l := range img.RootFS.Layers {
			// The service keeps layers uncompressed: blob digest = diffID.
			layers = append(layers, oci.Layer{Digest: l.String(), DiffID: l.String(), Size: -1, MediaType: "application/vnd.oci.image.layer.v1.tar"})
		}
	}
	return p.finish(img.ID, img.Digest.String(), layers), nil
}

// capUlimits lowers the named "name=soft:hard" limit to at most max.
func capUlimits(limits []string, name string, max int64) []string {
	out := make([]string, 0, len(limits))
	for _, l := range limits {
		var soft, hard int64
		if n, _ := fmt.Sscanf(l, name+"=%d:%d", &soft, &hard); n == 2 && hard > max {
			l = fmt.Sprintf("%s=%d:%d", name, min(soft, max), max)
		}
		out = append(out, l)
	}
	return out
}
