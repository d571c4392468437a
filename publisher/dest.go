package publisher

import (
	"fmt"
	"slices"
	"strings"

	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/types"
)

// Destination is a repository to publish to, with the tags to write there.
type Destination struct {
	// Repo is the repository, e.g. registry.example:5000/agents/python-agent.
	Repo reference.Named
	// Tags are written after the manifest; empty means only by digest.
	Tags []string
	// Rolling are those of Tags that follow the newest image: a publish
	// moves them from the digest they name to its own, and says so. Any
	// other tag that names another digest is never moved (a
	// TagConflictError), unless Options.AllowOverwrite.
	Rolling []string
}

// rolls reports whether tag is one of d's rolling tags.
func (d Destination) rolls(tag string) bool { return slices.Contains(d.Rolling, tag) }

// Host is the registry host[:port].
func (d Destination) Host() string { return reference.Domain(d.Repo) }

// String is the destination as the user would write it.
func (d Destination) String() string {
	if len(d.Tags) == 1 {
		return d.Repo.Name() + ":" + d.Tags[0]
	}
	return d.Repo.Name()
}

// ParseDestination parses "host/repo", "host/repo:tag" (with an optional
// docker:// in front). A destination without a tag gets defaultTags.
func ParseDestination(s string, defaultTags []string) (Destination, error) {
	raw := strings.TrimPrefix(s, "docker://")
	named, err := reference.ParseNormalizedNamed(raw)
	if err != nil {
		return Destination{}, errs.Inputf("destination %q: %w", s, err)
	}
	if _, ok := named.(reference.Digested); ok {
		return Destination{}, errs.Inputf("destination %q: give a repository (and tag), not a digest: the digest is the image's", s)
	}
	if !oci.HasRegistryHost(raw) {
		return Destination{}, errs.Inputf("destination %q: name the registry host (e.g. registry.example/%s): a bare name would mean Docker Hub", s, raw)
	}
	if err := oci.CheckPort(reference.Domain(named)); err != nil {
		return Destination{}, errs.Inputf("destination %q: %w", s, err)
	}
	d := Destination{Repo: reference.TrimNamed(named)}
	if t, ok := named.(reference.Tagged); ok {
		d.Tags = []string{t.Tag()}
	} else {
		for _, t := range defaultTags {
			if err := oci.CheckTag(t); err != nil {
				return Destination{}, fmt.Errorf("destination %q: %w", s, err)
			}
		}
		d.Tags = append(d.Tags, defaultTags...)
	}
	return d, nil
}

// byDigest is the docker reference of repo@dig.
func byDigest(repo reference.Named, dig string) (types.ImageReference, error) {
	c, err := reference.WithDigest(repo, digest.Digest(dig))
	if err != nil {
		return nil, err
	}
	return docker.NewReference(c)
}
